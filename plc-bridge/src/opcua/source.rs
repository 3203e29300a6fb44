//! The broadcast source task: reads one broadcast point from a line server and hands every
//! record to the journal, acknowledging to the PLC only once the journal holds it.
//!
//! - **Handshake layout**: on every change of the counter (and at every poll, in case a
//!   notification was lost) the record nodes are read in one request; the record is delivered
//!   and, once durable, the acknowledgement is written. A record already acknowledged (before a
//!   reconnect or a restart of the controller) is not delivered again.
//! - **FIFO layout**: on every change of the trigger the two newest slots are read; when the
//!   second is the record that was newest before, the first is the one new record (the common
//!   case, one small request). Otherwise, and at every poll, all slots are read in one request
//!   and every record not delivered yet, or whose payload changed (a correction), is delivered
//!   oldest first. After a restart everything in the FIFO is delivered once more; the core
//!   ignores what it already has (same number, same payload).
//! - After every (re)connect the layout's state is read before anything else, so what happened
//!   while the link was down is caught up. The link going down and coming back, and the PLC's
//!   "no handshake" flag, are delivered as conditions (alarms).
//! - The task stops when its [`SourceHandle`] is dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ::opcua::types::{DataValue, NodeId, Variant};
use serde::Serialize;
use takt_core::{AlarmKind, Input, RawRecord};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, sleep};

use super::config::{AckWith, FifoOrder, Layout, NodeRef, RecordNodes, SourceConfig};
use super::connection::{self, Link, LinkError};
use super::decode::{self, RecordValues};

/// Where inputs go: the controller's journal. `deliver` resolves once the input is durable; an
/// error means it is not, and the source will offer it again.
pub trait InputSink: Send + Sync + 'static {
    fn deliver(&self, input: Input) -> impl Future<Output = Result<(), SinkError>> + Send;
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
        subject: format!("{}/{}", cfg.line, cfg.point),
        cfg,
        sink,
        status: status_tx,
        link_alarm: None,
        no_handshake: None,
        line_state: None,
        acked_counter: None,
        fifo_seen: HashMap::new(),
        fifo_newest: None,
        rejected: HashSet::new(),
    };
    let task = tokio::spawn(source.run(client, commands));
    Ok(SourceHandle {
        backfill,
        status,
        task,
    })
}

/// The NodeIds of a source on the server it is connected to.
#[derive(Debug)]
struct Nodes {
    trigger: NodeId,
    ack: Option<NodeId>,
    no_handshake: Option<NodeId>,
    /// Handshake: one record; FIFO: every slot, in slot order.
    records: Vec<ResolvedRecord>,
    running: Option<NodeId>,
    stop_reason: Option<NodeId>,
}

#[derive(Debug)]
struct ResolvedRecord {
    seq: NodeId,
    vin: NodeId,
    body: Option<NodeId>,
    model: NodeId,
    options: NodeId,
}

impl ResolvedRecord {
    fn new(nodes: &RecordNodes, ns: u16) -> Result<Self, LinkError> {
        Ok(Self {
            seq: node(&nodes.seq, ns)?,
            vin: node(&nodes.vin, ns)?,
            body: nodes.body.as_deref().map(|b| node(b, ns)).transpose()?,
            model: node(&nodes.model, ns)?,
            options: node(&nodes.options, ns)?,
        })
    }

    fn push_ids(&self, out: &mut Vec<NodeId>) {
        out.extend([self.seq.clone(), self.vin.clone()]);
        out.extend(self.body.clone());
        out.extend([self.model.clone(), self.options.clone()]);
    }

    /// Picks this record's values off the front of `values` (as laid out by `push_ids`).
    fn take<'a>(
        &self,
        values: &mut impl Iterator<Item = &'a DataValue>,
    ) -> Option<RecordValues<'a>> {
        Some(RecordValues {
            seq: values.next()?,
            vin: values.next()?,
            body: match self.body {
                Some(_) => Some(values.next()?),
                None => None,
            },
            model: values.next()?,
            options: values.next()?,
        })
    }
}

fn node(text: &str, ns: u16) -> Result<NodeId, LinkError> {
    NodeRef::parse(text)
        .map(|n| n.resolve(ns))
        .map_err(LinkError)
}

impl Nodes {
    fn resolve(cfg: &SourceConfig, ns: u16) -> Result<Self, LinkError> {
        let (running, stop_reason) = match &cfg.line_state {
            Some(state) => (
                Some(node(&state.running, ns)?),
                state
                    .stop_reason
                    .as_deref()
                    .map(|r| node(r, ns))
                    .transpose()?,
            ),
            None => (None, None),
        };
        Ok(match &cfg.layout {
            Layout::Handshake {
                record,
                counter,
                ack,
                no_handshake,
                ..
            } => Self {
                trigger: node(counter, ns)?,
                ack: Some(node(ack, ns)?),
                no_handshake: no_handshake.as_deref().map(|n| node(n, ns)).transpose()?,
                records: vec![ResolvedRecord::new(record, ns)?],
                running,
                stop_reason,
            },
            Layout::Fifo { trigger, .. } => Self {
                trigger: node(trigger, ns)?,
                ack: None,
                no_handshake: None,
                records: cfg
                    .fifo_slots()
                    .iter()
                    .map(|slot| ResolvedRecord::new(slot, ns))
                    .collect::<Result<_, _>>()?,
                running,
                stop_reason,
            },
        })
    }

    /// Nodes whose changes the source reacts to.
    fn watched(&self) -> Vec<NodeId> {
        let mut nodes = vec![self.trigger.clone()];
        nodes.extend(self.no_handshake.clone());
        nodes.extend(self.running.clone());
        nodes.extend(self.stop_reason.clone());
        nodes
    }
}

/// Why the records are read: the trigger changed (the newest slots may be enough), or a
/// (re)connect or poll wants everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Changed,
    Full,
}

/// What ended a connected spell: the handle went away, or the link failed.
enum Ended {
    Stopped,
    Failed(LinkError),
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
    /// Handshake: the counter value last acknowledged.
    acked_counter: Option<u32>,
    /// FIFO: the records delivered, by number, as they were in the slots at the last read.
    fifo_seen: HashMap<u32, RawRecord>,
    /// FIFO: the newest record at the last read, if it was readable and in the slot the next
    /// trigger's head read looks at; `None` sends the next trigger straight to a whole read.
    fifo_newest: Option<RawRecord>,
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
                    backoff = BACKOFF_MIN;
                    let served = self.serve(&mut link, &mut commands).await;
                    link.close().await;
                    served.err().unwrap_or(Ended::Stopped)
                }
                Err(e) => Ended::Failed(e),
            };
            match ended {
                Ended::Stopped => return,
                Ended::Failed(e) => self.link_down(e).await,
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
        self.catch_up(link, &nodes).await?;
        let mut poll = tokio::time::interval(Duration::from_millis(self.cfg.poll_ms));
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        poll.tick().await;
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Some((node, _)) if node == nodes.trigger => {
                        self.read_records(link, &nodes, Reading::Changed).await?;
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
                _ = poll.tick() => self.catch_up(link, &nodes).await?,
                lost = &mut link.lost => {
                    return Err(lost.unwrap_or_else(|_| LinkError("session ended".into())).into());
                }
            }
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
            Layout::Handshake { ack_with, .. } => {
                let ack_with = *ack_with;
                self.read_handshake(link, nodes, ack_with).await
            }
            Layout::Fifo { order, .. } => {
                let order = *order;
                if reading == Reading::Changed && self.read_fifo_head(link, nodes, order).await? {
                    return Ok(());
                }
                self.read_fifo(link, nodes, order).await
            }
        }
    }

    async fn read_handshake(
        &mut self,
        link: &Link,
        nodes: &Nodes,
        ack_with: AckWith,
    ) -> Result<(), Ended> {
        let ack_node = nodes
            .ack
            .as_ref()
            .ok_or_else(|| LinkError("no ack node".into()))?;
        let mut ids = vec![nodes.trigger.clone(), ack_node.clone()];
        nodes.records[0].push_ids(&mut ids);
        let values = link.read(&ids).await?;
        let counter = decode::value("counter", &values[0])
            .and_then(|v| decode::number("counter", v))
            .map_err(|e| LinkError(format!("handshake {e}")))?;
        if self.acked_counter == Some(counter) {
            return Ok(());
        }
        let ack_variant = decode::value("ack", &values[1]).ok().cloned();
        let ack = ack_variant
            .as_ref()
            .and_then(|v| decode::number("ack", v).ok());
        let mut rest = values[2..].iter();
        let Some(fields) = nodes.records[0].take(&mut rest) else {
            return Err(LinkError("short read of the record".into()).into());
        };
        if fields.is_empty_slot() {
            // Nothing presented yet (a PLC fresh from power-on).
            return Ok(());
        }
        let record = fields.decode(&self.cfg.options_format);
        let ack_value = match (&record, ack_with) {
            (_, AckWith::Counter) => counter,
            (Ok(r), AckWith::Seq) => r.seq,
            // Without a readable number there is nothing to acknowledge with: the PLC will
            // raise "no handshake", which is right — someone has to look at it.
            (Err(_), AckWith::Seq) => {
                self.deliver_record(record).await?;
                return Ok(());
            }
        };
        if ack == Some(ack_value) {
            // Acknowledged before (by us, before a reconnect or restart): durable already.
            self.acked_counter = Some(counter);
            return Ok(());
        }
        self.deliver_record(record).await?;
        link.write(ack_node, same_type(ack_variant.as_ref(), ack_value))
            .await?;
        self.acked_counter = Some(counter);
        Ok(())
    }

    /// The common case of a FIFO trigger in one small read: exactly one record pushed since the
    /// last read. Reads the newest two slots; if the second holds the record that was newest
    /// before, the first is the only new one. `false` when that does not hold (several pushed
    /// within one publishing interval, a FIFO not full yet in oldest-first order, an unreadable
    /// slot, nothing read before): then the whole FIFO must be read, one round trip more than
    /// before this shortcut for a burst. A correction deeper in the FIFO without a push is found
    /// by that whole read, which every poll does.
    async fn read_fifo_head(
        &mut self,
        link: &Link,
        nodes: &Nodes,
        order: FifoOrder,
    ) -> Result<bool, Ended> {
        let slots = nodes.records.len();
        let Some(before) = self.fifo_newest.clone() else {
            return Ok(false);
        };
        if slots < 2 {
            return Ok(false);
        }
        let (newest, next) = match order {
            FifoOrder::NewestFirst => (0, 1),
            FifoOrder::OldestFirst => (slots - 1, slots - 2),
        };
        let mut ids = Vec::new();
        nodes.records[newest].push_ids(&mut ids);
        nodes.records[next].push_ids(&mut ids);
        let values = link.read(&ids).await?;
        let mut rest = values.iter();
        let mut decode = |slot: &ResolvedRecord| {
            slot.take(&mut rest)
                .filter(|fields| !fields.is_empty_slot())
                .and_then(|fields| fields.decode(&self.cfg.options_format).ok())
        };
        let (Some(record), Some(previous)) =
            (decode(&nodes.records[newest]), decode(&nodes.records[next]))
        else {
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

    async fn read_fifo(
        &mut self,
        link: &Link,
        nodes: &Nodes,
        order: FifoOrder,
    ) -> Result<(), Ended> {
        let mut ids = Vec::new();
        for slot in &nodes.records {
            slot.push_ids(&mut ids);
        }
        let values = link.read(&ids).await?;
        let mut rest = values.iter();
        let mut slots = Vec::with_capacity(nodes.records.len());
        for slot in &nodes.records {
            let Some(fields) = slot.take(&mut rest) else {
                return Err(LinkError("short read of the FIFO".into()).into());
            };
            if !fields.is_empty_slot() {
                slots.push(fields.decode(&self.cfg.options_format));
            }
        }
        // The next trigger may try the two newest slots only if they are where the head read
        // looks: an oldest-first FIFO fills from slot 0, so until it is full its newest record
        // is not in the last slot, and the head read would be a round trip wasted every time.
        let head_readable = order == FifoOrder::NewestFirst || slots.len() == nodes.records.len();
        if order == FifoOrder::NewestFirst {
            slots.reverse();
        }
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
        for (i, slot) in slots.into_iter().enumerate() {
            match slot {
                Ok(r) if newest_at.get(&r.seq) == Some(&i) => {
                    if self.fifo_seen.get(&r.seq) != Some(&r) {
                        self.deliver_record(Ok(r.clone())).await?;
                        self.fifo_seen.insert(r.seq, r.clone());
                    }
                    current.insert(r.seq, r);
                }
                Ok(_) => {}
                Err(e) => {
                    let text = e.to_string();
                    if !self.rejected.contains(&text) {
                        self.deliver_record(Err(e)).await?;
                    }
                    problems.insert(text);
                }
            }
        }
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
        if let Layout::Fifo { order, .. } = self.cfg.layout {
            // Offer these numbers again even if delivered: the core asked, so it lacks them.
            self.fifo_seen.retain(|&seq, _| !in_range(seq, from, to));
            self.read_fifo(link, nodes, order).await?;
        }
        Ok(())
    }

    async fn deliver_record(
        &mut self,
        record: Result<RawRecord, decode::FieldError>,
    ) -> Result<(), Ended> {
        match record {
            Ok(record) => {
                let seq = record.seq;
                self.deliver(Input::Broadcast {
                    line: self.cfg.line.clone(),
                    point: self.cfg.point.clone(),
                    record,
                })
                .await?;
                self.status.send_modify(|s| {
                    s.delivered += 1;
                    s.last_seq = Some(seq);
                });
            }
            Err(e) => {
                // Not even a record the core could judge: journal the rejection as an alarm
                // event (raised and cleared, left for an operator to acknowledge).
                let message = format!("unreadable record: {e}");
                tracing::warn!(source = %self.subject, "{message}");
                self.rejected.insert(e.to_string());
                for active in [true, false] {
                    self.deliver(self.condition(AlarmKind::RecordRejected, active, &message))
                        .await?;
                }
            }
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
            self.deliver(Input::LineState {
                line: self.cfg.line.clone(),
                running: state.0,
                reason: state.1.clone(),
            })
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

    async fn link_down(&mut self, e: LinkError) {
        tracing::warn!(source = %self.subject, endpoint = %self.cfg.endpoint, "OPC UA source down: {e}");
        self.status.send_modify(|s| {
            s.connected = false;
            s.last_error = Some(e.0.clone());
        });
        // Notifications in flight are gone with the session; the next connect reads the state.
        self.acked_counter = None;
        if self.link_alarm != Some(true) {
            let message = format!("{}: {e}", self.cfg.endpoint);
            if self
                .deliver(self.condition(AlarmKind::SourceDisconnected, true, &message))
                .await
                .is_ok()
            {
                self.link_alarm = Some(true);
            }
        }
    }

    fn condition(&self, alarm: AlarmKind, active: bool, message: &str) -> Input {
        Input::Condition {
            alarm,
            subject: self.subject.clone(),
            active,
            message: message.to_owned(),
        }
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
