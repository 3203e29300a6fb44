//! Suppliers' ASNs: checked slot by slot against the racks the sequence composed, then the racks
//! and their calls are shipped; a shipment leaves the live state once its racks are delivered.
//!
//! An ASN is all or nothing: the first thing wrong refuses it whole, naming the field (rack and
//! slot) at fault, and nothing changes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{ChangeKey, Core};
use crate::alarm::AlarmKind;
use crate::io::{Change, Outcome, StreamEvent};
use crate::model::{CallId, CallStatus, RackStatus};
use crate::suppliers::{Asn, Shipment, ShipmentRisk, ShipmentStatus};

/// What an ASN that passed its checks ships: `(rack, [call per listed slot])`.
type Checked = Vec<(String, Vec<CallId>)>;

impl Core {
    pub(super) fn ship(&mut self, now: DateTime<Utc>, asn: &Asn) -> Outcome {
        let checked = match self.check_asn(now, asn) {
            Ok(checked) => checked,
            Err(refusal) => return refusal,
        };
        let id = self.state.suppliers.next_shipment_id();
        let shipment = Shipment {
            id,
            supplier: asn.tenant.clone(),
            number: asn.number.trim().to_owned(),
            carrier: asn.carrier.clone(),
            trailer: asn.trailer.trim().to_owned(),
            eta: asn.eta,
            racks: checked.iter().map(|(r, _)| r.clone()).collect(),
            skipped: asn.skipped.clone(),
            status: ShipmentStatus::InTransit,
            at_risk: None,
            arrived_at: None,
            created_at: now,
            changed_at: now,
        };
        for (rack, calls) in &checked {
            if let Some(r) = self.state.picking.racks.get_mut(rack) {
                r.status = RackStatus::Shipped;
                r.changed_at = now;
                let moved = r.clone();
                self.stream(StreamEvent::RackMoved(moved));
            }
            self.changed_rack(rack);
            for cid in calls {
                // Loaded on a trailer: received, whatever the supplier said before.
                if let Some(call) = self.state.sequencing.calls.get_mut(cid) {
                    call.received_at.get_or_insert(now);
                }
                self.stop_waiting_for_receipt(*cid);
                self.set_call_status(now, *cid, CallStatus::Shipped);
            }
        }
        for skip in &asn.skipped {
            let Some(call) = self.state.sequencing.calls.get_mut(&skip.call) else {
                continue;
            };
            // Its supplier has answered for it: no longer waiting for a receipt, and its rack
            // will not bring it.
            call.short_shipped = Some(skip.reason.clone());
            call.received_at.get_or_insert(now);
            call.changed_at = now;
            let (family, vin, seq) = (call.family.clone(), call.vin.clone(), call.seq);
            self.stop_waiting_for_receipt(skip.call);
            self.call_event_changed(skip.call);
            self.alarm_event(
                now,
                AlarmKind::ShortShipped,
                &family,
                format!(
                    "{vin} ({seq}) shipped without its {family} part in ASN {}: {}",
                    shipment.number, skip.reason
                ),
            );
        }
        self.shipment_changed(now, shipment);
        Outcome::Applied
    }

    /// The supplier expects its shipment in transit at `eta` instead.
    pub(super) fn update_eta(
        &mut self,
        now: DateTime<Utc>,
        tenant: &str,
        id: u64,
        eta: DateTime<Utc>,
    ) -> Outcome {
        let Some(shipment) = self
            .state
            .suppliers
            .shipments
            .get(&id)
            .filter(|s| s.supplier == tenant)
        else {
            return Outcome::Rejected(format!(
                "supplier `{tenant}` has no shipment {id} in transit"
            ));
        };
        if shipment.status != ShipmentStatus::InTransit {
            return Outcome::Rejected(format!("shipment {id} has arrived already"));
        }
        if eta < now {
            return Outcome::invalid("eta", "the ETA is in the past");
        }
        if shipment.eta == eta {
            return Outcome::Ignored(format!("shipment {id} is expected at {eta} already"));
        }
        let mut shipment = shipment.clone();
        shipment.eta = eta;
        shipment.changed_at = now;
        self.shipment_changed(now, shipment);
        Outcome::Applied
    }

    /// The plant reports the shipment's trailer at the plant.
    pub(super) fn shipment_arrived(&mut self, now: DateTime<Utc>, id: u64) -> Outcome {
        let Some(shipment) = self.state.suppliers.shipments.get(&id) else {
            return Outcome::Rejected(format!("no shipment {id} in transit"));
        };
        if shipment.status != ShipmentStatus::InTransit {
            return Outcome::Ignored(format!("shipment {id} has arrived already"));
        }
        let mut shipment = shipment.clone();
        shipment.status = ShipmentStatus::Arrived;
        shipment.arrived_at = Some(now);
        shipment.changed_at = now;
        self.shipment_changed(now, shipment);
        Outcome::Applied
    }

    /// The first call on the shipment that the line needs before the trailer is expected, if
    /// one is: only a shipment still in transit can be late.
    fn risk_of(&self, shipment: &Shipment) -> Option<ShipmentRisk> {
        if shipment.status != ShipmentStatus::InTransit {
            return None;
        }
        let first = shipment
            .racks
            .iter()
            .filter_map(|r| self.state.picking.racks.get(r))
            .flat_map(|r| r.slots.iter().flatten())
            .filter_map(|c| self.state.sequencing.calls.get(c))
            .filter(|c| c.status == CallStatus::Shipped)
            .min_by_key(|c| (c.due_at, c.id))?;
        if shipment.eta <= first.due_at {
            return None;
        }
        let late = shipment.eta - first.due_at;
        Some(ShipmentRisk {
            family: first.family.clone(),
            call: first.id,
            due_at: first.due_at,
            late_min: (late.num_seconds() + 59) / 60,
        })
    }

    /// Every check of an ASN, in the order of its fields; the first failure refuses it.
    fn check_asn(&self, now: DateTime<Utc>, asn: &Asn) -> Result<Checked, Outcome> {
        let tenant = asn.tenant.as_str();
        let number = asn.number.trim();
        if number.is_empty() || number.len() > 35 {
            return Err(Outcome::invalid("number", "1 to 35 characters"));
        }
        if let Some(earlier) = self.state.suppliers.shipment_numbered(tenant, number) {
            return Err(Outcome::invalid(
                "number",
                format!("ASN {number} was sent already (shipment {})", earlier.id),
            ));
        }
        if !self.cfg.config.carriers.iter().any(|c| c.id == asn.carrier) {
            return Err(Outcome::invalid(
                "carrier",
                format!("no carrier `{}` in the plant's configuration", asn.carrier),
            ));
        }
        if asn.trailer.trim().is_empty() {
            return Err(Outcome::invalid(
                "trailer",
                "the trailer (or plate) is required",
            ));
        }
        if asn.eta < now {
            return Err(Outcome::invalid("eta", "the ETA is in the past"));
        }
        if asn.racks.is_empty() {
            return Err(Outcome::invalid("racks", "an ASN ships at least one rack"));
        }
        let skipped: BTreeMap<CallId, usize> = asn
            .skipped
            .iter()
            .enumerate()
            .map(|(k, s)| (s.call, k))
            .collect();
        let mut racks_seen = BTreeSet::new();
        let mut shipped_calls = BTreeSet::new();
        let mut out = Vec::new();
        for (i, listed) in asn.racks.iter().enumerate() {
            let at = format!("racks[{i}]");
            let rack = self
                .state
                .picking
                .racks
                .get(&listed.rack)
                .filter(|r| {
                    self.cfg
                        .supplier_of(&r.family)
                        .is_some_and(|s| s.id == tenant)
                })
                .ok_or_else(|| {
                    Outcome::invalid(
                        format!("{at}.rack"),
                        format!("no rack `{}` of yours in the plant", listed.rack),
                    )
                })?;
            if !racks_seen.insert(rack.id.as_str()) {
                return Err(Outcome::invalid(
                    format!("{at}.rack"),
                    format!("rack {} is listed twice", rack.id),
                ));
            }
            match rack.status {
                RackStatus::Closed => {}
                RackStatus::Open => {
                    return Err(Outcome::invalid(
                        format!("{at}.rack"),
                        format!(
                            "rack {} is still open ({} of {} slots called)",
                            rack.id,
                            rack.filled(),
                            rack.size
                        ),
                    ));
                }
                RackStatus::Shipped | RackStatus::Delivered => {
                    return Err(Outcome::invalid(
                        format!("{at}.rack"),
                        format!("rack {} was shipped already", rack.id),
                    ));
                }
            }
            // Racks leave in sequence: an earlier rack of the family must be shipped first,
            // or ride on this trailer too.
            let earlier = self.state.picking.racks.values().find(|r| {
                r.family == rack.family
                    && r.number < rack.number
                    && r.status == RackStatus::Closed
                    && !asn.racks.iter().any(|l| l.rack == r.id)
            });
            if let Some(earlier) = earlier {
                return Err(Outcome::invalid(
                    format!("{at}.rack"),
                    format!(
                        "rack {} cannot leave before rack {}, which is not shipped yet",
                        rack.id, earlier.id
                    ),
                ));
            }
            let mut slots_seen = BTreeSet::new();
            let mut calls = Vec::new();
            for (j, slot) in listed.slots.iter().enumerate() {
                let at = format!("{at}.slots[{j}]");
                if slot.slot == 0 || slot.slot > rack.size {
                    return Err(Outcome::invalid(
                        format!("{at}.slot"),
                        format!("rack {} has slots 1 to {}", rack.id, rack.size),
                    ));
                }
                if !slots_seen.insert(slot.slot) {
                    return Err(Outcome::invalid(
                        format!("{at}.slot"),
                        format!("slot {} of rack {} is listed twice", slot.slot, rack.id),
                    ));
                }
                let holds = rack.slots.get(slot.slot as usize - 1).copied().flatten();
                match holds {
                    None => {
                        return Err(Outcome::invalid(
                            format!("{at}.slot"),
                            format!("slot {} of rack {} holds no call", slot.slot, rack.id),
                        ));
                    }
                    Some(expected) if expected != slot.call => {
                        return Err(Outcome::invalid(
                            format!("{at}.call"),
                            format!(
                                "rack {} slot {} holds call {expected}, not call {}",
                                rack.id, slot.slot, slot.call
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                let live = self
                    .state
                    .sequencing
                    .calls
                    .get(&slot.call)
                    .is_some_and(|c| !c.status.is_final());
                if !live {
                    return Err(Outcome::invalid(
                        format!("{at}.call"),
                        format!(
                            "call {} is no longer in sequence (cancelled or installed): leave its slot out",
                            slot.call
                        ),
                    ));
                }
                if let Some(&k) = skipped.get(&slot.call) {
                    return Err(Outcome::invalid(
                        format!("skipped[{k}].call"),
                        format!(
                            "call {} is loaded in rack {} slot {}",
                            slot.call, rack.id, slot.slot
                        ),
                    ));
                }
                shipped_calls.insert(slot.call);
                calls.push(slot.call);
            }
            // Every live call of the rack is loaded or skipped with a reason: none left behind
            // unsaid.
            for (n, cid) in rack.slots.iter().enumerate() {
                let Some(cid) = cid else { continue };
                let live = self
                    .state
                    .sequencing
                    .calls
                    .get(cid)
                    .is_some_and(|c| !c.status.is_final());
                if live && !shipped_calls.contains(cid) && !skipped.contains_key(cid) {
                    return Err(Outcome::invalid(
                        format!("{at}.slots"),
                        format!(
                            "slot {} (call {cid}) of rack {} is missing: load it, or list the call under `skipped` with a reason",
                            n + 1,
                            rack.id
                        ),
                    ));
                }
            }
            out.push((rack.id.clone(), calls));
        }
        for (k, skip) in asn.skipped.iter().enumerate() {
            let in_a_rack = asn.racks.iter().any(|l| {
                self.state
                    .picking
                    .racks
                    .get(&l.rack)
                    .is_some_and(|r| r.slots.contains(&Some(skip.call)))
            });
            if !in_a_rack {
                return Err(Outcome::invalid(
                    format!("skipped[{k}].call"),
                    format!("call {} is in none of this ASN's racks", skip.call),
                ));
            }
            if skip.reason.trim().is_empty() {
                return Err(Outcome::invalid(
                    format!("skipped[{k}].reason"),
                    "say why the call is shipped without its part",
                ));
            }
        }
        Ok(out)
    }

    /// A rack reached the line, or left the live state: a shipment whose racks all have (or
    /// are gone) is done and leaves it too.
    pub(super) fn rack_delivered(&mut self, now: DateTime<Utc>, rack: &str) {
        let done: Vec<u64> = self
            .state
            .suppliers
            .shipments
            .values()
            .filter(|s| s.racks.iter().any(|r| r == rack))
            .filter(|s| {
                s.racks.iter().all(|r| {
                    self.state
                        .picking
                        .racks
                        .get(r)
                        .is_none_or(|r| r.status == RackStatus::Delivered)
                })
            })
            .map(|s| s.id)
            .collect();
        for id in done {
            if let Some(mut shipment) = self.state.suppliers.shipments.remove(&id) {
                shipment.status = ShipmentStatus::Delivered;
                shipment.changed_at = now;
                shipment.at_risk = None;
                let subject = format!("{}/{}", shipment.supplier, shipment.number);
                self.alarm_condition(now, AlarmKind::ShipmentLate, &subject, false, String::new());
                self.stream(StreamEvent::Shipment(shipment.clone()));
                self.record(ChangeKey::Shipment(id), Some(Change::Shipment(shipment)));
            }
        }
    }

    /// Keep `shipment` in the live state, as a projection row, and on the stream, with its risk
    /// measured again: a late one raises `shipment_late` for the plant, and the supplier hears
    /// the risk on its shipment event in the same commit.
    fn shipment_changed(&mut self, now: DateTime<Utc>, mut shipment: Shipment) {
        shipment.at_risk = self.risk_of(&shipment);
        let subject = format!("{}/{}", shipment.supplier, shipment.number);
        let message = shipment.at_risk.as_ref().map_or_else(String::new, |r| {
            format!(
                "shipment {} on trailer {} is expected {} min after call {} ({}) is due",
                shipment.id, shipment.trailer, r.late_min, r.call, r.family
            )
        });
        self.alarm_condition(
            now,
            AlarmKind::ShipmentLate,
            &subject,
            shipment.at_risk.is_some(),
            message,
        );
        let id = shipment.id;
        self.stream(StreamEvent::Shipment(shipment.clone()));
        self.record(
            ChangeKey::Shipment(id),
            Some(Change::Shipment(shipment.clone())),
        );
        self.state.suppliers.shipments.insert(id, shipment);
    }
}
