//! The broadcast source task: reads one broadcast point from a line server and hands every
//! record to the journal, acknowledging to the PLC only once the journal holds it.
//!
//! - **Handshake layout**: on every change of the trigger (a counter, a toggle bit or a
//!   DataReady strobe) and at every poll, in case a notification was lost, the trigger, the
//!   acknowledgement and the record are read in one request. What the PLC shows decides:
//!   a presented record whose acknowledgement the PLC does not show is journaled and
//!   acknowledged — again, if the PLC presents it again (a new presentation of a record the
//!   core has is journaled as a duplicate and ignored; the same presentation seen again is
//!   only acknowledged again) — so no behaviour of the PLC can leave its handshake waiting on
//!   Takt.
//! - **FIFO layout** (slot nodes, field arrays or a ring, see `nodes`): on every change of the
//!   trigger the two newest slots are read; when the second is the record that was newest
//!   before, the first is the one new record (the common case, one small request). Otherwise,
//!   and at every poll, all slots are read in one request and every record not delivered yet,
//!   or whose payload changed (a correction), is delivered oldest first. After a restart
//!   everything in the FIFO is delivered once more; the core ignores what it already has.
//! - After every (re)connect the layout's state is read before anything else, so what happened
//!   while the link was down is caught up. Conditions (alarms) are delivered when they change:
//!   the link lost and back (one per outage, however many retries), the PLC's "no handshake"
//!   flag, and nodes that are not what the layout says (a layout mismatch: alarmed and retried
//!   at every poll, never a reconnect storm).
//! - The task stops when its [`SourceHandle`] is dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ::opcua::types::{DataValue, Variant};
use serde::Serialize;
use takt_core::{AlarmKind, Input, PointId, RawRecord};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, sleep};

use super::config::{AckClear, AckWith, FifoOrder, Layout, SourceConfig, TriggerKind};
use super::connection::{self, Link, LinkError};
use super::decode;
use super::nodes::{FifoNodes, Nodes};
use takt_core::{AlarmInput, SequencingInput};

/// Where inputs go: the controller's journal. `deliver` resolves once the input is durable; an
/// error means it is not, and the source will offer it again.
pub trait InputSink: Send + Sync + 'static {
    fn deliver(&self, input: Input) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Deliver several inputs in order, resolving once all are durable. A sink that can queue
    /// them all before the first commits (the journal) should: the records one FIFO read found
    /// then share one commit, instead of each waiting for the commit of the one before — after
    /// a slow commit, that wait is what piles up behind a disk stall.
    fn deliver_all(
        &self,
        inputs: Vec<Input>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        async move {
            for input in inputs {
                self.deliver(input).await?;
            }
            Ok(())
        }
    }
}

/// The journal did not take an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal: {0}")]
pub struct SinkError(pub String);

/// What the source reports about itself, for the status endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceStatus {
    pub connected: bool,
    /// Why the link is down (or last went down).
    pub last_error: Option<String>,
    /// Sessions opened since start.
    pub connects: u64,
    /// Records delivered to the journal.
    pub delivered: u64,
    pub last_seq: Option<u32>,
}

/// The running source. Dropping it stops the task.
#[derive(Debug)]
pub struct SourceHandle {
    backfill: mpsc::Sender<(u32, u32)>,
    status: watch::Receiver<SourceStatus>,
    task: JoinHandle<()>,
}

impl SourceHandle {
    pub fn status(&self) -> SourceStatus {
        self.status.borrow().clone()
    }

    /// A watch on the status, for waiting on a change.
    pub fn watch(&self) -> watch::Receiver<SourceStatus> {
        self.status.clone()
    }

    /// Asks for the records `from..=to` again (the core saw a gap). Only a FIFO can still hold
    /// them; a handshake PLC never skips what it queued.
    pub async fn backfill(&self, from: u32, to: u32) {
        let _ = self.backfill.send((from, to)).await;
    }

    /// Stops the task and waits for it, closing the session politely.
    pub async fn stop(self) {
        let Self { backfill, task, .. } = self;
        drop(backfill);
        let _ = task.await;
    }
}

/// Starts a source. Fails only on what no retry can fix (the configuration, the certificate
/// store).
pub fn spawn<S: InputSink>(cfg: SourceConfig, sink: Arc<S>) -> Result<SourceHandle, LinkError> {
    if let Some(issue) = cfg.validate().into_iter().next() {
        return Err(LinkError(format!("{}: {}", issue.path, issue.message)));
    }
    let client = connection::client(&cfg)?;
    let (backfill, commands) = mpsc::channel(16);
    let (status_tx, status) = watch::channel(SourceStatus::default());
    let source = Source {
        subject: PointId::new(&cfg.line, &cfg.point).to_string(),
        cfg,
        sink,
        status: status_tx,
        link_alarm: None,
        no_handshake: None,
        line_state: None,
        acked_trigger: None,
        fifo_seen: HashMap::new(),
        fifo_newest: None,
        acked_record: None,
        spell_caught_up: false,
        layout_problem: None,
        rejected: HashSet::new(),
    };
    let task = tokio::spawn(source.run(client, commands));
    Ok(SourceHandle {
        backfill,
        status,
        task,
    })
}

/// Why the records are read: the trigger changed (the newest slots may be enough), or a
/// (re)connect or poll wants everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Changed,
    Full,
}

/// What ended a read, or a connected spell: the handle went away, the link failed, or the
/// server's nodes are not what the layout says (not mended by reconnecting: alarmed, and
/// tried again at the next poll).
enum Ended {
    Stopped,
    Failed(LinkError),
    Layout(String),
}

impl From<LinkError> for Ended {
    fn from(e: LinkError) -> Self {
        Ended::Failed(e)
    }
}

struct Source<S> {
    cfg: SourceConfig,
    sink: Arc<S>,
    /// `line/point`, the subject of this source's alarms.
    subject: String,
    status: watch::Sender<SourceStatus>,
    /// Last link state delivered as a condition (`Some(true)`: disconnected alarm raised).
    link_alarm: Option<bool>,
    no_handshake: Option<bool>,
    line_state: Option<(bool, Option<String>)>,
    /// Handshake: the trigger value (a toggle or strobe as 0/1) of the presentation last
    /// acknowledged; kept across reconnects, since a toggled acknowledgement cannot be read
    /// back.
    acked_trigger: Option<u32>,
    /// FIFO: the records delivered, by number, as they were in the slots at the last read.
    fifo_seen: HashMap<u32, RawRecord>,
    /// FIFO: the newest record at the last read, if it was readable and in the slot the next
    /// trigger's head read looks at; `None` sends the next trigger straight to a whole read.
    fifo_newest: Option<RawRecord>,
    /// Handshake: the last record the journal took, so one presented again is not journaled
    /// twice.
    acked_record: Option<RawRecord>,
    /// The current connected spell has read the layout once (see `run`'s backoff).
    spell_caught_up: bool,
    /// The layout mismatch alarmed now, if any.
    layout_problem: Option<String>,
    /// Problems with records already reported, so a bad record in a FIFO alarms once.
    rejected: HashSet<String>,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);

impl<S: InputSink> Source<S> {
    async fn run(
        mut self,
        mut client: ::opcua::client::Client,
        mut commands: mpsc::Receiver<(u32, u32)>,
    ) {
        let max = Duration::from_millis(self.cfg.reconnect_max_ms);
        let mut backoff = BACKOFF_MIN;
        loop {
            let ended = match connection::open(&mut client, &self.cfg).await {
                Ok(mut link) => {
                    let served = self.serve(&mut link, &mut commands).await;
                    // Only a spell that got as far as reading the layout resets the backoff: a
                    // server that accepts sessions and then fails them must not be hammered.
                    if std::mem::take(&mut self.spell_caught_up) {
                        backoff = BACKOFF_MIN;
                    }
                    link.close().await;
                    served.err().unwrap_or(Ended::Stopped)
                }
                Err(e) => Ended::Failed(e),
            };
            match ended {
                Ended::Stopped => return,
                Ended::Failed(e) => self.link_down(e).await,
                Ended::Layout(problem) => self.link_down(LinkError(problem)).await,
            }
            tokio::select! {
                () = sleep(backoff) => {}
                command = commands.recv() => if command.is_none() { return },
            }
            backoff = (backoff * 2).min(max);
        }
    }

    /// One connected spell: `Ok` when the handle went away, the cause when the link failed.
    async fn serve(
        &mut self,
        link: &mut Link,
        commands: &mut mpsc::Receiver<(u32, u32)>,
    ) -> Result<(), Ended> {
        let ns = match &self.cfg.namespace_uri {
            Some(uri) => link.namespace(uri).await?,
            None => 0,
        };
        let nodes = Nodes::resolve(&self.cfg, ns)?;
        let mut changes = link
            .subscribe(&nodes.watched(), self.cfg.publishing_interval())
            .await?;
        self.link_up().await?;
        let caught_up = self.catch_up(link, &nodes).await;
        self.settle(caught_up).await?;
        self.spell_caught_up = true;
        let mut poll = tokio::time::interval(Duration::from_millis(self.cfg.poll_ms));
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        poll.tick().await;
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Some((node, _)) if node == nodes.trigger || Some(&node) == nodes.ack.as_ref() => {
                        let read = self.read_records(link, &nodes, Reading::Changed).await;
                        self.settle(read).await?;
                    }
                    Some((node, value)) if Some(&node) == nodes.no_handshake.as_ref() => {
                        self.on_no_handshake(&value).await?;
                    }
                    Some(_) => self.read_line_state(link, &nodes).await?,
                    None => return Err(LinkError("subscription ended".into()).into()),
                },
                command = commands.recv() => match command {
                    Some((from, to)) => self.backfill(link, &nodes, from, to).await?,
                    None => return Ok(()),
                },
                _ = poll.tick() => {
                    let caught_up = self.catch_up(link, &nodes).await;
                    self.settle(caught_up).await?;
                }
                lost = &mut link.lost => {
                    return Err(lost.unwrap_or_else(|_| LinkError("session ended".into())).into());
                }
            }
        }
    }

    /// A read as the connected spell takes it: a layout mismatch is alarmed once while it lasts
    /// and ends nothing (reconnecting cannot mend it; the next poll tries again); a read that
    /// works clears it.
    async fn settle(&mut self, read: Result<(), Ended>) -> Result<(), Ended> {
        match read {
            Ok(()) => {
                if self.layout_problem.take().is_some() {
                    tracing::info!(source = %self.subject, "the server's nodes match the layout again");
                    self.deliver(self.condition(
                        AlarmKind::SourceLayoutMismatch,
                        false,
                        "layout matches",
                    ))
                    .await?;
                }
                Ok(())
            }
            Err(Ended::Layout(problem)) => {
                if self.layout_problem.as_ref() != Some(&problem) {
                    tracing::warn!(source = %self.subject, "layout mismatch: {problem}");
                    self.deliver(self.condition(AlarmKind::SourceLayoutMismatch, true, &problem))
                        .await?;
                    self.layout_problem = Some(problem);
                }
                Ok(())
            }
            Err(ended) => Err(ended),
        }
    }

    /// Everything the source watches, read now: after a connect, and on every poll.
    async fn catch_up(&mut self, link: &Link, nodes: &Nodes) -> Result<(), Ended> {
        self.read_line_state(link, nodes).await?;
        if let Some(flag) = &nodes.no_handshake {
            let values = link.read(std::slice::from_ref(flag)).await?;
            self.on_no_handshake(&values[0]).await?;
        }
        self.read_records(link, nodes, Reading::Full).await
    }

    async fn read_records(
        &mut self,
        link: &Link,
        nodes: &Nodes,
        reading: Reading,
    ) -> Result<(), Ended> {
        match &self.cfg.layout {
            Layout::Handshake { .. } => self.read_handshake(link, nodes).await,
            Layout::Fifo { .. } => {
                let fifo = nodes
                    .fifo
                    .as_ref()
                    .ok_or_else(|| LinkError("no FIFO nodes".into()))?;
                if reading == Reading::Changed && self.read_fifo_head(link, fifo).await? {
                    return Ok(());
                }
                self.read_fifo(link, fifo).await
            }
        }
    }

    async fn read_handshake(&mut self, link: &Link, nodes: &Nodes) -> Result<(), Ended> {
        let Layout::Handshake {
            trigger_kind,
            ack_with,
            ack_clear,
            ..
        } = self.cfg.layout
        else {
            return Ok(());
        };
        let (Some(ack_node), Some(record)) = (&nodes.ack, &nodes.record) else {
            return Err(LinkError("no handshake nodes".into()).into());
        };
        let mut ids = vec![nodes.trigger.clone(), ack_node.clone()];
        record.push_ids(&mut ids);
        let values = link.read(&ids).await?;
        let trigger = read_trigger(trigger_kind, &values[0])?;
        let ack = decode::value("ack", &values[1]).ok().cloned();
        if trigger_kind == TriggerKind::Strobe && trigger == 0 {
            // Nothing presented. In the four-phase handshake Takt now takes its flag back.
            self.acked_trigger = None;
            if ack_clear == Some(AckClear::Takt) && ack.as_ref().is_some_and(is_true) {
                link.write(ack_node, Variant::Boolean(false))
                    .await?
                    .map_err(Ended::Layout)?;
            }
            return Ok(());
        }
        let mut rest = values[2..].iter();
        let Some(fields) = record.take(&mut rest) else {
            return Err(LinkError("short read of the record".into()).into());
        };
        if fields.is_empty_slot() {
            // Nothing presented yet (a PLC fresh from power-on).
            return Ok(());
        }
        let record = fields.decode(&self.cfg.options_format);
        let seq = record.as_ref().ok().map(|r| r.seq);
        // What the PLC shows now decides, never only what Takt remembers: a PLC that presents
        // the same record again (after its timeout, or having cleared the acknowledgement) is
        // acknowledged again, so no behaviour of the PLC can leave it waiting on Takt.
        // An acknowledgement that cannot be read, or holds what no record has (a PLC clearing
        // it to -1), shows nothing: not acknowledged.
        let seen = match ack_with {
            AckWith::Counter => Some(ack.as_ref().is_some_and(|a| echoes(a, trigger))),
            AckWith::Seq => Some(
                ack.as_ref()
                    .and_then(|a| decode::number("ack", a).ok())
                    .is_some_and(|a| Some(a) == seq),
            ),
            AckWith::Flag => Some(ack.as_ref().is_some_and(is_true)),
            // A flipped bit says nothing by itself: only Takt's memory tells.
            AckWith::Toggle => None,
        };
        let new_presentation = self.acked_trigger != Some(trigger);
        if seen == Some(true) && (self.acked_trigger.is_none() || !new_presentation) {
            // Acknowledged already (by Takt, before a reconnect or restart): durable already.
            self.acked_trigger = Some(trigger);
            return Ok(());
        }
        if !new_presentation && seen.is_none() {
            return Ok(());
        }
        let ack_value = match (ack_with, seq) {
            (AckWith::Counter, _) => same_type(ack.as_ref(), trigger),
            (AckWith::Seq, Some(seq)) => same_type(ack.as_ref(), seq),
            (AckWith::Flag, _) => Variant::Boolean(true),
            (AckWith::Toggle, _) => Variant::Boolean(!ack.as_ref().is_some_and(is_true)),
            // Without a readable number there is nothing to acknowledge with: the PLC will
            // raise "no handshake", which is right — someone has to look at it.
            (AckWith::Seq, None) => {
                if new_presentation {
                    self.deliver_record(record).await?;
                }
                self.acked_trigger = Some(trigger);
                return Ok(());
            }
        };
        // A new presentation is journaled even when it shows the record before (the core sees
        // the duplicate and ignores it, the journal keeps that the PLC presented it again);
        // the same presentation seen again (its acknowledgement refused or cleared before) is
        // durable already and is only acknowledged again.
        let durable = !new_presentation
            && matches!((&record, &self.acked_record), (Ok(r), Some(last)) if r == last);
        if !durable {
            let delivered = record.as_ref().ok().cloned();
            self.deliver_record(record).await?;
            self.acked_record = delivered;
        }
        link.write(ack_node, ack_value)
            .await?
            .map_err(Ended::Layout)?;
        self.acked_trigger = Some(trigger);
        Ok(())
    }

    /// The common case of a FIFO trigger in one small read: exactly one record pushed since the
    /// last read. Reads the newest two slots; if the second holds the record that was newest
    /// before, the first is the only new one. `false` when that does not hold (several pushed
    /// within one publishing interval, a FIFO not full yet in oldest-first order, a ring, an
    /// unreadable slot, nothing read before): then the whole FIFO must be read, one round trip
    /// more than before this shortcut for a burst. A correction deeper in the FIFO without a
    /// push is found by that whole read, which every poll does.
    async fn read_fifo_head(&mut self, link: &Link, fifo: &FifoNodes) -> Result<bool, Ended> {
        let Some(before) = self.fifo_newest.clone() else {
            return Ok(false);
        };
        let Some((newest, next)) = fifo.head() else {
            return Ok(false);
        };
        let range = newest.min(next)..newest.max(next) + 1;
        let read = fifo.read(range);
        let values = link.read_values(&read.request).await?;
        let (mut slots, _) = fifo
            .slots(&read, &values, &self.cfg.options_format)
            .map_err(Ended::Layout)?;
        if newest < next {
            slots.reverse();
        }
        // Oldest first now: [next, newest].
        let mut readable = slots.into_iter().map(|slot| slot.and_then(Result::ok));
        let (Some(Some(previous)), Some(Some(record))) = (readable.next(), readable.next()) else {
            return Ok(false);
        };
        if previous != before || self.fifo_seen.get(&record.seq) == Some(&record) {
            return Ok(false);
        }
        self.deliver_record(Ok(record.clone())).await?;
        self.fifo_seen.insert(record.seq, record.clone());
        self.fifo_newest = Some(record);
        Ok(true)
    }

    async fn read_fifo(&mut self, link: &Link, fifo: &FifoNodes) -> Result<(), Ended> {
        let read = fifo.read(0..fifo.len());
        let values = link.read_values(&read.request).await?;
        let (slots, ring_oldest) = fifo
            .slots(&read, &values, &self.cfg.options_format)
            .map_err(Ended::Layout)?;
        // The next trigger may try the two newest slots only if they are where the head read
        // looks: an oldest-first FIFO fills from slot 0, so until it is full its newest record
        // is not in the last slot, and the head read would be a round trip wasted every time.
        let full = slots.iter().all(Option::is_some);
        let head_readable = fifo.order() == FifoOrder::NewestFirst || full;
        let slots = fifo.oldest_first(slots, ring_oldest);
        let newest = slots
            .last()
            .and_then(|slot| slot.as_ref().ok())
            .filter(|_| head_readable)
            .cloned();
        // Oldest first; a number found twice counts in its newest version only, so an old copy
        // of a corrected record further down the FIFO never undoes the correction.
        let mut newest_at = HashMap::new();
        for (i, slot) in slots.iter().enumerate() {
            if let Ok(r) = slot {
                newest_at.insert(r.seq, i);
            }
        }
        let mut current = HashMap::new();
        let mut problems = HashSet::new();
        let mut fresh = Vec::new();
        for (i, slot) in slots.into_iter().enumerate() {
            match slot {
                Ok(r) if newest_at.get(&r.seq) == Some(&i) => {
                    if self.fifo_seen.get(&r.seq) != Some(&r) {
                        fresh.push(Ok(r.clone()));
                    }
                    current.insert(r.seq, r);
                }
                Ok(_) => {}
                Err(e) => {
                    let text = e.to_string();
                    if !self.rejected.contains(&text) && !problems.contains(&text) {
                        fresh.push(Err(e));
                    }
                    problems.insert(text);
                }
            }
        }
        // All of them durable, or none counted as delivered: a failure offers them again.
        self.deliver_records(fresh).await?;
        // Forget what left the FIFO, so memory stays bounded by its size.
        self.fifo_seen = current;
        self.fifo_newest = newest;
        self.rejected = problems;
        Ok(())
    }

    async fn backfill(
        &mut self,
        link: &Link,
        nodes: &Nodes,
        from: u32,
        to: u32,
    ) -> Result<(), Ended> {
        if let Some(fifo) = &nodes.fifo {
            // Offer these numbers again even if delivered: the core asked, so it lacks them.
            self.fifo_seen.retain(|&seq, _| !in_range(seq, from, to));
            let read = self.read_fifo(link, fifo).await;
            self.settle(read).await?;
        }
        Ok(())
    }

    async fn deliver_record(
        &mut self,
        record: Result<RawRecord, decode::FieldError>,
    ) -> Result<(), Ended> {
        self.deliver_records(vec![record]).await
    }

    /// Journals records (a record the source could not even read as a rejection alarm event,
    /// raised and cleared, left for an operator to acknowledge) in order, as one delivery.
    async fn deliver_records(
        &mut self,
        records: Vec<Result<RawRecord, decode::FieldError>>,
    ) -> Result<(), Ended> {
        if records.is_empty() {
            return Ok(());
        }
        let mut inputs = Vec::with_capacity(records.len());
        let mut seqs = Vec::new();
        for record in records {
            match record {
                Ok(record) => {
                    seqs.push(record.seq);
                    inputs.push(Input::Sequencing(SequencingInput::Broadcast {
                        line: self.cfg.line.clone(),
                        point: self.cfg.point.clone(),
                        record,
                    }));
                }
                Err(e) => {
                    let message = format!("unreadable record: {e}");
                    tracing::warn!(source = %self.subject, "{message}");
                    self.rejected.insert(e.to_string());
                    for active in [true, false] {
                        inputs.push(self.condition(AlarmKind::RecordRejected, active, &message));
                    }
                }
            }
        }
        self.sink
            .deliver_all(inputs)
            .await
            .map_err(|e| LinkError(e.to_string()))?;
        if let Some(&last) = seqs.last() {
            self.status.send_modify(|s| {
                s.delivered += seqs.len() as u64;
                s.last_seq = Some(last);
            });
        }
        Ok(())
    }

    async fn read_line_state(&mut self, link: &Link, nodes: &Nodes) -> Result<(), Ended> {
        let Some(running_node) = &nodes.running else {
            return Ok(());
        };
        let mut ids = vec![running_node.clone()];
        ids.extend(nodes.stop_reason.clone());
        let values = link.read(&ids).await?;
        let running =
            match decode::value("running", &values[0]).and_then(|v| decode::flag("running", v)) {
                Ok(running) => running,
                Err(e) => {
                    tracing::warn!(source = %self.subject, "line state: {e}");
                    return Ok(());
                }
            };
        let reason = values
            .get(1)
            .and_then(|dv| decode::value("stop_reason", dv).ok())
            .and_then(|v| decode::string("stop_reason", v).ok())
            .filter(|r| !running && !r.is_empty());
        let state = (running, reason);
        if self.line_state.as_ref() != Some(&state) {
            self.deliver(Input::Sequencing(SequencingInput::LineState {
                line: self.cfg.line.clone(),
                running: state.0,
                reason: state.1.clone(),
            }))
            .await?;
            self.line_state = Some(state);
        }
        Ok(())
    }

    async fn on_no_handshake(&mut self, value: &DataValue) -> Result<(), Ended> {
        let Ok(flag) =
            decode::value("no_handshake", value).and_then(|v| decode::flag("no_handshake", v))
        else {
            return Ok(());
        };
        if self.no_handshake != Some(flag) {
            let message = if flag {
                "the PLC reports no acknowledgement within its timeout"
            } else {
                "handshake running again"
            };
            self.deliver(self.condition(AlarmKind::NoHandshake, flag, message))
                .await?;
            self.no_handshake = Some(flag);
        }
        Ok(())
    }

    async fn link_up(&mut self) -> Result<(), Ended> {
        tracing::info!(source = %self.subject, endpoint = %self.cfg.endpoint, "OPC UA source connected");
        self.status.send_modify(|s| {
            s.connected = true;
            s.connects += 1;
        });
        if self.link_alarm != Some(false) {
            self.deliver(self.condition(AlarmKind::SourceDisconnected, false, "connected"))
                .await?;
            self.link_alarm = Some(false);
        }
        Ok(())
    }

    /// One warning and one condition per outage: the retries that follow are debug lines.
    async fn link_down(&mut self, e: LinkError) {
        self.status.send_modify(|s| {
            s.connected = false;
            s.last_error = Some(e.0.clone());
        });
        if self.link_alarm == Some(true) {
            tracing::debug!(source = %self.subject, endpoint = %self.cfg.endpoint, "OPC UA source still down: {e}");
            return;
        }
        tracing::warn!(source = %self.subject, endpoint = %self.cfg.endpoint, "OPC UA source down: {e}");
        let message = format!("{}: {e}", self.cfg.endpoint);
        if self
            .deliver(self.condition(AlarmKind::SourceDisconnected, true, &message))
            .await
            .is_ok()
        {
            self.link_alarm = Some(true);
        }
    }

    fn condition(&self, alarm: AlarmKind, active: bool, message: &str) -> Input {
        Input::Alarms(AlarmInput::Condition {
            alarm,
            subject: self.subject.clone(),
            active,
            message: message.to_owned(),
        })
    }

    async fn deliver(&self, input: Input) -> Result<(), LinkError> {
        self.sink
            .deliver(input)
            .await
            .map_err(|e| LinkError(e.to_string()))
    }
}

/// `seq` in `from..=to`, counting across the wrap.
fn in_range(seq: u32, from: u32, to: u32) -> bool {
    if from <= to {
        (from..=to).contains(&seq)
    } else {
        seq >= from || seq <= to
    }
}

/// The trigger's value as a number (a toggle or strobe as 0 or 1); a node of another type than
/// the configured kind is a layout mismatch, not a lost link.
fn read_trigger(kind: TriggerKind, dv: &DataValue) -> Result<u32, Ended> {
    let v = decode::value("trigger", dv).map_err(|e| Ended::Layout(format!("handshake {e}")))?;
    let mismatch = |expected: &str| {
        Ended::Layout(format!(
            "handshake trigger: {} where `trigger_kind = \"{}\"` expects {expected}",
            decode::describe(v),
            kind.name()
        ))
    };
    match (kind, v) {
        (TriggerKind::Counter, Variant::Boolean(_)) => Err(Ended::Layout(
            "handshake trigger: a Boolean where `trigger_kind = \"counter\"` expects a \
             number (a toggle or a strobe? set `trigger_kind`)"
                .into(),
        )),
        (TriggerKind::Counter, _) => decode::number("trigger", v).map_err(|_| mismatch("a number")),
        (TriggerKind::Toggle | TriggerKind::Strobe, _) => decode::flag("trigger", v)
            .map(u32::from)
            .map_err(|_| mismatch("a Boolean")),
    }
}

/// The acknowledgement shows the trigger's value: the same number, or the same bit.
fn echoes(ack: &Variant, trigger: u32) -> bool {
    match ack {
        Variant::Boolean(b) => *b == (trigger != 0),
        other => decode::number("ack", other).is_ok_and(|n| n == trigger),
    }
}

fn is_true(v: &Variant) -> bool {
    decode::flag("ack", v).unwrap_or(false)
}

/// `n` in the integer type the PLC gave its ack node, so the write is not refused with
/// BadTypeMismatch.
fn same_type(current: Option<&Variant>, n: u32) -> Variant {
    match current {
        Some(Variant::Int16(_)) => Variant::Int16(n as i16),
        Some(Variant::UInt16(_)) => Variant::UInt16(n as u16),
        Some(Variant::Int32(_)) => Variant::Int32(n as i32),
        Some(Variant::Int64(_)) => Variant::Int64(n.into()),
        Some(Variant::UInt64(_)) => Variant::UInt64(n.into()),
        Some(Variant::String(_)) => Variant::String(n.to_string().into()),
        Some(Variant::Boolean(_)) => Variant::Boolean(n != 0),
        _ => Variant::UInt32(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_count_across_the_wrap() {
        assert!(in_range(5, 3, 7));
        assert!(!in_range(8, 3, 7));
        assert!(in_range(9999, 9998, 1));
        assert!(in_range(0, 9998, 1));
        assert!(!in_range(5000, 9998, 1));
    }

    #[test]
    fn the_ack_keeps_the_plc_type() {
        assert_eq!(same_type(Some(&Variant::Int16(0)), 7), Variant::Int16(7));
        assert_eq!(same_type(None, 7), Variant::UInt32(7));
        assert_eq!(
            same_type(Some(&Variant::String("".into())), 7),
            Variant::String("7".into())
        );
    }
}
