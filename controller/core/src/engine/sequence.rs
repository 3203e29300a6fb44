//! Records to positions, positions to installs: the broadcast side of the core.

use chrono::{DateTime, Utc};

use super::Core;
use crate::alarm::AlarmKind;
use crate::ids::PointId;
use crate::io::{Action, Outcome};
use crate::model::{CallStatus, VehicleStatus};
use crate::record::{RawRecord, Record};
use crate::seq::SeqNo;
use crate::sequencing::Occupant;
use crate::sequencing::PointState;
use crate::tracker::{Offered, Settled};
use crate::vin::Vin;

impl Core {
    pub(super) fn broadcast(
        &mut self,
        now: DateTime<Utc>,
        line: &str,
        point: &str,
        raw: &RawRecord,
    ) -> Outcome {
        let Some(lc) = self.cfg.line(line) else {
            return Outcome::Rejected(format!("no line `{line}`"));
        };
        if self.point(line, point).is_none() {
            return Outcome::Rejected(format!("no broadcast point `{point}` on line `{line}`"));
        }
        let subject = PointId::new(line, point).to_string();
        match Record::validate(raw, lc, &self.cfg) {
            Ok(record) => {
                self.record_judged(now, &subject, false);
                self.offer(now, line, point, record)
            }
            Err(reason) => {
                self.record_judged(now, &subject, true);
                self.alarm_event(
                    now,
                    AlarmKind::RecordRejected,
                    &subject,
                    format!("record {} rejected: {reason}", raw.seq),
                );
                Outcome::Rejected(reason)
            }
        }
    }

    pub(super) fn resequence(
        &mut self,
        now: DateTime<Utc>,
        line: &str,
        point: &str,
        vin: &str,
        seq: u32,
    ) -> Outcome {
        let Some(lc) = self.cfg.line(line) else {
            return Outcome::Rejected(format!("no line `{line}`"));
        };
        let seq = match SeqNo::new(seq, lc.modulus) {
            Ok(s) => s,
            Err(e) => return Outcome::Rejected(e),
        };
        let vin = match Vin::parse(vin) {
            Ok(v) => v,
            Err(e) => return Outcome::Rejected(format!("VIN `{vin}`: {e}")),
        };
        let Some(ps) = self.point(line, point) else {
            return Outcome::Rejected(format!("no broadcast point `{point}` on line `{line}`"));
        };
        let Some(vehicle) = ps.by_vin.get(&vin).and_then(|pos| match ps.at.get(pos) {
            Some(Occupant::Vehicle(id)) => self.state.sequencing.vehicles.get(id),
            _ => None,
        }) else {
            return Outcome::Rejected(format!("VIN {vin} is not in sequence at {line}/{point}"));
        };
        let record = Record {
            seq,
            vin: vehicle.vin.clone(),
            body: vehicle.body.clone(),
            model: vehicle.model.clone(),
            options: vehicle.options.clone(),
        };
        if let Some(ps) = self.point_mut(line, point) {
            ps.resequences.insert(vin.clone());
        }
        let (outcome, held) = self.offer_inner(now, line, point, record);
        if !held {
            // Settled (the flag was consumed) or refused: either way nothing is pending.
            if let Some(ps) = self.point_mut(line, point) {
                ps.resequences.remove(&vin);
            }
        }
        outcome
    }

    fn offer(&mut self, now: DateTime<Utc>, line: &str, point: &str, record: Record) -> Outcome {
        self.offer_inner(now, line, point, record).0
    }

    /// Returns the outcome and whether the record is being held behind a gap.
    fn offer_inner(
        &mut self,
        now: DateTime<Utc>,
        line: &str,
        point: &str,
        record: Record,
    ) -> (Outcome, bool) {
        let seq = record.seq;
        // Built only when an alarm needs it: this runs for every record.
        let subject = || PointId::new(line, point).to_string();
        let Some(ps) = self.point_mut(line, point) else {
            return (Outcome::Rejected(format!("no point {}", subject())), false);
        };
        let held_before = ps.tracker.held_count();
        let offered = ps.tracker.offer(now, record);
        let held_left = ps.tracker.held_count();
        match offered {
            Offered::Settled(settled) => {
                self.settle(now, line, point, settled);
                if held_before > 0 && held_left == 0 {
                    let subject = subject();
                    self.alarm_condition(
                        now,
                        AlarmKind::SequenceGap,
                        &subject,
                        false,
                        String::new(),
                    );
                }
                (Outcome::Applied, false)
            }
            Offered::Held { missing, .. } => {
                let (from, to) = missing;
                let subject = subject();
                self.alarm_condition(
                    now,
                    AlarmKind::SequenceGap,
                    &subject,
                    true,
                    format!("waiting for {from}–{to}; {held_left} record(s) held"),
                );
                self.emit(Action::Backfill {
                    line: line.to_owned(),
                    point: point.to_owned(),
                    from,
                    to,
                });
                (Outcome::Applied, true)
            }
            Offered::Duplicate => (Outcome::Ignored(format!("duplicate of {seq}")), false),
            Offered::Correction { pos, record, .. } => {
                self.correct(now, line, point, pos, record);
                (Outcome::Applied, false)
            }
            Offered::Late => {
                let subject = subject();
                let reason = format!("{seq} arrived after its position was given up as unknown");
                self.alarm_event(now, AlarmKind::LateRecord, &subject, reason.clone());
                (Outcome::Rejected(reason), false)
            }
            Offered::Jump(settled) => {
                let subject = subject();
                let skipped: u64 = settled
                    .iter()
                    .map(|s| match s {
                        Settled::Unknown { count, .. } => *count,
                        Settled::Vehicle { .. } => 0,
                    })
                    .sum();
                self.alarm_event(
                    now,
                    AlarmKind::SequenceJump,
                    &subject,
                    format!("sequence jumped to {seq}; {skipped} position(s) marked unknown"),
                );
                self.settle(now, line, point, settled);
                self.alarm_condition(now, AlarmKind::SequenceGap, &subject, false, String::new());
                (Outcome::Applied, false)
            }
        }
    }

    /// Apply positions settled by the tracker, strictly in order.
    pub(super) fn settle(
        &mut self,
        now: DateTime<Utc>,
        line: &str,
        point: &str,
        settled: Vec<Settled>,
    ) {
        for s in settled {
            match s {
                Settled::Unknown { pos, count, .. } => {
                    if let Some(ps) = self.point_mut(line, point) {
                        let keep_from = (pos + count).saturating_sub(ps.max_offset).max(pos);
                        for p in keep_from..pos + count {
                            ps.at.insert(p, Occupant::Unknown);
                        }
                    }
                    self.advance(now, line, point, pos, pos + count);
                }
                Settled::Vehicle { pos, record } => {
                    self.place(now, line, point, pos, record);
                    self.advance(now, line, point, pos, pos + 1);
                }
            }
        }
    }

    fn place(&mut self, now: DateTime<Utc>, line: &str, point: &str, pos: u64, record: Record) {
        let Some(ps) = self.point_mut(line, point) else {
            return;
        };
        if let Some(&old_pos) = ps.by_vin.get(&record.vin) {
            if ps.resequences.remove(&record.vin) {
                self.vacate(now, line, point, old_pos, VehicleStatus::Resequenced);
            } else {
                if let Some(ps) = self.point_mut(line, point) {
                    ps.at.insert(pos, Occupant::Unknown);
                }
                self.alarm_event(
                    now,
                    AlarmKind::RecordRejected,
                    &PointId::new(line, point).to_string(),
                    format!(
                        "record {} rejected: VIN {} is already in sequence; send a resequence to move it",
                        record.seq, record.vin
                    ),
                );
                return;
            }
        }
        let id = self.create_vehicle(now, line, point, pos, record);
        if let Some(ps) = self.point_mut(line, point) {
            ps.at.insert(pos, Occupant::Vehicle(id));
        }
    }

    /// The point's counter moved from `from` to `to`: vehicles reach their install stations,
    /// and those past the last one leave the live state.
    fn advance(&mut self, now: DateTime<Utc>, line: &str, point: &str, from: u64, to: u64) {
        let cfg = self.cfg.clone();
        for (fam, station) in cfg.families_at(line, point) {
            self.mark_coverage(&fam.id);
            let k = u64::from(station.offset_positions);
            let (lo, hi) = (from.saturating_sub(k), to.saturating_sub(k));
            let arriving: Vec<_> = self
                .point(line, point)
                .map(|ps| {
                    ps.at
                        .range(lo..hi)
                        .filter_map(|(_, o)| match o {
                            Occupant::Vehicle(id) => Some(*id),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            for vid in arriving {
                let call = self
                    .state
                    .sequencing
                    .vehicles
                    .get(&vid)
                    .and_then(|v| v.calls.get(&fam.id).copied());
                if let Some(cid) = call {
                    self.install(now, cid, &station.id);
                }
            }
        }
        let Some(ps) = self.point_mut(line, point) else {
            return;
        };
        let done_below = to.saturating_sub(ps.max_offset);
        let rest = ps.at.split_off(&done_below);
        let done = std::mem::replace(&mut ps.at, rest);
        for (_, occupant) in done {
            if let Occupant::Vehicle(id) = occupant {
                self.finish_vehicle(id, line, point);
            }
        }
    }

    fn install(&mut self, now: DateTime<Utc>, cid: crate::model::CallId, station: &str) {
        let Some(call) = self.state.sequencing.calls.get_mut(&cid) else {
            return;
        };
        if call.status.is_final() {
            return;
        }
        let was = call.status;
        call.status = if was == CallStatus::Delivered {
            CallStatus::Installed
        } else {
            CallStatus::Missed
        };
        call.changed_at = now;
        let (family, vin, seq) = (call.family.clone(), call.vin.clone(), call.seq);
        if was != CallStatus::Delivered {
            self.alarm_event(
                now,
                AlarmKind::PartMissingAtInstall,
                &family,
                format!("{vin} ({seq}) reached {station} with its {family} call still {was:?}"),
            );
            self.drop_from_station(now, cid);
        }
        self.call_event_changed(cid);
    }

    fn finish_vehicle(&mut self, id: crate::model::VehicleId, line: &str, point: &str) {
        let Some(mut v) = self.state.sequencing.vehicles.remove(&id) else {
            return;
        };
        if let Some(ps) = self.point_mut(line, point)
            && ps.by_vin.get(&v.vin) == Some(&v.pos)
        {
            ps.by_vin.remove(&v.vin);
        }
        v.status = VehicleStatus::Finished;
        for cid in v.calls.values() {
            self.retire_call(*cid);
        }
        self.state.sequencing.vehicles.insert(id, v);
        self.changed_vehicle(id);
        self.changed_leaving(super::ChangeKey::Vehicle(id));
        self.state.sequencing.vehicles.remove(&id);
    }

    pub(super) fn point_mut(&mut self, line: &str, point: &str) -> Option<&mut PointState> {
        self.state.sequencing.point_mut(line, point)
    }
}
