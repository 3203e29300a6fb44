//! Alarms in the log, for the person reading it at 3 a.m.: every alarm that goes active is
//! logged (high and critical at WARN, the rest at INFO), and so is every condition that clears.
//! A flood is rate-limited per alarm: the first occurrence in each period is logged at once,
//! the rest are counted and summed up in one line at the end of the period, with the last
//! message — 294 rejected records are two lines, not 294, and none goes unmentioned.
//!
//! Read from the committed action stream, so every line is something the journal holds.

use std::collections::BTreeMap;
use std::time::Duration;

use takt_core::config::Priority;
use takt_core::io::Action;
use takt_core::{Alarm, AlarmKey, AlarmState};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::runtime::writer::Handle;

/// One line to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub warn: bool,
    pub text: String,
}

#[derive(Debug, Default)]
struct Seen {
    occurrences: u64,
    active: bool,
    /// Occurrences this period not logged one by one, and the last one's message.
    held: u64,
    last_message: String,
    logged_this_period: bool,
}

/// What has been logged of each alarm; decides what to log next.
#[derive(Debug, Default)]
pub struct AlarmLog {
    alarms: BTreeMap<AlarmKey, Seen>,
}

impl AlarmLog {
    /// A changed alarm from the action stream: the line to log now, if any.
    pub fn changed(&mut self, alarm: &Alarm) -> Option<Line> {
        let seen = self.alarms.entry(alarm.key.clone()).or_default();
        let new_occurrence = alarm.occurrences > seen.occurrences;
        let was_active = seen.active;
        seen.occurrences = alarm.occurrences;
        seen.active = alarm.is_active();
        let id = alarm.key.id();
        if new_occurrence {
            if seen.logged_this_period {
                seen.held += 1;
                seen.last_message.clone_from(&alarm.message);
                return None;
            }
            seen.logged_this_period = true;
            return Some(Line {
                warn: alarm.priority >= Priority::High,
                text: format!("alarm {id} ({:?}): {}", alarm.priority, alarm.message),
            });
        }
        // A condition that cleared (an event alarm clears in the step that raised it).
        (was_active && alarm.state == AlarmState::ClearedUnacknowledged).then(|| Line {
            warn: false,
            text: format!("alarm {id} cleared (raised for: {})", alarm.message),
        })
    }

    /// The end of a period: one summary line per alarm whose occurrences were held back.
    pub fn period_ended(&mut self, period: Duration) -> Vec<Line> {
        let mut lines = Vec::new();
        for (key, seen) in &mut self.alarms {
            if seen.held > 0 {
                lines.push(Line {
                    warn: true,
                    text: format!(
                        "alarm {} went active {} more times in the last {} s; last: {}",
                        key.id(),
                        seen.held,
                        period.as_secs(),
                        seen.last_message
                    ),
                });
            }
            seen.held = 0;
            seen.logged_this_period = false;
        }
        lines
    }
}

/// Logs alarms from the committed actions until the writer stops.
pub fn spawn(handle: &Handle, period: Duration) -> JoinHandle<()> {
    let mut actions = handle.subscribe();
    tokio::spawn(async move {
        let mut log = AlarmLog::default();
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                action = actions.recv() => match action {
                    Ok(Action::Alarm(alarm)) => {
                        if let Some(line) = log.changed(&alarm) {
                            emit(&line);
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!("alarm log fell behind by {missed} actions; /status and the journal hold every alarm");
                    }
                    Err(RecvError::Closed) => {
                        log.period_ended(period).iter().for_each(emit);
                        return;
                    }
                },
                _ = ticker.tick() => log.period_ended(period).iter().for_each(emit),
            }
        }
    })
}

fn emit(line: &Line) {
    if line.warn {
        tracing::warn!("{}", line.text);
    } else {
        tracing::info!("{}", line.text);
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use takt_core::AlarmKind;

    use super::*;

    fn alarm(kind: AlarmKind, occurrences: u64, state: AlarmState, message: &str) -> Alarm {
        Alarm {
            key: AlarmKey::new(kind, "A1/B1"),
            priority: kind.default_priority(),
            state,
            message: message.to_owned(),
            shelved_until: None,
            raised_at: Utc::now(),
            changed_at: Utc::now(),
            occurrences,
        }
    }

    #[test]
    fn a_flood_of_rejections_is_one_line_then_one_summary_per_period() {
        let mut log = AlarmLog::default();
        let rejected = |n, msg: &str| {
            alarm(
                AlarmKind::RecordRejected,
                n,
                AlarmState::ClearedUnacknowledged,
                msg,
            )
        };
        let first = log.changed(&rejected(1, "record 1 rejected: unknown model `M9`"));
        assert_eq!(
            first,
            Some(Line {
                warn: true,
                text: "alarm record_rejected:A1/B1 (High): record 1 rejected: unknown model `M9`"
                    .into()
            })
        );
        for n in 2..=294 {
            let message = format!("record {n} rejected");
            assert_eq!(log.changed(&rejected(n, &message)), None);
        }
        let summary = log.period_ended(Duration::from_secs(10));
        assert_eq!(
            summary,
            vec![Line {
                warn: true,
                text: "alarm record_rejected:A1/B1 went active 293 more times in the last 10 s; \
                       last: record 294 rejected"
                    .into()
            }]
        );
        // Nothing held: a quiet period logs nothing, and the next rejection is logged at once.
        assert_eq!(log.period_ended(Duration::from_secs(10)), vec![]);
        assert!(log.changed(&rejected(295, "record 295 rejected")).is_some());
    }

    #[test]
    fn a_condition_is_logged_when_raised_and_when_cleared_but_not_when_acknowledged() {
        let mut log = AlarmLog::default();
        let kind = AlarmKind::RejectionRate;
        let raised = log.changed(&alarm(kind, 1, AlarmState::ActiveUnacknowledged, "5 of 5"));
        assert!(raised.is_some_and(|l| l.warn), "critical: WARN");
        assert_eq!(
            log.changed(&alarm(kind, 1, AlarmState::ActiveAcknowledged, "5 of 5")),
            None
        );
        let cleared = log.changed(&alarm(kind, 1, AlarmState::ClearedUnacknowledged, "5 of 5"));
        assert_eq!(
            cleared,
            Some(Line {
                warn: false,
                text: "alarm rejection_rate:A1/B1 cleared (raised for: 5 of 5)".into()
            })
        );
        // A medium alarm goes to INFO.
        let wrong = alarm(
            AlarmKind::WrongPick,
            1,
            AlarmState::ClearedUnacknowledged,
            "bin",
        );
        assert!(log.changed(&wrong).is_some_and(|l| !l.warn));
    }
}
