//! Vehicles and their sequence calls: creation, correction, cancellation.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::Core;
use crate::alarm::AlarmKind;
use crate::config::{FamilyConfig, Sequencing};
use crate::ids::PointId;
use crate::io::{Outcome, StreamEvent};
use crate::model::{Call, CallId, CallStatus, RackStatus, Vehicle, VehicleId, VehicleStatus};
use crate::record::Record;
use crate::sequencing::Occupant;
use crate::variant::{Need, resolve};
use crate::vin::Vin;

impl Core {
    pub(super) fn create_vehicle(
        &mut self,
        now: DateTime<Utc>,
        line: &str,
        point: &str,
        pos: u64,
        record: Record,
    ) -> VehicleId {
        let id = self.state.sequencing.next_vehicle_id();
        let stopped_ms = self
            .state
            .sequencing
            .lines
            .get(line)
            .map_or(0, |l| l.status.stopped_ms_total);
        // Resolve first, so the record's fields can move into the vehicle instead of being copied.
        let cfg = self.cfg.clone();
        let needs: Vec<(&FamilyConfig, Need)> = cfg
            .families_at(line, point)
            .map(|(fam, _)| (fam, resolve(fam, &record)))
            .collect();
        if let Some(ps) = self.point_mut(line, point) {
            ps.by_vin.insert(record.vin.clone(), pos);
        }
        let vehicle = Vehicle {
            id,
            line: line.to_owned(),
            point: point.to_owned(),
            pos,
            seq: record.seq,
            vin: record.vin,
            body: record.body,
            model: record.model,
            options: record.options,
            broadcast_at: now,
            status: VehicleStatus::Live,
            stopped_ms_at_broadcast: stopped_ms,
            calls: BTreeMap::new(),
        };
        self.state.sequencing.vehicles.insert(id, vehicle);
        for (fam, need) in needs {
            match need {
                Need::NotApplicable => {}
                Need::Part(part) => self.create_call(now, id, fam, Some(part)),
                Need::Unresolved => self.create_call(now, id, fam, None),
            }
        }
        self.changed_vehicle(id);
        id
    }

    fn create_call(
        &mut self,
        now: DateTime<Utc>,
        vehicle: VehicleId,
        fam: &FamilyConfig,
        part: Option<String>,
    ) {
        if !self.state.sequencing.vehicles.contains_key(&vehicle) {
            return;
        }
        let id = self.state.sequencing.next_call_id();
        let Some(v) = self.state.sequencing.vehicles.get(&vehicle) else {
            return;
        };
        let station = self.cfg.family_station(fam);
        let takt_ms = self.cfg.line(&fam.line).map_or(0, |l| l.takt_ms);
        let offset_ms = i64::from(station.offset_positions) * takt_ms as i64;
        let call = Call {
            id,
            vehicle,
            line: fam.line.clone(),
            family: fam.id.clone(),
            seq: v.seq,
            pos: v.pos,
            vin: v.vin.clone(),
            part,
            status: CallStatus::Created,
            rack: None,
            slot: None,
            due_at: v.broadcast_at + TimeDelta::milliseconds(offset_ms),
            corrections: 0,
            created_at: now,
            changed_at: now,
            supplier: self.cfg.supplier_of(&fam.id).map(|s| s.id.clone()),
            received_at: None,
            built_at: None,
            shipped_at: None,
            delivered_at: None,
            short_shipped: None,
        };
        let (pos, vin, model) = (v.pos, v.vin.clone(), v.model.clone());
        if let Some(v) = self.state.sequencing.vehicles.get_mut(&vehicle) {
            v.calls.insert(fam.id.clone(), id);
        }
        let unresolved = call.part.is_none();
        if let Some(supplier) = self.cfg.supplier_of(&fam.id) {
            let within = TimeDelta::seconds(i64::from(supplier.acknowledge_within_s));
            self.state
                .suppliers
                .await_receipt(id, &supplier.id, now + within);
        }
        self.state.sequencing.calls.insert(id, call);
        if unresolved {
            self.alarm_event(
                now,
                AlarmKind::UnresolvedVariant,
                &fam.id,
                format!(
                    "{vin} ({model}) needs a {} part but no variant rule matches",
                    fam.id
                ),
            );
        }
        // Supplier racks are composed by the sequence itself: the call takes its slot now.
        let supplier_slot = match fam.sequencing {
            Sequencing::Supplier => Some(self.reserve_slot(now, &fam.id)),
            Sequencing::InPlant => None,
        };
        if let Some(call) = self.state.sequencing.calls.get_mut(&id) {
            if let Some((rack, slot)) = &supplier_slot {
                call.rack = Some(rack.clone());
                call.slot = Some(*slot);
            }
            let c = call.clone();
            self.changed_call(id);
            self.stream(StreamEvent::CallCreated(c));
        }
        match (supplier_slot, &fam.station) {
            (Some((rack, slot)), _) => self.fill_slot(now, &rack, slot, id),
            (None, Some(station)) => {
                if let Some(st) = self.state.picking.stations.get_mut(station) {
                    st.queue.insert((pos, id));
                }
                self.start_next(now, station);
            }
            (None, None) => {}
        }
    }

    /// A settled position came again with a new payload.
    pub(super) fn correct(
        &mut self,
        now: DateTime<Utc>,
        line: &str,
        point: &str,
        pos: u64,
        record: Record,
    ) {
        let subject = PointId::new(line, point).to_string();
        let vid = match self.point(line, point).and_then(|ps| ps.at.get(&pos)) {
            Some(Occupant::Vehicle(id)) => *id,
            _ => {
                self.alarm_event(
                    now,
                    AlarmKind::LateRecord,
                    &subject,
                    format!(
                        "correction of {} for {} came after the vehicle left the sequence; not applied",
                        record.seq, record.vin
                    ),
                );
                return;
            }
        };
        let Some(v) = self.state.sequencing.vehicles.get_mut(&vid) else {
            return;
        };
        let old_vin = std::mem::replace(&mut v.vin, record.vin.clone());
        v.body = record.body.clone();
        v.model = record.model.clone();
        v.options = record.options.clone();
        let calls = v.calls.clone();
        if old_vin != record.vin
            && let Some(ps) = self.point_mut(line, point)
        {
            ps.by_vin.remove(&old_vin);
            ps.by_vin.insert(record.vin.clone(), pos);
        }
        self.changed_vehicle(vid);
        let cfg = self.cfg.clone();
        for (fam, _) in cfg.families_at(line, point) {
            let need = resolve(fam, &record);
            match (calls.get(&fam.id).copied(), need) {
                (None, Need::NotApplicable) => {}
                (None, Need::Part(part)) => self.create_call(now, vid, fam, Some(part)),
                (None, Need::Unresolved) => self.create_call(now, vid, fam, None),
                (Some(cid), Need::NotApplicable) => {
                    self.cancel_call(
                        now,
                        cid,
                        AlarmKind::CorrectionAfterPick,
                        "a correction dropped this family",
                    );
                    if let Some(v) = self.state.sequencing.vehicles.get_mut(&vid) {
                        v.calls.remove(&fam.id);
                    }
                }
                (Some(cid), Need::Part(part)) => self.change_part(now, cid, Some(part), &record),
                (Some(cid), Need::Unresolved) => self.change_part(now, cid, None, &record),
            }
        }
    }

    /// A correction changes what a call needs.
    fn change_part(
        &mut self,
        now: DateTime<Utc>,
        cid: CallId,
        part: Option<String>,
        record: &Record,
    ) {
        let Some(call) = self.state.sequencing.calls.get_mut(&cid) else {
            return;
        };
        call.vin = record.vin.clone();
        if call.part == part || call.status.is_final() {
            return;
        }
        let before = std::mem::replace(&mut call.part, part.clone());
        call.corrections += 1;
        call.changed_at = now;
        let (status, family, rack) = (call.status, call.family.clone(), call.rack.clone());
        let show = |p: &Option<String>| p.clone().unwrap_or_else(|| "(unresolved)".into());
        if status.has_part() {
            self.alarm_event(
                now,
                AlarmKind::CorrectionAfterPick,
                &family,
                format!(
                    "{} was {status:?} with {}; the corrected vehicle needs {}",
                    record.vin,
                    show(&before),
                    show(&part)
                ),
            );
        }
        let rack_closed = rack
            .as_ref()
            .and_then(|r| self.state.picking.racks.get(r))
            .is_some_and(|r| r.status != RackStatus::Open);
        if rack_closed {
            self.alarm_event(
                now,
                AlarmKind::CorrectionInClosedRack,
                &family,
                format!(
                    "{} in closed rack {}: swap {} for {}",
                    record.vin,
                    rack.unwrap_or_default(),
                    show(&before),
                    show(&part)
                ),
            );
        }
        if part.is_none() {
            self.alarm_event(
                now,
                AlarmKind::UnresolvedVariant,
                &family,
                format!(
                    "{} ({}) needs a {family} part but no variant rule matches",
                    record.vin, record.model
                ),
            );
        }
        self.call_event_changed(cid);
        self.relight_if_picking(now, cid);
    }

    pub(super) fn cancel_vehicle(&mut self, now: DateTime<Utc>, line: &str, vin: &str) -> Outcome {
        let vin = match Vin::parse(vin) {
            Ok(v) => v,
            Err(e) => return Outcome::Rejected(format!("VIN `{vin}`: {e}")),
        };
        let found = match self.state.sequencing.positions_of(line, &vin) {
            Ok(found) => found,
            Err(reason) => return Outcome::Rejected(reason),
        };
        for (point, pos) in found {
            self.vacate(now, line, &point, pos, VehicleStatus::Cancelled);
        }
        Outcome::Applied
    }

    /// Take the vehicle at `pos` out of the sequence (cancelled, or moved by a resequence).
    pub(super) fn vacate(
        &mut self,
        now: DateTime<Utc>,
        line: &str,
        point: &str,
        pos: u64,
        status: VehicleStatus,
    ) {
        let Some(ps) = self.point_mut(line, point) else {
            return;
        };
        let Some(Occupant::Vehicle(vid)) = ps.at.insert(pos, Occupant::Vacated) else {
            return;
        };
        let Some(mut v) = self.state.sequencing.vehicles.remove(&vid) else {
            return;
        };
        if let Some(ps) = self.point_mut(line, point) {
            ps.by_vin.remove(&v.vin);
        }
        let (kind, why) = match status {
            VehicleStatus::Resequenced => (
                AlarmKind::ResequenceAfterPick,
                "the vehicle was resequenced",
            ),
            _ => (AlarmKind::CancelAfterPick, "the vehicle was cancelled"),
        };
        for cid in v.calls.values() {
            self.cancel_call(now, *cid, kind, why);
        }
        v.status = status;
        self.state.sequencing.vehicles.insert(vid, v);
        self.changed_vehicle(vid);
        self.changed_leaving(super::ChangeKey::Vehicle(vid));
        self.state.sequencing.vehicles.remove(&vid);
    }

    /// Cancel one call; a part already picked for it needs a person, so that raises `kind`.
    pub(super) fn cancel_call(
        &mut self,
        now: DateTime<Utc>,
        cid: CallId,
        kind: AlarmKind,
        why: &str,
    ) {
        let Some(call) = self.state.sequencing.calls.get_mut(&cid) else {
            return;
        };
        if call.status.is_final() {
            return;
        }
        let was = call.status;
        call.status = CallStatus::Cancelled;
        call.changed_at = now;
        let c = call.clone();
        if was.has_part() {
            let place = match (&c.rack, c.slot) {
                (Some(r), Some(s)) if was != CallStatus::Picked => format!("rack {r} slot {s}"),
                _ => "the picker's hands".into(),
            };
            self.alarm_event(
                now,
                kind,
                &c.family,
                format!(
                    "{why}: take the {} part for {} out of {place}",
                    c.family, c.vin
                ),
            );
        }
        self.drop_from_station(now, cid);
        self.changed_call(cid);
        self.stream(StreamEvent::CallCancelled(c));
        self.retire_call(cid);
    }

    /// A supervisor names the part for a call that is not picked yet.
    pub(super) fn resolve_call(&mut self, now: DateTime<Utc>, cid: CallId, part: &str) -> Outcome {
        let Some(call) = self.state.sequencing.calls.get(&cid) else {
            return Outcome::Rejected(format!("no live call {cid}"));
        };
        if call.status != CallStatus::Created {
            return Outcome::Rejected(format!("call {cid} is already {:?}", call.status));
        }
        let known = self
            .cfg
            .family(&call.family)
            .is_some_and(|f| f.rules.iter().any(|r| r.part == part));
        if !known {
            return Outcome::Rejected(format!(
                "part `{part}` is not a part of family `{}`",
                call.family
            ));
        }
        if let Some(call) = self.state.sequencing.calls.get_mut(&cid) {
            call.part = Some(part.to_owned());
            call.corrections += 1;
            call.changed_at = now;
        }
        self.call_event_changed(cid);
        self.relight_if_picking(now, cid);
        Outcome::Applied
    }

    pub(super) fn call_event_changed(&mut self, cid: CallId) {
        if let Some(c) = self.state.sequencing.calls.get(&cid) {
            let c = c.clone();
            self.changed_call(cid);
            self.stream(StreamEvent::CallChanged(c));
        }
    }

    /// A final call leaves the live state; its rack may then be done with too.
    pub(super) fn retire_call(&mut self, cid: CallId) {
        self.stop_waiting_for_receipt(cid);
        self.changed_leaving(super::ChangeKey::Call(cid));
        if let Some(call) = self.state.sequencing.calls.remove(&cid)
            && let Some(rack) = call.rack
        {
            self.retire_rack_if_done(&rack);
        }
    }
}
