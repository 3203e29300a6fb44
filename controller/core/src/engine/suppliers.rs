//! Suppliers' acknowledgements of their calls, and the alarm for calls left unacknowledged.

use chrono::{DateTime, Utc};

use super::Core;
use crate::alarm::AlarmKind;
use std::collections::BTreeMap;

use super::ChangeKey;
use crate::forecast::{Demand, Plan};
use crate::io::{Change, Outcome, StreamEvent, SupplierForecast};
use crate::model::CallId;
use crate::suppliers::{AckStage, SupplierInput};

impl Core {
    pub(super) fn suppliers_input(&mut self, now: DateTime<Utc>, input: &SupplierInput) -> Outcome {
        match input {
            SupplierInput::AcknowledgeCall {
                tenant,
                call,
                stage,
            } => self.acknowledge_call(now, tenant, *call, *stage),
            SupplierInput::Ship(asn) => self.ship(now, asn),
            SupplierInput::UpdateEta {
                tenant,
                shipment,
                eta,
            } => self.update_eta(now, tenant, *shipment, *eta),
            SupplierInput::ShipmentArrived { shipment } => self.shipment_arrived(now, *shipment),
            SupplierInput::Plan(plan) => self.plan(now, plan),
        }
    }

    /// A supplier acknowledges one of its own live calls. Another supplier's call, or the
    /// plant's own, is refused the same as a call that does not exist: nobody learns of a call
    /// that is not theirs.
    fn acknowledge_call(
        &mut self,
        now: DateTime<Utc>,
        tenant: &str,
        cid: CallId,
        stage: AckStage,
    ) -> Outcome {
        let Some(call) = self
            .state
            .sequencing
            .calls
            .get_mut(&cid)
            .filter(|c| c.supplier.as_deref() == Some(tenant))
        else {
            return Outcome::Rejected(format!("supplier `{tenant}` has no live call {cid}"));
        };
        let already = match stage {
            AckStage::Received => call.received_at.is_some(),
            AckStage::Built => call.built_at.is_some(),
        };
        if already {
            return Outcome::Ignored(format!("call {cid} was already acknowledged {stage:?}"));
        }
        call.received_at.get_or_insert(now);
        if stage == AckStage::Built {
            call.built_at = Some(now);
        }
        call.changed_at = now;
        self.stop_waiting_for_receipt(cid);
        self.call_event_changed(cid);
        Outcome::Applied
    }

    /// The call waits for its receipt no more; its supplier's alarm follows.
    pub(super) fn stop_waiting_for_receipt(&mut self, cid: CallId) {
        if let Some(tenant) = self.state.suppliers.stop_waiting(cid) {
            self.acknowledgement_alarm(self.now, &tenant);
        }
    }

    /// `call_unacknowledged` for `tenant`: active while it has overdue calls.
    pub(super) fn acknowledgement_alarm(&mut self, now: DateTime<Utc>, tenant: &str) {
        let overdue: Vec<CallId> = self.state.suppliers.overdue(tenant).collect();
        let within = self
            .cfg
            .config
            .suppliers
            .iter()
            .find(|s| s.id == tenant)
            .map_or(0, |s| s.acknowledge_within_s);
        let message = match overdue.first() {
            // The message stays as raised while the alarm is active: no count in it to go stale.
            Some(oldest) => {
                format!("calls not acknowledged within {within} s, first call {oldest}")
            }
            None => String::new(),
        };
        self.alarm_condition(
            now,
            AlarmKind::CallUnacknowledged,
            tenant,
            !overdue.is_empty(),
            message,
        );
    }

    /// A new plan for a line: each supplier hears the demand rows it changed, in one event.
    fn plan(&mut self, now: DateTime<Utc>, plan: &Plan) -> Outcome {
        let cfg = self.cfg.clone();
        let rows = match self.state.forecasts.replace(&cfg, now, plan) {
            Ok(rows) => rows,
            Err((field, why)) => return Outcome::invalid(field, why),
        };
        let mut by_supplier: BTreeMap<String, Vec<Demand>> = BTreeMap::new();
        for row in rows {
            let key = ChangeKey::Demand(
                row.line.clone(),
                row.hour,
                row.family.clone(),
                row.part.clone(),
            );
            self.record(key, Some(Change::Demand(row.clone())));
            by_supplier
                .entry(row.supplier.clone())
                .or_default()
                .push(row);
        }
        for (supplier, demand) in by_supplier {
            self.stream(StreamEvent::Forecast(SupplierForecast {
                supplier,
                line: plan.line.clone(),
                demand,
            }));
        }
        Outcome::Applied
    }
}
