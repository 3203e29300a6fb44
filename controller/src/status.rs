//! What `/status` shows: the plant as of the last commit.
//!
//! Captured when a batch is staged and published only once that batch has committed, so the
//! status never shows anything the journal does not hold yet (the core runs one batch ahead).

use std::collections::BTreeMap;

use serde::Serialize;
use takt_core::model::{Coverage, LineStatus, Task};
use takt_core::{Alarm, AlarmState, Core, SeqNo};

/// The JSON document of `GET /status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub plant: String,
    /// Id of the last committed journal entry.
    pub journal_id: i64,
    pub lines: Vec<LineView>,
    pub open_tasks: Vec<Task>,
    /// Alarms not back at normal, most urgent first.
    pub alarms: Vec<Alarm>,
    pub coverage: Vec<Coverage>,
    pub live: LiveCounts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineView {
    #[serde(flatten)]
    pub status: LineStatus,
    /// Per broadcast point, the sequence number expected next (`null` before the first record).
    pub expected_seq: BTreeMap<String, Option<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LiveCounts {
    pub vehicles: usize,
    pub calls: usize,
    pub racks: usize,
}

impl Status {
    /// The status of `core` once journal entry `journal_id` is durable.
    pub fn of(core: &Core, journal_id: i64) -> Self {
        let cfg = &core.config().config;
        let lines = cfg
            .lines
            .iter()
            .filter_map(|line| {
                let status = core.line_status(&line.id)?.clone();
                let expected_seq = line
                    .broadcast_points
                    .iter()
                    .map(|p| {
                        let seq = core.expected_seq(&line.id, &p.id).map(SeqNo::value);
                        (p.id.clone(), seq)
                    })
                    .collect();
                Some(LineView {
                    status,
                    expected_seq,
                })
            })
            .collect();
        let mut alarms: Vec<Alarm> = core
            .alarms()
            .filter(|a| a.state != AlarmState::Normal)
            .cloned()
            .collect();
        alarms.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(b.changed_at.cmp(&a.changed_at))
        });
        Self {
            plant: cfg.plant.name.clone(),
            journal_id,
            lines,
            open_tasks: core.tasks().cloned().collect(),
            alarms,
            coverage: core.coverages().cloned().collect(),
            live: LiveCounts {
                vehicles: core.vehicles().count(),
                calls: core.calls().count(),
                racks: core.racks().count(),
            },
        }
    }
}
