//! The core state machine: `handle(now, input)` in, `poll_action()` and `take_changes()` out.
//!
//! Split by concern: [`sequence`] turns records into positions and positions into installs,
//! [`calls`] creates, corrects and cancels sequence calls, [`station`] runs pick/put tasks,
//! [`racks`] fills and moves racks, [`coverage`] measures what is ready ahead of the line,
//! [`takt`] streams each line's status every takt.

mod calls;
mod coverage;
mod racks;
mod rejections;
mod sequence;
mod shipments;
mod station;
mod suppliers;
mod takt;

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::alarm::{AlarmBook, AlarmInput, AlarmKey, AlarmKind};
use crate::config::ConfigIndex;
use crate::forecast::Forecasts;
use crate::identity::Identities;
use crate::ids::PointId;
use crate::io::{Action, Change, Clock, DeviceIntent, Input, OutboxEvent, Outcome, StreamEvent};
use crate::model::{Call, CallId, Coverage, LineStatus, Rack, Task, TaskId, Vehicle, VehicleId};
use crate::picking::{Picking, PickingInput};
use crate::sequencing::{PointState, Sequencing, SequencingInput};
use crate::suppliers::Suppliers;

/// Everything the core knows, context by context; serialisable so the runtime can snapshot it.
///
/// Invariant: only live things are here (vehicles between broadcast point and their last install
/// station, their calls, racks not yet emptied at the line), so memory does not grow with the
/// number of finished vehicles. Everything finished lives on in the store's projections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    sequencing: Sequencing,
    picking: Picking,
    alarms: AlarmBook,
    suppliers: Suppliers,
    /// The current plan's demand per supplier, part and hour.
    forecasts: Forecasts,
    /// API tokens: it reads no other context and no other reads it.
    identities: Identities,
    /// The id of the last stream event put in the outbox.
    last_event: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ChangeKey {
    Vehicle(VehicleId),
    Call(CallId),
    Rack(String),
    Task(TaskId),
    Alarm(AlarmKey),
    Line(String),
    Coverage(String),
    Token(String),
    Shipment(u64),
    /// (line, hour, family, part).
    Demand(String, DateTime<Utc>, String, String),
    Event(u64),
}

/// The sans-IO core. See the crate docs for the contract.
#[derive(Debug)]
pub struct Core {
    cfg: Arc<ConfigIndex>,
    state: State,
    actions: VecDeque<Action>,
    /// Entities changed since the last [`Core::take_changes`], in the order they first changed,
    /// each with its row. Vehicles, calls and racks still in the state have no row yet (`None`):
    /// one is copied out of the state when taken, however often it changed in between (a call
    /// changes several times per batch, and each copy allocated every string it holds), or as
    /// it leaves the state ([`Core::changed_leaving`]). A vector plus an index rather than an
    /// ordered map: rows are large and an ordered map would shift them around on every insert.
    changes: Vec<(ChangeKey, Option<Change>)>,
    /// Where each entity's row sits in `changes`; only looked up, never iterated.
    change_at: HashMap<ChangeKey, usize>,
    /// Families whose coverage may have moved during the current input.
    coverage_dirty: BTreeSet<String>,
    /// The time of the input being handled, for the events it emits.
    now: DateTime<Utc>,
}

impl Core {
    /// A plant with nothing broadcast yet, lines assumed running.
    pub fn new(cfg: Arc<ConfigIndex>) -> Self {
        let state = State {
            sequencing: Sequencing::new(&cfg),
            picking: Picking::new(&cfg),
            alarms: AlarmBook::default(),
            suppliers: Suppliers::default(),
            forecasts: Forecasts::default(),
            identities: Identities::default(),
            last_event: 0,
        };
        Self::restore(cfg, state)
    }

    /// Continue from a snapshot taken with [`Core::state`].
    pub fn restore(cfg: Arc<ConfigIndex>, state: State) -> Self {
        Self {
            cfg,
            state,
            actions: VecDeque::new(),
            changes: Vec::new(),
            change_at: HashMap::new(),
            coverage_dirty: BTreeSet::new(),
            now: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn config(&self) -> &ConfigIndex {
        &self.cfg
    }

    /// Apply one input that happened at `now`. Timers due by `now` fire first. By reference: the
    /// runtime journals the input as it is after the core has taken it.
    pub fn handle(&mut self, now: DateTime<Utc>, input: &Input) -> Outcome {
        self.now = now;
        self.expire(now);
        let outcome = match input {
            Input::Sequencing(input) => self.sequencing(now, input),
            Input::Picking(input) => self.picking(now, input),
            Input::Alarms(input) => self.alarms_input(now, input),
            Input::Suppliers(input) => self.suppliers_input(now, input),
            Input::Identity(input) => {
                let (outcome, changed) = self.state.identities.handle(now, input);
                if let Some(token) = changed {
                    self.record(
                        ChangeKey::Token(token.id.clone()),
                        Some(Change::ApiToken(token)),
                    );
                }
                outcome
            }
            Input::Clock(Clock::Tick) => Outcome::Applied,
        };
        self.update_coverage(now);
        self.takt_statuses_due(now);
        outcome
    }

    fn sequencing(&mut self, now: DateTime<Utc>, input: &SequencingInput) -> Outcome {
        match input {
            SequencingInput::Broadcast {
                line,
                point,
                record,
            } => self.broadcast(now, line, point, record),
            SequencingInput::Resequence {
                line,
                point,
                vin,
                seq,
            } => self.resequence(now, line, point, vin, *seq),
            SequencingInput::Cancel { line, vin } => self.cancel_vehicle(now, line, vin),
            SequencingInput::LineState {
                line,
                running,
                reason,
            } => self.line_state(now, line, *running, reason.clone()),
            SequencingInput::ResolveCall { call, part } => self.resolve_call(now, *call, part),
        }
    }

    fn picking(&mut self, now: DateTime<Utc>, input: &PickingInput) -> Outcome {
        match input {
            PickingInput::Press { station, button } => self.press(now, station, button.clone()),
            PickingInput::CloseRack { family } => self.close_rack_by_hand(now, family),
            PickingInput::RackMoved { rack, to } => self.move_rack(now, rack, *to),
            PickingInput::ResetStation { station } => self.reset_station(station),
        }
    }

    fn alarms_input(&mut self, now: DateTime<Utc>, input: &AlarmInput) -> Outcome {
        match input {
            AlarmInput::Acknowledge { alarm } => self.acknowledge(now, alarm),
            AlarmInput::Shelve { alarm, until } => self.shelve(now, alarm, *until),
            AlarmInput::Condition {
                alarm,
                subject,
                active,
                message,
            } => {
                self.alarm_condition(now, *alarm, subject, *active, message.clone());
                if *alarm == AlarmKind::RecordRejected && *active {
                    // A record the source could not even read counts against its point.
                    self.record_judged(now, subject, true);
                }
                Outcome::Applied
            }
        }
    }

    /// Next action to carry out, in the order the core decided them.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Projection rows changed since the last call: the latest version of each entity.
    pub fn take_changes(&mut self) -> Vec<Change> {
        self.change_at.clear();
        let changes = std::mem::take(&mut self.changes);
        changes
            .into_iter()
            .filter_map(|(key, row)| {
                let row = row.or_else(|| self.row_of(&key));
                debug_assert!(row.is_some(), "{key:?} left the state without its last row");
                row
            })
            .collect()
    }

    /// Keep `row` as the latest row of its entity; `None`: read it from the state when taken.
    fn record(&mut self, key: ChangeKey, row: Option<Change>) {
        match self.change_at.entry(key) {
            Entry::Occupied(at) => self.changes[*at.get()].1 = row,
            Entry::Vacant(at) => {
                let key = at.key().clone();
                at.insert(self.changes.len());
                self.changes.push((key, row));
            }
        }
    }

    /// The row of a vehicle, call or rack as the state holds it now.
    fn row_of(&self, key: &ChangeKey) -> Option<Change> {
        match key {
            ChangeKey::Vehicle(id) => self
                .state
                .sequencing
                .vehicles
                .get(id)
                .cloned()
                .map(Change::Vehicle),
            ChangeKey::Call(id) => self
                .state
                .sequencing
                .calls
                .get(id)
                .cloned()
                .map(Change::Call),
            ChangeKey::Rack(id) => self.state.picking.racks.get(id).cloned().map(Change::Rack),
            ChangeKey::Task(_)
            | ChangeKey::Alarm(_)
            | ChangeKey::Line(_)
            | ChangeKey::Coverage(_)
            | ChangeKey::Token(_)
            | ChangeKey::Shipment(_)
            | ChangeKey::Demand(..)
            | ChangeKey::Event(_) => None,
        }
    }

    /// An entity about to leave the state: its row is copied now, if it changed since the last
    /// take (otherwise the store has its last version already).
    fn changed_leaving(&mut self, key: ChangeKey) {
        if let Some(&at) = self.change_at.get(&key) {
            self.changes[at].1 = self.row_of(&key);
        }
    }

    /// When the core next wants an input (a [`Input::Tick`] will do) even if nothing happens.
    pub fn poll_timeout(&self) -> Option<DateTime<Utc>> {
        self.state
            .sequencing
            .next_deadline(self.gap_timeout())
            .into_iter()
            .chain(self.state.alarms.next_shelf_expiry())
            .chain(self.state.suppliers.next_due())
            .min()
    }

    fn gap_timeout(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.cfg.config.alarms.gap_fill_timeout_ms as i64)
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        let timeout = self.gap_timeout();
        let mut expired = Vec::new();
        for (line, ls) in &mut self.state.sequencing.lines {
            for (point, ps) in &mut ls.points {
                let settled = ps.tracker.expire(now, timeout);
                if !settled.is_empty() {
                    expired.push((
                        line.clone(),
                        point.clone(),
                        settled,
                        ps.tracker.held_count(),
                    ));
                }
            }
        }
        for (line, point, settled, still_held) in expired {
            let subject = PointId::new(line.as_str(), point.as_str()).to_string();
            let unknown: u64 = settled
                .iter()
                .map(|s| match s {
                    crate::tracker::Settled::Unknown { count, .. } => *count,
                    crate::tracker::Settled::Vehicle { .. } => 0,
                })
                .sum();
            self.alarm_event(
                now,
                AlarmKind::GapExpired,
                &subject,
                format!(
                    "{unknown} position(s) never arrived within the gap timeout; marked unknown"
                ),
            );
            if still_held == 0 {
                self.alarm_condition(now, AlarmKind::SequenceGap, &subject, false, String::new());
            }
            self.settle(now, &line, &point, settled);
        }
        for key in self.state.alarms.expire_shelves(now) {
            self.alarm_changed(&key);
        }
        for tenant in self.state.suppliers.expire(now) {
            self.acknowledgement_alarm(now, &tenant);
        }
    }

    // ---- live views, for the runtime's status and the tests ----

    pub fn alarms(&self) -> impl Iterator<Item = &crate::alarm::Alarm> {
        self.state.alarms.iter()
    }

    pub fn alarm(&self, kind: AlarmKind, subject: &str) -> Option<&crate::alarm::Alarm> {
        self.state.alarms.get(&AlarmKey::new(kind, subject))
    }

    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        self.state.sequencing.calls.values()
    }

    pub fn vehicles(&self) -> impl Iterator<Item = &Vehicle> {
        self.state.sequencing.vehicles.values()
    }

    pub fn racks(&self) -> impl Iterator<Item = &Rack> {
        self.state.picking.racks.values()
    }

    pub fn line_status(&self, line: &str) -> Option<&LineStatus> {
        self.state.sequencing.lines.get(line).map(|l| &l.status)
    }

    pub fn coverage(&self, family: &str) -> Option<&Coverage> {
        self.state.picking.coverage.get(family)
    }

    /// The sequence number expected next at a broadcast point.
    pub fn expected_seq(&self, line: &str, point: &str) -> Option<crate::seq::SeqNo> {
        self.point(line, point).and_then(|p| p.tracker.expected())
    }

    /// Open tasks of every station.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.state
            .picking
            .stations
            .values()
            .filter_map(|s| s.task.as_ref())
    }

    /// The API tokens, as the journal has issued and revoked them.
    pub fn identities(&self) -> &Identities {
        &self.state.identities
    }

    /// Coverage of every family measured so far.
    pub fn coverages(&self) -> impl Iterator<Item = &Coverage> {
        self.state.picking.coverage.values()
    }

    /// The open task of a station.
    pub fn task(&self, station: &str) -> Option<&Task> {
        self.state
            .picking
            .stations
            .get(station)
            .and_then(|s| s.task.as_ref())
    }

    /// Everything a station's lights should show now: for re-asserting after a reconnect.
    pub fn station_lights(&self, station: &str) -> Vec<DeviceIntent> {
        let Some(st) = self.state.picking.stations.get(station) else {
            return Vec::new();
        };
        let mut out: Vec<DeviceIntent> = st
            .task
            .iter()
            .map(|t| self.task_light(station, t))
            .collect();
        out.extend(
            st.errors
                .iter()
                .map(|b| self.error_light(station, b.clone())),
        );
        out
    }

    fn point(&self, line: &str, point: &str) -> Option<&PointState> {
        self.state.sequencing.point(line, point)
    }

    // ---- output helpers ----

    fn emit(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    /// A stream event: numbered into the outbox (a projection row, so it commits with the
    /// input that caused it) and released as an action after that commit.
    fn stream(&mut self, event: StreamEvent) {
        self.state.last_event += 1;
        let id = self.state.last_event;
        let row = OutboxEvent {
            id,
            at: self.now,
            tenant: self.tenant_of(&event),
            event: event.clone(),
        };
        self.record(ChangeKey::Event(id), Some(Change::Event(row)));
        self.emit(Action::Stream(event));
    }

    /// The tenant an event concerns: the supplier of the family it is about, if that family
    /// has one. Everything else is the plant's own.
    fn tenant_of(&self, event: &StreamEvent) -> Option<String> {
        match event {
            StreamEvent::CallCreated(c)
            | StreamEvent::CallChanged(c)
            | StreamEvent::CallCancelled(c) => c.supplier.clone(),
            StreamEvent::RackClosed(r) | StreamEvent::RackMoved(r) => self.supplier_id(&r.family),
            StreamEvent::Coverage(c) => self.supplier_id(&c.family),
            StreamEvent::SupplierTaktStatus(s) => Some(s.supplier.clone()),
            StreamEvent::Shipment(s) => Some(s.supplier.clone()),
            StreamEvent::Forecast(f) => Some(f.supplier.clone()),
            StreamEvent::LineState(_)
            | StreamEvent::AlarmChanged(_)
            | StreamEvent::TaktStatus(_) => None,
        }
    }

    fn supplier_id(&self, family: &str) -> Option<String> {
        self.cfg.supplier_of(family).map(|s| s.id.clone())
    }

    fn device(&mut self, intent: DeviceIntent) {
        self.emit(Action::Device(intent));
    }

    fn changed_vehicle(&mut self, id: VehicleId) {
        if self.state.sequencing.vehicles.contains_key(&id) {
            self.record(ChangeKey::Vehicle(id), None);
        }
    }

    fn changed_call(&mut self, id: CallId) {
        if let Some(c) = self.state.sequencing.calls.get(&id) {
            let family = c.family.clone();
            self.mark_coverage(&family);
            self.record(ChangeKey::Call(id), None);
        }
    }

    /// The family's coverage may have moved: measure it again at the end of the input.
    fn mark_coverage(&mut self, family: &str) {
        if !self.coverage_dirty.contains(family) {
            self.coverage_dirty.insert(family.to_owned());
        }
    }

    fn changed_rack(&mut self, id: &str) {
        if self.state.picking.racks.contains_key(id) {
            self.record(ChangeKey::Rack(id.to_owned()), None);
        }
    }

    fn changed_task(&mut self, task: &Task) {
        self.record(ChangeKey::Task(task.id), Some(Change::Task(task.clone())));
    }

    fn changed_line(&mut self, line: &str) {
        if let Some(l) = self.state.sequencing.lines.get(line) {
            let status = l.status.clone();
            self.record(ChangeKey::Line(line.to_owned()), Some(Change::Line(status)));
        }
    }

    // ---- alarms ----

    fn alarm_changed(&mut self, key: &AlarmKey) {
        if let Some(a) = self.state.alarms.get(key) {
            let a = a.clone();
            self.record(
                ChangeKey::Alarm(key.clone()),
                Some(Change::Alarm(a.clone())),
            );
            self.stream(StreamEvent::AlarmChanged(a.clone()));
            self.emit(Action::Alarm(a));
        }
    }

    /// A one-off happening that needs an operator's acknowledgement.
    fn alarm_event(&mut self, now: DateTime<Utc>, kind: AlarmKind, subject: &str, message: String) {
        let key = AlarmKey::new(kind, subject);
        let settings = &self.cfg.config.alarms;
        if self
            .state
            .alarms
            .event(now, key.clone(), message, settings)
            .is_some()
        {
            self.alarm_changed(&key);
        }
    }

    /// A lasting condition turned on or off.
    fn alarm_condition(
        &mut self,
        now: DateTime<Utc>,
        kind: AlarmKind,
        subject: &str,
        active: bool,
        message: String,
    ) {
        let key = AlarmKey::new(kind, subject);
        let changed = if active {
            let settings = &self.cfg.config.alarms;
            self.state
                .alarms
                .activate(now, key.clone(), message, settings)
                .is_some()
        } else {
            self.state.alarms.clear(now, &key).is_some()
        };
        if changed {
            self.alarm_changed(&key);
        }
    }

    fn acknowledge(&mut self, now: DateTime<Utc>, id: &str) -> Outcome {
        let Some(key) = self.state.alarms.find(id).cloned() else {
            return Outcome::Rejected(format!("no alarm `{id}`"));
        };
        match self.state.alarms.acknowledge(now, &key) {
            Ok(_) => {
                self.alarm_changed(&key);
                Outcome::Applied
            }
            Err(e) => Outcome::Rejected(e.to_string()),
        }
    }

    fn shelve(&mut self, now: DateTime<Utc>, id: &str, until: Option<DateTime<Utc>>) -> Outcome {
        let Some(key) = self.state.alarms.find(id).cloned() else {
            return Outcome::Rejected(format!("no alarm `{id}`"));
        };
        if until.is_some_and(|t| t <= now) {
            return Outcome::Rejected("shelve time must be in the future".into());
        }
        match self.state.alarms.shelve(now, &key, until) {
            Ok(_) => {
                self.alarm_changed(&key);
                Outcome::Applied
            }
            Err(e) => Outcome::Rejected(e.to_string()),
        }
    }

    fn line_state(
        &mut self,
        now: DateTime<Utc>,
        line: &str,
        running: bool,
        reason: Option<String>,
    ) -> Outcome {
        let (status, shifted) = match self
            .state
            .sequencing
            .set_running(now, line, running, reason)
        {
            Ok(changed) => changed,
            Err(outcome) => return outcome,
        };
        for id in shifted {
            self.changed_call(id);
        }
        self.changed_line(line);
        self.stream(StreamEvent::LineState(status));
        // Followers hear of a start or a stop at once, not at the end of the takt.
        self.takt_status(now, line);
        Outcome::Applied
    }
}
