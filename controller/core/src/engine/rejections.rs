//! The share of a point's recent records that were rejected. One rejected record is an event
//! for an operator to look at; most of them rejected is a condition (a PLC whose layout or
//! option list changed) that starves the line's sequence as surely as a lost session, so it
//! raises `rejection_rate` until enough good records have come through again.

use chrono::{DateTime, Utc};

use super::Core;
use crate::alarm::{Alarm, AlarmKey, AlarmKind};

impl Core {
    /// Counts one record judged at `subject` (`line/point`) and raises or clears the
    /// point's `rejection_rate` when the share in the window crosses the threshold.
    pub(super) fn record_judged(&mut self, now: DateTime<Utc>, subject: &str, rejected: bool) {
        let settings = &self.cfg.config.alarms;
        let window = settings.rejection_window as usize;
        let alarming = settings.rejections_alarming();
        let recent = self
            .state
            .sequencing
            .recent_records
            .entry(subject.to_owned())
            .or_default();
        recent.push_back(rejected);
        while recent.len() > window {
            recent.pop_front();
        }
        let count = recent.iter().filter(|r| **r).count();
        let judged = recent.len();
        let active = count >= alarming;
        let key = AlarmKey::new(AlarmKind::RejectionRate, subject);
        let was_active = self.state.alarms.get(&key).is_some_and(Alarm::is_active);
        if active != was_active {
            let message = format!("{count} of the last {judged} records rejected");
            self.alarm_condition(now, AlarmKind::RejectionRate, subject, active, message);
        }
    }
}
