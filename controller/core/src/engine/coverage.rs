//! Coverage: how long the line can run on parts already in racks ahead of a family's station.

use chrono::{DateTime, Utc};

use super::Core;
use crate::alarm::AlarmKind;
use crate::io::{Change, StreamEvent};
use crate::model::Coverage;
use crate::sequencing::Occupant;

impl Core {
    /// Recompute coverage of the families touched by this input; report it where it changed.
    pub(super) fn update_coverage(&mut self, now: DateTime<Utc>) {
        let threshold = self.cfg.config.alarms.coverage_low_min;
        for family in std::mem::take(&mut self.coverage_dirty) {
            let Some((vehicles, takt_ms)) = self.measure(&family) else {
                continue;
            };
            if self
                .state
                .picking
                .coverage
                .get(&family)
                .is_some_and(|c| c.vehicles == vehicles)
            {
                continue;
            }
            let Some(line) = self.cfg.family(&family).map(|f| f.line.clone()) else {
                continue;
            };
            let cov = Coverage {
                family: family.clone(),
                line,
                vehicles,
                minutes: (vehicles * takt_ms) as f64 / 60_000.0,
            };
            let started = self.point_of(&family).is_some_and(|(line, point)| {
                self.point(line, point)
                    .is_some_and(|p| p.tracker.next_pos() > 0)
            });
            if started {
                let low = cov.minutes < threshold;
                let message = format!(
                    "{family} coverage {:.1} min is below {threshold:.1} min",
                    cov.minutes
                );
                self.alarm_condition(now, AlarmKind::CoverageLow, &family, low, message);
            }
            self.state
                .picking
                .coverage
                .insert(family.clone(), cov.clone());
            self.record(
                super::ChangeKey::Coverage(family),
                Some(Change::Coverage(cov.clone())),
            );
            self.stream(StreamEvent::Coverage(cov));
        }
    }

    fn point_of(&self, family: &str) -> Option<(&str, &str)> {
        let fam = self.cfg.family(family)?;
        let station = self.cfg.family_station(fam);
        Some((fam.line.as_str(), station.broadcast_point.as_str()))
    }

    /// Consecutive vehicles, from the next one to reach the install station, that need nothing
    /// of the family or whose part is already in a rack, and the line's takt. An unknown
    /// position ends the count: nobody can say what it needs.
    fn measure(&self, family: &str) -> Option<(u64, u64)> {
        let fam = self.cfg.family(family)?;
        let station = self.cfg.family_station(fam);
        let takt_ms = self.cfg.line(&fam.line)?.takt_ms;
        let ps = self.point(&fam.line, &station.broadcast_point)?;
        let next = ps.tracker.next_pos();
        let from = next.saturating_sub(u64::from(station.offset_positions));
        let mut vehicles = 0;
        for pos in from..next {
            let covered = match ps.at.get(&pos) {
                Some(Occupant::Vehicle(id)) => self
                    .state
                    .sequencing
                    .vehicles
                    .get(id)
                    .and_then(|v| v.calls.get(family))
                    .is_none_or(|cid| {
                        self.state
                            .sequencing
                            .calls
                            .get(cid)
                            .is_some_and(|c| c.status.covers())
                    }),
                Some(Occupant::Vacated) => true,
                Some(Occupant::Unknown) | None => false,
            };
            if !covered {
                break;
            }
            vehicles += 1;
        }
        Some((vehicles, takt_ms))
    }
}
