//! Closed enums of what goes into the core and what comes out of it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alarm::Alarm;
pub use crate::alarm::AlarmInput;
use crate::config::{Blink, LampColour};
use crate::forecast::Demand;
use crate::identity::ApiToken;
pub use crate::identity::IdentityInput;
use crate::model::{
    Call, Coverage, LightTarget, LineStatus, Rack, SupplierTaktStatus, TaktStatus, Task, Vehicle,
};
pub use crate::picking::PickingInput;
use crate::seq::SeqNo;
pub use crate::sequencing::SequencingInput;
use crate::suppliers::Shipment;
pub use crate::suppliers::SupplierInput;

/// Everything that can happen to the plant, grouped by the context that takes it; each one is
/// journaled before it is applied.
///
/// On the wire (the journal's payload) an input is one flat object tagged by `kind`
/// (`{"kind":"press",…}`): the groups are untagged, each group's variants carry the tag, so
/// the journal does not change shape when inputs move between contexts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    Sequencing(SequencingInput),
    Picking(PickingInput),
    Alarms(AlarmInput),
    /// What a supplier tells the plant about its calls.
    Suppliers(SupplierInput),
    /// An API token issued or revoked.
    Identity(IdentityInput),
    Clock(Clock),
}

/// Time passing, for every context's timers (gap fill, shelves, takt status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Clock {
    /// Time passed; lets timers due by now fire.
    Tick,
}

impl Input {
    /// Time passed; lets gap and shelf timers fire and takt statuses go out.
    pub const TICK: Input = Input::Clock(Clock::Tick);

    /// Short name of the variant, as stored in the journal's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Sequencing(i) => i.kind(),
            Input::Picking(i) => i.kind(),
            Input::Alarms(i) => i.kind(),
            Input::Suppliers(i) => i.kind(),
            Input::Identity(i) => i.kind(),
            Input::Clock(Clock::Tick) => "tick",
        }
    }
}

impl From<SequencingInput> for Input {
    fn from(input: SequencingInput) -> Self {
        Input::Sequencing(input)
    }
}

impl From<PickingInput> for Input {
    fn from(input: PickingInput) -> Self {
        Input::Picking(input)
    }
}

impl From<AlarmInput> for Input {
    fn from(input: AlarmInput) -> Self {
        Input::Alarms(input)
    }
}

impl From<SupplierInput> for Input {
    fn from(input: SupplierInput) -> Self {
        Input::Suppliers(input)
    }
}

impl From<IdentityInput> for Input {
    fn from(input: IdentityInput) -> Self {
        Input::Identity(input)
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

    /// Bad input that names the field at fault, as a path into the input's body
    /// (`racks[1].slots[0].call`): `Rejected("{field}: {reason}")`, which [`Outcome::field`]
    /// reads back. One string, so the journal keeps it as any other refusal.
    pub fn invalid(field: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Outcome::Rejected(format!("{field}: {reason}"))
    }

    /// The field a refusal made by [`Outcome::invalid`] names.
    pub fn field(&self) -> Option<&str> {
        match self {
            Outcome::Rejected(reason) => rejected_field(reason),
            _ => None,
        }
    }
}

/// The field path at the head of a refusal's reason, if it has one: lower-case words, indices
/// and dots (`eta`, `racks[1].slots[0].call`) before `": "`. Other reasons ("no line `A1`",
/// "VIN …: …") have a space, a capital or a quote before their first colon.
pub fn rejected_field(reason: &str) -> Option<&str> {
    let (head, _) = reason.split_once(": ")?;
    let path = head.starts_with(|c: char| c.is_ascii_lowercase())
        && head.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'[' | b']')
        });
    path.then_some(head)
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
    /// The same heartbeat for one supplier: its families' place at the line.
    SupplierTaktStatus(SupplierTaktStatus),
    /// A supplier's ASN accepted (`in_transit`), and each later change of the shipment.
    Shipment(Shipment),
    /// A new plan changed a supplier's demand: its rows that changed.
    Forecast(SupplierForecast),
}

/// One supplier's demand rows that a new plan changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupplierForecast {
    pub supplier: String,
    pub line: String,
    pub demand: Vec<Demand>,
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
            StreamEvent::SupplierTaktStatus(_) => "supplier_takt_status",
            StreamEvent::Shipment(_) => "shipment",
            StreamEvent::Forecast(_) => "forecast",
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
    Shipment(Shipment),
    Demand(Demand),
    /// A new row of the event outbox (never changed afterwards).
    Event(OutboxEvent),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Role, Scope, TokenGrant};
    use crate::model::LightTarget;

    /// The journal keeps inputs as JSON: one flat object tagged by `kind`, whatever group the
    /// input belongs to, read back into the same group.
    #[test]
    fn every_group_journals_flat_by_kind_and_reads_back() {
        let inputs = [
            (
                Input::from(SequencingInput::Cancel {
                    line: "A1".into(),
                    vin: "V".into(),
                }),
                r#"{"kind":"cancel","line":"A1","vin":"V"}"#,
            ),
            (
                PickingInput::Press {
                    station: "P1".into(),
                    button: LightTarget::Slot(3),
                }
                .into(),
                r#"{"kind":"press","station":"P1","button":{"type":"slot","id":3}}"#,
            ),
            (
                AlarmInput::Acknowledge { alarm: "x".into() }.into(),
                r#"{"kind":"acknowledge","alarm":"x"}"#,
            ),
            (
                IdentityInput::IssueToken(TokenGrant {
                    id: "k1".into(),
                    hash: "ab".repeat(32),
                    scope: Scope::Role {
                        role: Role::Operator,
                    },
                    label: "HMI".into(),
                })
                .into(),
                r#"{"kind":"issue_token","id":"k1","hash":"abababababababababababababababababababababababababababababababab","scope":{"kind":"role","role":"operator"},"label":"HMI"}"#,
            ),
            (Input::TICK, r#"{"kind":"tick"}"#),
        ];
        for (input, wire) in inputs {
            let json = serde_json::to_string(&input).expect("encode");
            assert_eq!(json, wire);
            assert!(json.contains(&format!(r#""kind":"{}""#, input.kind())));
            let back: Input = serde_json::from_str(&json).expect("decode");
            assert_eq!(back, input);
        }
        assert!(serde_json::from_str::<Input>(r#"{"kind":"no_such_input"}"#).is_err());
        // Token entries journaled before inputs were grouped still read.
        let before = r#"{"kind":"identity","op":"revoke_token","id":"k1"}"#;
        assert_eq!(
            serde_json::from_str::<Input>(before).expect("the old shape"),
            Input::Identity(IdentityInput::RevokeToken { id: "k1".into() })
        );
    }

    #[test]
    fn a_refusal_names_its_field_only_when_made_so() {
        let table = [
            (
                Outcome::invalid("racks[1].slots[0].call", "x: y"),
                Some("racks[1].slots[0].call"),
            ),
            (Outcome::invalid("eta", "in the past"), Some("eta")),
            (Outcome::Rejected("no line `A1`".into()), None),
            (Outcome::Rejected("VIN `X`: bad check digit".into()), None),
            (
                Outcome::Rejected("supplier `s` has no live call 3".into()),
                None,
            ),
            (
                Outcome::Rejected("shelve time must be in the future".into()),
                None,
            ),
            (Outcome::Ignored("eta: x".into()), None),
        ];
        for (outcome, field) in table {
            assert_eq!(outcome.field(), field, "{outcome:?}");
        }
    }
}
