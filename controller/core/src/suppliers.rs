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
}

impl SupplierInput {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AcknowledgeCall { .. } => "acknowledge_call",
        }
    }
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
