//! What the API shows of each projection: one type per row, fields named like the store's
//! columns (so a row decodes straight into its view), times as RFC 3339 UTC.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use takt_core::identity::{ApiToken, Scope};
use utoipa::ToSchema;

/// One page of a list, in key order. `next` is the cursor of the page after (pass it as
/// `after`); absent on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// An alarm (ISA-18.2 states: `active_unacknowledged`, `active_acknowledged`,
/// `cleared_unacknowledged`, `normal`; `shelved`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlarmView {
    /// `kind:subject`; URL-encode it in paths.
    pub id: String,
    pub kind: String,
    pub subject: String,
    pub priority: String,
    pub state: String,
    pub message: String,
    pub shelved_until: Option<DateTime<Utc>>,
    pub raised_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
    pub occurrences: i64,
}

/// A sequence call: one part family for one vehicle.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallView {
    pub id: i64,
    pub vehicle: i64,
    pub line: String,
    pub family: String,
    pub seq: i64,
    pub pos: i64,
    pub vin: String,
    /// The part number, once resolved.
    pub part: Option<String>,
    pub status: String,
    pub rack: Option<String>,
    pub slot: Option<i64>,
    pub due_at: DateTime<Utc>,
    pub corrections: i64,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
    /// The supplier (tenant id) that builds it; `null` for the plant's own.
    pub supplier: Option<String>,
    /// When the supplier acknowledged receiving it.
    pub received_at: Option<DateTime<Utc>>,
    /// When the supplier reported its part built.
    pub built_at: Option<DateTime<Utc>>,
    /// When its part left for the line.
    pub shipped_at: Option<DateTime<Utc>>,
    /// When its part reached the line.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Why its supplier shipped its slot empty, if it did (its rack does not bring it).
    pub short_shipped: Option<String>,
}

/// A shipment from a supplier's ASN: `in_transit`, then `delivered` once its racks reached
/// the line.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShipmentView {
    pub id: i64,
    pub supplier: String,
    /// The supplier's own ASN number.
    pub number: String,
    pub carrier: String,
    pub trailer: String,
    pub eta: DateTime<Utc>,
    /// Its rack ids.
    #[schema(value_type = Vec<String>)]
    pub racks: Json,
    /// Calls shipped without their part, each with the supplier's reason.
    #[schema(value_type = Vec<Object>)]
    pub skipped: Json,
    /// `in_transit`, `arrived`, `delivered`.
    pub status: String,
    /// While its ETA misses the time the line needs its first part: that call (`call`,
    /// `family`, `due_at`) and by how many minutes (`late_min`).
    #[schema(value_type = Option<Object>)]
    pub at_risk: Json,
    pub arrived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

/// A rack being filled in sequence, or on its way.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RackView {
    pub id: String,
    pub family: String,
    pub number: i64,
    pub size: i64,
    pub filled: i64,
    /// The call id in each slot, in order (`null` for an empty slot).
    #[schema(value_type = Vec<Option<i64>>)]
    pub slots: Json,
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

/// A vehicle from its broadcast until its last install station.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VehicleView {
    pub id: i64,
    pub line: String,
    pub point: String,
    pub pos: i64,
    pub seq: i64,
    pub vin: String,
    pub body: String,
    pub model: String,
    #[schema(value_type = Vec<String>)]
    pub options: Json,
    pub broadcast_at: DateTime<Utc>,
    pub status: String,
    pub stopped_ms_at_broadcast: i64,
    /// Its call ids, by family.
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    pub calls: Json,
}

/// A line's state: running or stopped (and why), since when, its takt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LineView {
    pub line: String,
    pub running: bool,
    pub reason: Option<String>,
    /// When it last started or stopped; `null` before the first line-state input.
    pub since: Option<DateTime<Utc>>,
    pub stopped_ms_total: i64,
    pub takt_ms: i64,
}

/// How long a line can run on the parts of one family already in racks ahead of its station.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CoverageView {
    pub line: String,
    pub family: String,
    /// Consecutive vehicles, from the next to reach the station, whose part is in a rack.
    pub vehicles: i64,
    pub minutes: f64,
}

/// A pick or put task at a station.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    pub id: i64,
    pub station: String,
    pub call: i64,
    /// `pick` (from `bin`) or `put` (into `rack` at `slot`).
    pub kind: String,
    pub bin: Option<String>,
    pub rack: Option<String>,
    pub slot: Option<i64>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

/// A token as an admin sees it: never its hash, never the token itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub label: String,
    #[schema(value_type = Object)]
    pub scope: Scope,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            label: t.label,
            scope: t.scope,
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        }
    }
}
