//! The entities the core keeps and the store projects: vehicles, calls, racks, tasks, line state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::seq::SeqNo;
use crate::vin::Vin;

macro_rules! id_type {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    VehicleId,
    "Vehicle id, given out in journal order so a replay gives the same ids."
);
id_type!(CallId, "Sequence call id, given out in journal order.");
id_type!(TaskId, "Pick/put task id, given out in journal order.");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleStatus {
    /// Between broadcast point and its last install station.
    Live,
    /// Past every install station of its broadcast point; gone from the live state.
    Finished,
    Cancelled,
    /// Pulled for repair and re-inserted: this record is the old position; a new one follows.
    Resequenced,
}

/// One vehicle as broadcast at one broadcast point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vehicle {
    pub id: VehicleId,
    pub line: String,
    pub point: String,
    /// Absolute position at the broadcast point (never wraps, unlike `seq`).
    pub pos: u64,
    pub seq: SeqNo,
    pub vin: Vin,
    pub body: String,
    pub model: String,
    pub options: Vec<String>,
    pub broadcast_at: DateTime<Utc>,
    pub status: VehicleStatus,
    /// The line's accumulated stop time when this vehicle was broadcast; due times move by the
    /// stop time that accrues after it.
    pub stopped_ms_at_broadcast: i64,
    /// Call per family.
    pub calls: BTreeMap<String, CallId>,
}

/// Lifecycle of a sequence call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Created,
    Picked,
    Put,
    Shipped,
    Delivered,
    Installed,
    /// The vehicle reached its install station before the part was delivered.
    Missed,
    Cancelled,
}

impl CallStatus {
    /// Nothing will happen to the call any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Installed | Self::Missed | Self::Cancelled)
    }

    /// A part exists physically for it (picked or further): changes to it need a person.
    pub fn has_part(self) -> bool {
        matches!(
            self,
            Self::Picked | Self::Put | Self::Shipped | Self::Delivered
        )
    }

    /// The part sits in a rack ahead of the install station: counts towards coverage.
    pub fn covers(self) -> bool {
        matches!(self, Self::Put | Self::Shipped | Self::Delivered)
    }
}

/// One vehicle's demand on one part family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub id: CallId,
    pub vehicle: VehicleId,
    pub line: String,
    pub family: String,
    pub seq: SeqNo,
    pub pos: u64,
    pub vin: Vin,
    /// `None`: the vehicle needs this family but no variant rule matched (unresolved).
    pub part: Option<String>,
    pub status: CallStatus,
    pub rack: Option<String>,
    /// 1-based slot in the rack.
    pub slot: Option<u32>,
    pub due_at: DateTime<Utc>,
    /// How many corrections changed this call.
    pub corrections: u32,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
    /// The tenant that builds it: its family's supplier; `None` for the plant's own.
    #[serde(default)]
    pub supplier: Option<String>,
    /// When its supplier acknowledged receiving it.
    #[serde(default)]
    pub received_at: Option<DateTime<Utc>>,
    /// When its supplier reported its part built.
    #[serde(default)]
    pub built_at: Option<DateTime<Utc>>,
    /// When its part left for the line (a supplier's ASN, or the rack reported shipped).
    #[serde(default)]
    pub shipped_at: Option<DateTime<Utc>>,
    /// When its part reached the line.
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// Why its supplier shipped its slot empty (an ASN's `skipped`): its rack's arrival does
    /// not bring its part, so it is neither delivered nor covered.
    #[serde(default)]
    pub short_shipped: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RackStatus {
    Open,
    Closed,
    Shipped,
    Delivered,
}

/// A rack of one family; slot `i` (1-based) holds the `i`-th call in sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rack {
    /// `family-000001`.
    pub id: String,
    pub family: String,
    pub number: u64,
    pub size: u32,
    pub slots: Vec<Option<CallId>>,
    pub status: RackStatus,
    pub opened_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

impl Rack {
    pub fn filled(&self) -> u32 {
        self.slots.iter().filter(|s| s.is_some()).count() as u32
    }
}

/// A button on a pick station: a bin's confirm button or a rack slot's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
pub enum LightTarget {
    Bin(String),
    /// 1-based rack slot on the station's put wall.
    Slot(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum TaskKind {
    Pick { bin: String },
    Put { rack: String, slot: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Done,
    Cancelled,
}

/// A pick or put the operator of a station is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub station: String,
    pub call: CallId,
    pub kind: TaskKind,
    pub status: TaskStatus,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

impl Task {
    pub fn target(&self) -> LightTarget {
        match &self.kind {
            TaskKind::Pick { bin } => LightTarget::Bin(bin.clone()),
            TaskKind::Put { slot, .. } => LightTarget::Slot(*slot),
        }
    }
}

/// Running or stopped, and the stop time accrued so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineStatus {
    pub line: String,
    pub running: bool,
    pub reason: Option<String>,
    /// When it last started or stopped; `None` until the first line-state input.
    pub since: Option<DateTime<Utc>>,
    pub stopped_ms_total: i64,
    pub takt_ms: u64,
}

/// A line's heartbeat on the stream, every takt and when it starts or stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaktStatus {
    pub line: String,
    pub at: DateTime<Utc>,
    pub running: bool,
    /// Why it stands, when it does.
    pub reason: Option<String>,
    pub takt_ms: u64,
    /// Each broadcast point's next expected sequence number (`None` before its first record).
    pub points: Vec<PointSequence>,
    /// Coverage of the line's families, as last measured.
    pub coverage: Vec<Coverage>,
}

/// A line's heartbeat as one supplier sees it, with the line's: every takt and when the line
/// starts or stops, for each supplier building for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupplierTaktStatus {
    pub supplier: String,
    pub line: String,
    pub at: DateTime<Utc>,
    pub running: bool,
    pub reason: Option<String>,
    pub takt_ms: u64,
    /// Each family the supplier builds for this line.
    pub families: Vec<SupplierFamilyStatus>,
}

/// Where one of a supplier's families stands at the line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupplierFamilyStatus {
    pub family: String,
    pub install_station: String,
    /// Sequence number of the next vehicle to reach the install station (`None` before the
    /// first, or when that position is unknown).
    pub next_seq: Option<u32>,
    /// Vehicles and minutes of production covered by parts already in racks ahead of the
    /// station, as last measured (`0` before the first measure).
    pub coverage_vehicles: u64,
    pub coverage_minutes: f64,
    /// When the earliest of the family's calls not yet delivered is due at the station.
    pub next_call_due: Option<DateTime<Utc>>,
}

/// Where one broadcast point of a line stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointSequence {
    pub point: String,
    pub expected_seq: Option<u32>,
}

/// Minutes of production covered by parts in racks ahead of a family's install station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub family: String,
    pub line: String,
    /// Consecutive vehicles, from the next one to reach the station, whose part is in a rack.
    pub vehicles: u64,
    pub minutes: f64,
}
