//! Progress lines for a person watching the controller run (the demo, commissioning): every
//! few seconds, if anything happened, one log line with what the line is doing — the next
//! sequence numbers, calls created, picks and puts done, racks closed, alarms raised since
//! start, and what is open now.
//!
//! Counted from the committed action stream, so every figure is something the journal holds.

use std::time::Duration;

use takt_core::AlarmState;
use takt_core::io::{Action, StreamEvent};
use takt_core::model::CallStatus;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::runtime::writer::Handle;

/// Counts since the controller started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    calls: u64,
    picked: u64,
    put: u64,
    racks_closed: u64,
    alarms_raised: u64,
}

impl Counts {
    fn add(&mut self, action: &Action) {
        match action {
            Action::Stream(StreamEvent::CallCreated(_)) => self.calls += 1,
            Action::Stream(StreamEvent::CallChanged(call)) => match call.status {
                CallStatus::Picked => self.picked += 1,
                CallStatus::Put => self.put += 1,
                _ => {}
            },
            Action::Stream(StreamEvent::RackClosed(_)) => self.racks_closed += 1,
            Action::Alarm(alarm) if alarm.state == AlarmState::ActiveUnacknowledged => {
                self.alarms_raised += 1;
            }
            _ => {}
        }
    }
}

/// Logs a progress line every `every` while anything changes; stops when the writer stops.
pub fn spawn(handle: &Handle, every: Duration) -> JoinHandle<()> {
    let mut actions = handle.subscribe();
    let handle = handle.clone();
    tokio::spawn(async move {
        let mut counts = Counts::default();
        let mut told = (counts, -1);
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                action = actions.recv() => match action {
                    Ok(action) => counts.add(&action),
                    // A progress line may undercount; the journal and /status do not.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                _ = ticker.tick() => {
                    let status = handle.status();
                    if told == (counts, status.journal_id) {
                        continue;
                    }
                    told = (counts, status.journal_id);
                    let next: Vec<String> = status
                        .lines
                        .iter()
                        .flat_map(|l| {
                            l.expected_seq.iter().map(move |(point, seq)| {
                                let seq = seq.map_or("-".to_owned(), |s| format!("{s:04}"));
                                format!("{}/{point}:{seq}", l.status.line)
                            })
                        })
                        .collect();
                    let running = status.lines.iter().all(|l| l.status.running);
                    tracing::info!(
                        next_seq = %next.join(" "),
                        running,
                        calls = counts.calls,
                        picked = counts.picked,
                        put = counts.put,
                        racks_closed = counts.racks_closed,
                        alarms_raised = counts.alarms_raised,
                        open_tasks = status.open_tasks.len(),
                        active_alarms = status.alarms.iter().filter(|a| a.is_active()).count(),
                        journal_id = status.journal_id,
                        "progress"
                    );
                }
            }
        }
    })
}
