//! The suppliers context: what the plant's suppliers tell it about their calls, and the watch
//! on calls they have not acknowledged in time.
//!
//! A supplier-built call is created with its family's supplier as its tenant and starts waiting
//! for that supplier's receipt. A call still waiting when its time is up is *overdue*; a supplier
//! with overdue calls has `call_unacknowledged` active until each of them is acknowledged or
//! leaves the sequence.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::forecast::Plan;
use crate::model::CallId;

/// What a supplier says through its API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SupplierInput {
    /// `tenant` acknowledges its call: received it, or built its part.
    AcknowledgeCall {
        tenant: String,
        call: CallId,
        stage: AckStage,
    },
    /// `tenant` ships racks: its advance shipping notice.
    Ship(Asn),
    /// `tenant` expects its shipment at another time.
    UpdateEta {
        tenant: String,
        shipment: u64,
        eta: DateTime<Utc>,
    },
    /// The shipment's trailer reached the plant (reported by the plant: gate or dock).
    ShipmentArrived { shipment: u64 },
    /// The plant's planned sequence for a line, shared with its suppliers as demand.
    Plan(Plan),
}

impl SupplierInput {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AcknowledgeCall { .. } => "acknowledge_call",
            Self::Ship(_) => "ship",
            Self::UpdateEta { .. } => "update_eta",
            Self::ShipmentArrived { .. } => "shipment_arrived",
            Self::Plan(_) => "plan",
        }
    }
}

/// An advance shipping notice: racks on their way, on one trailer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asn {
    pub tenant: String,
    /// The supplier's own number for it; unique among its shipments still in the plant's
    /// live state.
    pub number: String,
    /// A configured carrier.
    pub carrier: String,
    pub trailer: String,
    pub eta: DateTime<Utc>,
    pub racks: Vec<AsnRack>,
    /// Calls of these racks shipped without their part, each with why.
    #[serde(default)]
    pub skipped: Vec<SkippedCall>,
}

/// One rack of an ASN, slot by slot, as loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsnRack {
    /// The plant's rack id, as each call names it (`seats-000042`).
    pub rack: String,
    pub slots: Vec<AsnSlot>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsnSlot {
    /// 1-based.
    pub slot: u32,
    pub call: CallId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedCall {
    pub call: CallId,
    pub reason: String,
}

/// A shipment the plant accepted, from its ASN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    /// The plant's id for it, given out in journal order.
    pub id: u64,
    pub supplier: String,
    pub number: String,
    pub carrier: String,
    pub trailer: String,
    pub eta: DateTime<Utc>,
    /// Rack ids, as in the ASN.
    pub racks: Vec<String>,
    pub skipped: Vec<SkippedCall>,
    pub status: ShipmentStatus,
    /// Set while its ETA comes after the time the line needs its first part.
    #[serde(default)]
    pub at_risk: Option<ShipmentRisk>,
    #[serde(default)]
    pub arrived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

/// The first call a late shipment carries: the line needs it before the trailer arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRisk {
    pub family: String,
    pub call: CallId,
    /// When the call is due at its install station.
    pub due_at: DateTime<Utc>,
    /// By how much the ETA misses it, minutes (rounded up).
    pub late_min: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    InTransit,
    /// Its trailer is at the plant.
    Arrived,
    /// Every rack of it reached the line; it has left the live state.
    Delivered,
}

/// How far a supplier has got with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStage {
    /// The call reached the supplier's system.
    Received,
    /// Its part is built (and so was received too).
    Built,
}

/// Calls waiting for their supplier's receipt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Suppliers {
    /// Each waiting call: when its receipt is due, and its supplier.
    waiting: BTreeMap<CallId, (DateTime<Utc>, String)>,
    /// The same calls by due time, for the timer.
    by_due: BTreeSet<(DateTime<Utc>, CallId)>,
    /// Per supplier: its waiting calls whose time is up.
    overdue: BTreeMap<String, BTreeSet<CallId>>,
    /// Shipments in transit, by id.
    pub(crate) shipments: BTreeMap<u64, Shipment>,
    next_shipment: u64,
}

impl Suppliers {
    /// `call` of `tenant` waits for its receipt until `due`.
    pub(crate) fn await_receipt(&mut self, call: CallId, tenant: &str, due: DateTime<Utc>) {
        self.waiting.insert(call, (due, tenant.to_owned()));
        self.by_due.insert((due, call));
    }

    /// `call` waits no more (acknowledged, or gone from the sequence). The supplier whose
    /// overdue calls this changed, if it changed any.
    pub(crate) fn stop_waiting(&mut self, call: CallId) -> Option<String> {
        let (due, tenant) = self.waiting.remove(&call)?;
        self.by_due.remove(&(due, call));
        let overdue = self.overdue.get_mut(&tenant)?;
        if !overdue.remove(&call) {
            return None;
        }
        if overdue.is_empty() {
            self.overdue.remove(&tenant);
        }
        Some(tenant)
    }

    /// Calls whose time is up by `now` become overdue; the suppliers that have new ones.
    pub(crate) fn expire(&mut self, now: DateTime<Utc>) -> BTreeSet<String> {
        let mut tenants = BTreeSet::new();
        while let Some(&(due, call)) = self.by_due.first() {
            if due > now {
                break;
            }
            self.by_due.pop_first();
            if let Some((_, tenant)) = self.waiting.get(&call) {
                self.overdue.entry(tenant.clone()).or_default().insert(call);
                tenants.insert(tenant.clone());
            }
        }
        tenants
    }

    /// When the next waiting call becomes overdue.
    pub(crate) fn next_due(&self) -> Option<DateTime<Utc>> {
        self.by_due.first().map(|(due, _)| *due)
    }

    pub(crate) fn next_shipment_id(&mut self) -> u64 {
        self.next_shipment += 1;
        self.next_shipment
    }

    /// `tenant`'s shipment in transit under its own `number`, if there is one.
    pub(crate) fn shipment_numbered(&self, tenant: &str, number: &str) -> Option<&Shipment> {
        self.shipments
            .values()
            .find(|s| s.supplier == tenant && s.number == number)
    }

    /// `tenant`'s overdue calls, oldest id first.
    pub fn overdue(&self, tenant: &str) -> impl Iterator<Item = CallId> + '_ {
        self.overdue.get(tenant).into_iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn a_call_waits_becomes_overdue_and_is_settled_once() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let at = |s| t0 + TimeDelta::seconds(s);
        let mut s = Suppliers::default();
        s.await_receipt(CallId(1), "seatco", at(10));
        s.await_receipt(CallId(2), "seatco", at(20));
        s.await_receipt(CallId(3), "dashline", at(15));
        assert_eq!(s.next_due(), Some(at(10)));
        assert!(s.expire(at(9)).is_empty());
        // Acknowledged in time: nothing to clear.
        assert_eq!(s.stop_waiting(CallId(1)), None);
        let late: Vec<String> = s.expire(at(20)).into_iter().collect();
        assert_eq!(late, ["dashline", "seatco"]);
        assert_eq!(s.overdue("seatco").collect::<Vec<_>>(), [CallId(2)]);
        assert_eq!(s.stop_waiting(CallId(2)), Some("seatco".to_owned()));
        assert_eq!(s.overdue("seatco").count(), 0);
        assert_eq!(s.stop_waiting(CallId(2)), None, "settled once");
        assert_eq!(s.next_due(), None);
        assert_eq!(s.overdue("dashline").collect::<Vec<_>>(), [CallId(3)]);
    }
}
