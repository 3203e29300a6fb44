//! Closed enums of what goes into the core and what comes out of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alarm::{Alarm, AlarmKind};
use crate::config::{Blink, LampColour};
use crate::identity::{ApiToken, IdentityInput};
use crate::model::{
    Call, CallId, Coverage, LightTarget, LineStatus, Rack, RackStatus, TaktStatus, Task, Vehicle,
};
use crate::record::RawRecord;
use crate::seq::SeqNo;

/// Everything that can happen to the plant; each one is journaled before it is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Input {
    /// A record read at a broadcast point.
    Broadcast {
        line: String,
        point: String,
        record: RawRecord,
    },
    /// A vehicle held for repair re-enters the sequence under number `seq`.
    Resequence {
        line: String,
        point: String,
        vin: String,
        seq: u32,
    },
    /// A vehicle leaves the sequence for good.
    Cancel {
        line: String,
        vin: String,
    },
    /// A confirm button pressed at a pick station.
    Press {
        station: String,
        button: LightTarget,
    },
    LineState {
        line: String,
        running: bool,
        reason: Option<String>,
    },
    /// Close a family's open rack before it is full.
    CloseRack {
        family: String,
    },
    /// A closed rack left for the line (`shipped`) or arrived there (`delivered`).
    RackMoved {
        rack: String,
        to: RackStatus,
    },
    /// A supervisor names the part for an unresolved (or not yet picked) call.
    ResolveCall {
        call: CallId,
        part: String,
    },
    /// Clear error lights at a station and light its current task again.
    ResetStation {
        station: String,
    },
    Acknowledge {
        alarm: String,
    },
    /// Shelve until a time, or unshelve with `None`.
    Shelve {
        alarm: String,
        until: Option<DateTime<Utc>>,
    },
    /// A condition seen by an adapter (source disconnected, no handshake, device offline).
    Condition {
        alarm: AlarmKind,
        subject: String,
        active: bool,
        message: String,
    },
    /// Time passed; lets gap and shelf timers fire.
    Tick,
    /// An API token issued or revoked (the identity context).
    Identity(IdentityInput),
}

impl Input {
    /// Short name of the variant, as stored in the journal's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Broadcast { .. } => "broadcast",
            Input::Resequence { .. } => "resequence",
            Input::Cancel { .. } => "cancel",
            Input::Press { .. } => "press",
            Input::LineState { .. } => "line_state",
            Input::CloseRack { .. } => "close_rack",
            Input::RackMoved { .. } => "rack_moved",
            Input::ResolveCall { .. } => "resolve_call",
            Input::ResetStation { .. } => "reset_station",
            Input::Acknowledge { .. } => "acknowledge",
            Input::Shelve { .. } => "shelve",
            Input::Condition { .. } => "condition",
            Input::Tick => "tick",
            Input::Identity(IdentityInput::IssueToken(_)) => "issue_token",
            Input::Identity(IdentityInput::RevokeToken { .. }) => "revoke_token",
        }
    }
}

/// How the core took an input; journaled with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum Outcome {
    Applied,
    /// Nothing to do, harmlessly (a duplicate record).
    Ignored(String),
    /// Bad input: nothing changed but the alarm that says so.
    Rejected(String),
}

impl Outcome {
    pub fn is_rejected(&self) -> bool {
        matches!(self, Outcome::Rejected(_))
    }
}

/// What the plant's devices should show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "intent")]
pub enum DeviceIntent {
    Light {
        station: String,
        target: LightTarget,
        colour: LampColour,
        digits: Option<u32>,
        blink: Blink,
    },
    Off {
        station: String,
        target: LightTarget,
    },
    AllOff {
        station: String,
    },
}

/// What suppliers and screens hear about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum StreamEvent {
    CallCreated(Call),
    CallChanged(Call),
    CallCancelled(Call),
    LineState(LineStatus),
    RackClosed(Rack),
    /// A closed rack left for the line (`status` = `shipped`) or arrived (`delivered`).
    RackMoved(Rack),
    Coverage(Coverage),
    /// An alarm changed state (raised, acknowledged, cleared, shelved…).
    AlarmChanged(Alarm),
    /// A line's heartbeat: every takt, and when it starts or stops.
    TaktStatus(TaktStatus),
}

impl StreamEvent {
    /// The event's name, as in its `event` tag.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::CallCreated(_) => "call_created",
            StreamEvent::CallChanged(_) => "call_changed",
            StreamEvent::CallCancelled(_) => "call_cancelled",
            StreamEvent::LineState(_) => "line_state",
            StreamEvent::RackClosed(_) => "rack_closed",
            StreamEvent::RackMoved(_) => "rack_moved",
            StreamEvent::Coverage(_) => "coverage",
            StreamEvent::AlarmChanged(_) => "alarm_changed",
            StreamEvent::TaktStatus(_) => "takt_status",
        }
    }
}

/// A stream event as the outbox keeps it: numbered in the order the core emitted it (strictly
/// increasing, never reused), stored in the same commit as the input that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub id: u64,
    pub at: DateTime<Utc>,
    /// The tenant it concerns, if any (a supplier's calls); `None`: the plant's own.
    pub tenant: Option<String>,
    pub event: StreamEvent,
}

/// Output of the core, released by the runtime only after the input is durable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    Device(DeviceIntent),
    Stream(StreamEvent),
    Alarm(Alarm),
    /// Ask the broadcast source to read these numbers (inclusive) again.
    Backfill {
        line: String,
        point: String,
        from: SeqNo,
        to: SeqNo,
    },
}

/// A projection row that changed; the store upserts the latest one per entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "table")]
pub enum Change {
    Vehicle(Vehicle),
    Call(Call),
    Rack(Rack),
    Task(Task),
    Alarm(Alarm),
    Line(LineStatus),
    Coverage(Coverage),
    ApiToken(ApiToken),
    /// A new row of the event outbox (never changed afterwards).
    Event(OutboxEvent),
}
