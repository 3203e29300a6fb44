//! Takt status: each line's heartbeat on the stream, for screens and suppliers — every takt,
//! and at once when the line starts or stops. The writer's tick (see `poll_timeout`) brings the
//! input that finds it due, so a quiet line still beats, and a replay beats the same.

use chrono::{DateTime, TimeDelta, Utc};

use super::Core;
use crate::config::FamilyConfig;
use crate::io::StreamEvent;
use crate::model::{
    CallStatus, PointSequence, SupplierFamilyStatus, SupplierTaktStatus, TaktStatus,
};
use crate::seq::SeqNo;
use crate::sequencing::Occupant;

impl Core {
    /// The status of every line whose takt has come round since its last one.
    pub(super) fn takt_statuses_due(&mut self, now: DateTime<Utc>) {
        let due: Vec<String> = self
            .state
            .sequencing
            .lines
            .iter()
            .filter(|(_, ls)| ls.takt_status_due.is_none_or(|due| now >= due))
            .map(|(line, _)| line.clone())
            .collect();
        for line in due {
            self.takt_status(now, &line);
        }
    }

    /// Streams `line`'s status as of `now`; the next is due a takt later.
    pub(super) fn takt_status(&mut self, now: DateTime<Utc>, line: &str) {
        let coverage = self
            .state
            .picking
            .coverage
            .values()
            .filter(|c| c.line == line)
            .cloned()
            .collect();
        let Some(ls) = self.state.sequencing.lines.get_mut(line) else {
            return;
        };
        let takt = TimeDelta::milliseconds(i64::try_from(ls.status.takt_ms).unwrap_or(i64::MAX));
        // The first beat also puts the line in its projection, so a line that has not
        // started or stopped yet is listed too.
        let first = ls.takt_status_due.is_none();
        ls.takt_status_due = now.checked_add_signed(takt);
        let status = TaktStatus {
            line: line.to_owned(),
            at: now,
            running: ls.status.running,
            reason: ls.status.reason.clone(),
            takt_ms: ls.status.takt_ms,
            points: ls
                .points
                .iter()
                .map(|(point, ps)| PointSequence {
                    point: point.clone(),
                    expected_seq: ps.tracker.expected().map(SeqNo::value),
                })
                .collect(),
            coverage,
        };
        if first {
            self.changed_line(line);
        }
        self.stream(StreamEvent::TaktStatus(status.clone()));
        self.supplier_takt_statuses(&status);
    }

    /// The line's status once for each supplier that builds for it.
    fn supplier_takt_statuses(&mut self, status: &TaktStatus) {
        let cfg = self.cfg.clone();
        for supplier in &cfg.config.suppliers {
            let families: Vec<SupplierFamilyStatus> = supplier
                .families
                .iter()
                .filter_map(|f| cfg.family(f))
                .filter(|f| f.line == status.line)
                .map(|f| self.family_status(f))
                .collect();
            if families.is_empty() {
                continue;
            }
            self.stream(StreamEvent::SupplierTaktStatus(SupplierTaktStatus {
                supplier: supplier.id.clone(),
                line: status.line.clone(),
                at: status.at,
                running: status.running,
                reason: status.reason.clone(),
                takt_ms: status.takt_ms,
                families,
            }));
        }
    }

    fn family_status(&self, family: &FamilyConfig) -> SupplierFamilyStatus {
        let station = self.cfg.family_station(family);
        let next_seq = self
            .point(&family.line, &station.broadcast_point)
            .and_then(|ps| {
                let pos = ps
                    .tracker
                    .next_pos()
                    .checked_sub(u64::from(station.offset_positions))?;
                match ps.at.get(&pos)? {
                    Occupant::Vehicle(id) => self.state.sequencing.vehicles.get(id),
                    Occupant::Unknown | Occupant::Vacated => None,
                }
            })
            .map(|v| v.seq.value());
        let coverage = self.state.picking.coverage.get(&family.id);
        let next_call_due = self
            .state
            .sequencing
            .calls
            .values()
            .filter(|c| c.family == family.id && c.status < CallStatus::Delivered)
            .map(|c| c.due_at)
            .min();
        SupplierFamilyStatus {
            family: family.id.clone(),
            install_station: station.id.clone(),
            next_seq,
            coverage_vehicles: coverage.map_or(0, |c| c.vehicles),
            coverage_minutes: coverage.map_or(0.0, |c| c.minutes),
            next_call_due,
        }
    }

    /// When the next takt status is due on any line, if one has been sent yet.
    pub fn next_takt_status(&self) -> Option<DateTime<Utc>> {
        self.state.sequencing.next_takt_status()
    }
}
