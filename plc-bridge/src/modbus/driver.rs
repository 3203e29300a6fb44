//! The Modbus TCP driver: one task owns one connection (several unit ids on it).
//!
//! - Outputs are a **desired state** per (unit, position). The task writes only what differs from
//!   what it last wrote successfully, batched into contiguous runs within the protocol's limits,
//!   and forgets what it wrote on every disconnect, so the whole desired state is re-asserted
//!   after every (re)connect.
//! - Inputs are polled at `poll_interval`; a button counts as pressed after `debounce_polls`
//!   consecutive polls that see it pressed, and emits exactly one [`Event::ButtonPressed`] until
//!   a poll sees it released again.
//! - Every request has `request_timeout`. A transport error or timeout drops the connection
//!   ([`Event::Disconnected`]) and the task reconnects with exponential backoff capped at
//!   `backoff_max`. A Modbus exception answer is data: the connection is kept. A unit that
//!   refuses a request is reported once ([`Event::Exception`]) and again only for another
//!   request it refuses, until every request it refused has been answered
//!   ([`Event::UnitAnswering`]); a reconnect does not forget it, since the next poll and the
//!   re-asserted outputs ask again.
//! - The task stops when every [`Handle`] is dropped. [`Handle::set`] never waits: it leaves
//!   the lamp's latest state in a mailbox the task empties between requests, so a slow or stuck
//!   device holds up nobody who drives it, and what waits is bounded by its lamps. The task
//!   waits when the event queue is full (presses are never dropped).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_modbus::client::{Context, Reader, Writer, tcp};
use tokio_modbus::slave::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};

use super::address::{RegisterAddress, Table};
use super::profile::{LampState, Profile, ProfileError, Value};

/// Most registers one write may carry (function 16).
pub const MAX_WRITE_REGISTERS: usize = 123;
/// Most coils one write may carry (function 15).
pub const MAX_WRITE_COILS: usize = 1968;

/// How to reach and drive one Modbus TCP endpoint.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The device or gateway.
    pub endpoint: SocketAddr,
    /// Unit ids on this connection and their profiles.
    pub units: BTreeMap<u8, Profile>,
    /// Input polling interval.
    pub poll_interval: Duration,
    /// Consecutive polls a press must be seen on (at least 1).
    pub debounce_polls: u32,
    /// Timeout of every connect and request.
    pub request_timeout: Duration,
    /// First reconnect delay; doubled per failed attempt.
    pub backoff_min: Duration,
    /// Cap of the reconnect delay.
    pub backoff_max: Duration,
    /// Capacity of the queue of [`Handle::written`] callers.
    pub command_capacity: usize,
    /// Capacity of the event queue.
    pub event_capacity: usize,
}

impl DriverConfig {
    /// Defaults fit for pick lights on a plant network.
    #[must_use]
    pub fn new(endpoint: SocketAddr, units: BTreeMap<u8, Profile>) -> Self {
        Self {
            endpoint,
            units,
            poll_interval: Duration::from_millis(20),
            debounce_polls: 2,
            request_timeout: Duration::from_millis(500),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            command_capacity: 256,
            event_capacity: 256,
        }
    }
}

/// What the driver reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A debounced press (rising edge).
    ButtonPressed {
        /// Unit id.
        unit: u8,
        /// Position on the unit.
        position: u16,
    },
    /// The connection is up (the desired state is being re-asserted).
    Connected,
    /// The connection is down; the task reconnects with backoff.
    Disconnected {
        /// Why (transport error, timeout, refused connect).
        cause: String,
    },
    /// The device answered with a Modbus exception; the connection is kept.
    Exception {
        /// Unit id.
        unit: u8,
        /// The request that was refused, e.g. `write hr:0 x3`.
        request: String,
        /// The device's answer.
        code: ExceptionCode,
    },
    /// A unit answers what it is asked: reported after its first clean poll since the driver
    /// started, and again once every request it refused has been answered.
    UnitAnswering {
        /// Unit id.
        unit: u8,
    },
}

/// Why [`Handle::set`] refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    /// No such unit on this connection.
    #[error("unit {0} is not configured on this connection")]
    UnknownUnit(u8),
    /// The profile cannot show it.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The driver task has stopped.
    #[error("the driver task has stopped")]
    Stopped,
}

#[derive(Debug)]
enum Command {
    /// Answered once everything set before it has been written.
    Written(oneshot::Sender<()>),
}

/// Lamp states set and not yet taken by the task: the latest per (unit, position).
#[derive(Debug, Default)]
struct Mailbox {
    lamps: Mutex<BTreeMap<(u8, u16), LampState>>,
    /// Holds one wake-up while the task is busy, so a set between two looks is not missed.
    wake: Notify,
}

impl Mailbox {
    fn put(&self, unit: u8, position: u16, state: LampState) {
        // A panic while holding the lock leaves a map that is still whole: keep using it.
        let mut lamps = self.lamps.lock().unwrap_or_else(PoisonError::into_inner);
        lamps.insert((unit, position), state);
        drop(lamps);
        self.wake.notify_one();
    }

    fn take(&self) -> BTreeMap<(u8, u16), LampState> {
        std::mem::take(&mut *self.lamps.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A cheap, cloneable handle to one driver task.
#[derive(Debug, Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    mailbox: Arc<Mailbox>,
    units: Arc<BTreeMap<u8, Profile>>,
}

impl Handle {
    /// Sets the desired state of one lamp, checked against the profile. Never waits: the task
    /// takes the latest state of each lamp when it is next free, however slow the device.
    ///
    /// # Errors
    /// [`SetError`].
    pub fn set(&self, unit: u8, position: u16, state: LampState) -> Result<(), SetError> {
        let profile = self.units.get(&unit).ok_or(SetError::UnknownUnit(unit))?;
        profile.encode(position, &state)?;
        if self.commands.is_closed() {
            return Err(SetError::Stopped);
        }
        self.mailbox.put(unit, position, state);
        Ok(())
    }

    /// Waits until every state set before this call has been written to the device (or
    /// refused by it); `false` if the task stopped first. While the device is down this waits
    /// for it to come back: bound it with a timeout where that matters (a controlled stop).
    pub async fn written(&self) -> bool {
        let (done, answer) = oneshot::channel();
        if self.commands.send(Command::Written(done)).await.is_err() {
            return false;
        }
        answer.await.is_ok()
    }
}

/// Starts the task owning the connection to `config.endpoint`. Must run inside a tokio runtime.
#[must_use]
pub fn spawn(config: DriverConfig) -> (Handle, mpsc::Receiver<Event>) {
    let (commands, command_rx) = mpsc::channel(config.command_capacity.max(1));
    let (events, event_rx) = mpsc::channel(config.event_capacity.max(1));
    let units = Arc::new(config.units.clone());
    let mailbox = Arc::new(Mailbox::default());
    let task = Task {
        mailbox: Arc::clone(&mailbox),
        desired: BTreeMap::new(),
        written: BTreeMap::new(),
        dirty: false,
        debounce: BTreeMap::new(),
        refused: BTreeMap::new(),
        answering: BTreeSet::new(),
        awaiting_write: Vec::new(),
        beats: 0,
        units: Arc::clone(&units),
        config,
        commands: command_rx,
        events,
    };
    tokio::spawn(task.run());
    (
        Handle {
            commands,
            mailbox,
            units,
        },
        event_rx,
    )
}

/// Why a connection ended.
enum Stop {
    /// Every handle is gone: the task ends.
    HandlesDropped,
    /// Transport error or timeout: reconnect.
    Transport(String),
}

#[derive(Debug, Default, Clone, Copy)]
struct Debounce {
    seen: u32,
    reported: bool,
}

struct Task {
    config: DriverConfig,
    units: Arc<BTreeMap<u8, Profile>>,
    /// (unit, address) → value wanted on the device.
    desired: BTreeMap<(u8, RegisterAddress), Value>,
    /// (unit, address) → value last written on this connection. Cleared on disconnect.
    written: BTreeMap<(u8, RegisterAddress), Value>,
    /// `desired` may differ from `written`: a flush has work. Saves comparing every output
    /// before each button read.
    dirty: bool,
    debounce: BTreeMap<(u8, u16), Debounce>,
    /// Per unit, the requests (read or write, and start address) whose last try was refused,
    /// with the answer: each is reported once, not at every poll.
    refused: BTreeMap<u8, BTreeMap<(bool, RegisterAddress), ExceptionCode>>,
    /// Units reported answering since their last refusal.
    answering: BTreeSet<u8>,
    /// `Handle::written` callers, answered after the next flush.
    awaiting_write: Vec<oneshot::Sender<()>>,
    /// Heartbeats sent to the units' watchdogs.
    beats: u64,
    mailbox: Arc<Mailbox>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
}

/// A Modbus TCP connection with Nagle's algorithm off: a light's write must not wait for the
/// acknowledgement of the previous request's segment.
async fn connect(endpoint: std::net::SocketAddr) -> std::io::Result<Context> {
    let stream = tokio::net::TcpStream::connect(endpoint).await?;
    stream.set_nodelay(true)?;
    Ok(tcp::attach(stream))
}

impl Task {
    async fn run(mut self) {
        let mut backoff = self.config.backoff_min;
        loop {
            let connected =
                timeout(self.config.request_timeout, connect(self.config.endpoint)).await;
            let stop = match connected {
                Ok(Ok(context)) => {
                    backoff = self.config.backoff_min;
                    self.emit(Event::Connected).await;
                    self.serve(context).await
                }
                Ok(Err(error)) => Stop::Transport(format!("connect: {error}")),
                Err(_) => Stop::Transport("connect: timed out".to_owned()),
            };
            let cause = match stop {
                Stop::HandlesDropped => return,
                Stop::Transport(cause) => cause,
            };
            self.written.clear();
            self.dirty = true;
            self.debounce.clear();
            self.emit(Event::Disconnected { cause }).await;
            // Keep taking `written` callers while waiting, so their queue cannot fill on a dead device.
            let deadline = Instant::now() + backoff;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => break,
                    command = self.commands.recv() => match command {
                        Some(command) => self.apply(command),
                        None => return,
                    },
                }
            }
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
    }

    async fn emit(&self, event: Event) {
        // A dropped receiver only means nobody listens; the outputs still matter.
        let _ = self.events.send(event).await;
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Written(done) => {
                // Whatever was set before the caller asked is in the mailbox now.
                self.take_mailbox();
                self.awaiting_write.push(done);
            }
        }
    }

    /// Moves the lamps set since the last look into the desired state.
    fn take_mailbox(&mut self) {
        for ((unit, position), state) in self.mailbox.take() {
            let Some(profile) = self.units.get(&unit) else {
                continue;
            };
            // Checked by `Handle::set`.
            if let Ok(writes) = profile.encode(position, &state) {
                for (address, value) in writes {
                    self.desired.insert((unit, address), value);
                }
                self.dirty = true;
            }
        }
    }

    async fn serve(&mut self, mut context: Context) -> Stop {
        let mut poll = tokio::time::interval(self.config.poll_interval);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let beat_every = self
            .units
            .values()
            .filter_map(|p| p.watchdog.map(|w| w.period_ms))
            .min();
        // Without a watchdog the interval still exists but its branch is never taken.
        let mut heartbeat =
            tokio::time::interval(Duration::from_millis(beat_every.unwrap_or(u64::MAX >> 2)));
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            self.take_mailbox();
            if let Err(cause) = self.flush(&mut context).await {
                return Stop::Transport(cause);
            }
            for done in self.awaiting_write.drain(..) {
                let _ = done.send(());
            }
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => {
                        self.apply(command);
                        // Take whatever else is queued so it goes out in the same batches.
                        self.apply_queued();
                    }
                    None => return Stop::HandlesDropped,
                },
                () = self.mailbox.wake.notified() => {}
                _ = heartbeat.tick(), if beat_every.is_some() => self.beat(),
                _ = poll.tick() => {
                    if let Err(cause) = self.poll_inputs(&mut context).await {
                        return Stop::Transport(cause);
                    }
                }
            }
        }
    }

    /// Writes the diff between desired and written state, in contiguous runs.
    async fn flush(&mut self, context: &mut Context) -> Result<(), String> {
        if !self.dirty {
            return Ok(());
        }
        let pending: Vec<((u8, RegisterAddress), Value)> = self
            .desired
            .iter()
            .filter(|(key, value)| self.written.get(key) != Some(value))
            .map(|(key, value)| (*key, *value))
            .collect();
        for run in contiguous_runs(&pending) {
            let (unit, start) = run[0].0;
            context.set_slave(Slave(unit));
            let request = format!("write {start} x{}", run.len());
            let call = async {
                match start.table {
                    Table::Coil => {
                        let bits: Vec<bool> = run
                            .iter()
                            .map(|(_, v)| matches!(v, Value::Bit(true)))
                            .collect();
                        context.write_multiple_coils(start.address, &bits).await
                    }
                    _ => {
                        let words: Vec<u16> = run
                            .iter()
                            .map(|(_, v)| if let Value::Word(w) = v { *w } else { 0 })
                            .collect();
                        context
                            .write_multiple_registers(start.address, &words)
                            .await
                    }
                }
            };
            let answer = self.request(call).await?.map(|_| ());
            self.answered(unit, (true, start), request, answer).await;
            // After an exception the values count as written too: the device answered, and
            // retrying every cycle would only repeat the answer. A reconnect or a new desired
            // value tries again.
            for (key, value) in run {
                self.written.insert(*key, *value);
            }
        }
        self.dirty = false;
        Ok(())
    }

    async fn request<T>(
        &self,
        call: impl Future<Output = tokio_modbus::Result<T>>,
    ) -> Result<Result<T, ExceptionCode>, String> {
        match timeout(self.config.request_timeout, call).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(format!("transport: {error}")),
            Err(_) => Err("request timed out".to_owned()),
        }
    }

    /// Notes how a unit answered one request; a new refusal is reported at once.
    async fn answered(
        &mut self,
        unit: u8,
        key: (bool, RegisterAddress),
        request: String,
        answer: Result<(), ExceptionCode>,
    ) {
        let refused = self.refused.entry(unit).or_default();
        match answer {
            Err(code) => {
                if refused.insert(key, code) != Some(code) {
                    self.answering.remove(&unit);
                    self.emit(Event::Exception {
                        unit,
                        request,
                        code,
                    })
                    .await;
                }
            }
            Ok(()) => {
                refused.remove(&key);
            }
        }
    }

    /// After a unit's button read, which follows its writes: a unit with nothing refused that
    /// was not known to answer is reported answering, so a listener learns each unit's state
    /// once after a start and then at each change.
    async fn report_answering(&mut self, unit: u8) {
        let clean = self.refused.get(&unit).is_none_or(BTreeMap::is_empty);
        if clean && self.answering.insert(unit) {
            self.emit(Event::UnitAnswering { unit }).await;
        }
    }

    /// The next heartbeat of every unit with a watchdog: a desired value like a lamp's, so it
    /// goes out with the next flush and is re-asserted after a reconnect.
    fn beat(&mut self) {
        self.beats += 1;
        for (&unit, profile) in self.units.iter() {
            if let Some(watchdog) = profile.watchdog {
                self.desired
                    .insert((unit, watchdog.address), watchdog.value(self.beats));
                self.dirty = true;
            }
        }
    }

    /// Takes every lamp set and every command already queued, without waiting.
    fn apply_queued(&mut self) {
        self.take_mailbox();
        while let Ok(command) = self.commands.try_recv() {
            self.apply(command);
        }
    }

    async fn poll_inputs(&mut self, context: &mut Context) -> Result<(), String> {
        let units = Arc::clone(&self.units);
        for (&unit, profile) in units.iter() {
            // Outputs first: a light set while a round of reads is under way goes out before
            // the next read instead of after the last unit's.
            self.apply_queued();
            self.flush(context).await?;
            let (start, count) = profile.button_span();
            context.set_slave(Slave(unit));
            let pressed: Result<Vec<bool>, ExceptionCode> = match start.table {
                Table::Coil => {
                    self.request(context.read_coils(start.address, count))
                        .await?
                }
                Table::DiscreteInput => {
                    self.request(context.read_discrete_inputs(start.address, count))
                        .await?
                }
                Table::InputRegister => self
                    .request(context.read_input_registers(start.address, count))
                    .await?
                    .map(|words| words.into_iter().map(|w| profile.word_pressed(w)).collect()),
                Table::HoldingRegister => self
                    .request(context.read_holding_registers(start.address, count))
                    .await?
                    .map(|words| words.into_iter().map(|w| profile.word_pressed(w)).collect()),
            };
            let request = format!("read {start} x{count}");
            let answer = pressed.as_ref().map(|_| ()).map_err(|code| *code);
            self.answered(unit, (false, start), request, answer).await;
            self.report_answering(unit).await;
            let Ok(pressed) = pressed else {
                continue;
            };
            for position in 0..profile.positions {
                let down = pressed
                    .get(profile.button_index(position))
                    .copied()
                    .unwrap_or(false);
                let state = self.debounce.entry((unit, position)).or_default();
                if !down {
                    *state = Debounce::default();
                    continue;
                }
                state.seen = state.seen.saturating_add(1);
                if !state.reported && state.seen >= self.config.debounce_polls.max(1) {
                    state.reported = true;
                    self.emit(Event::ButtonPressed { unit, position }).await;
                }
            }
        }
        Ok(())
    }
}

/// Splits pending writes (sorted by unit, table, address) into runs one request can carry:
/// same unit and table, consecutive addresses, at most the protocol's per-write limit.
fn contiguous_runs(
    pending: &[((u8, RegisterAddress), Value)],
) -> Vec<&[((u8, RegisterAddress), Value)]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=pending.len() {
        let split = i == pending.len() || {
            let ((unit, first), _) = pending[start];
            let ((prev_unit, prev), _) = pending[i - 1];
            let ((next_unit, next), _) = pending[i];
            let limit = if first.table == Table::Coil {
                MAX_WRITE_COILS
            } else {
                MAX_WRITE_REGISTERS
            };
            next_unit != unit
                || prev_unit != unit
                || next.table != first.table
                || u32::from(next.address) != u32::from(prev.address) + 1
                || i - start >= limit
        };
        if split {
            runs.push(&pending[start..i]);
            start = i;
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(unit: u8, table: Table, address: u16) -> (u8, RegisterAddress) {
        (unit, RegisterAddress::new(table, address))
    }

    #[test]
    fn runs_split_on_unit_table_gap_and_limit() {
        let mut pending = Vec::new();
        for a in 0..130 {
            pending.push((key(1, Table::HoldingRegister, a), Value::Word(a)));
        }
        pending.push((key(1, Table::HoldingRegister, 200), Value::Word(0)));
        pending.push((key(2, Table::HoldingRegister, 201), Value::Word(0)));
        pending.push((key(2, Table::Coil, 0), Value::Bit(true)));
        pending.sort_by_key(|(k, _)| *k);
        let lengths: Vec<usize> = contiguous_runs(&pending).iter().map(|r| r.len()).collect();
        assert_eq!(lengths, vec![123, 7, 1, 1, 1]);
    }

    #[test]
    fn coil_runs_respect_the_coil_limit() {
        let pending: Vec<_> = (0..2000)
            .map(|a| (key(1, Table::Coil, a), Value::Bit(false)))
            .collect();
        let lengths: Vec<usize> = contiguous_runs(&pending).iter().map(|r| r.len()).collect();
        assert_eq!(lengths, vec![1968, 32]);
    }
}
