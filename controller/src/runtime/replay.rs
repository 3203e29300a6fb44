//! Replaying a journal into projections: for `takt replay` and the replay tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use takt_core::{AlarmState, ConfigIndex, Core, Outcome, PointId};

use crate::store::{Store, StoreError};

/// What a replay found.
#[derive(Debug, Clone)]
pub struct ReplaySummary {
    pub config: ConfigIndex,
    pub entries: u64,
    pub rejected: u64,
    pub ignored: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    /// `line/point` → the sequence number expected next.
    pub expected: BTreeMap<String, String>,
    pub live_vehicles: usize,
    pub live_calls: usize,
    pub live_racks: usize,
    /// Alarms not at normal, as `id state: message`.
    pub alarms_open: Vec<String>,
}

/// Feed every journal row of `source` through a fresh core and write the resulting projection
/// changes to `target` (page by page; the upserts keep each entity's last version).
pub async fn replay_journal(
    cfg: Arc<ConfigIndex>,
    source: &Store,
    target: &Store,
) -> Result<ReplaySummary, StoreError> {
    let mut core = Core::new(cfg.clone());
    let mut s = ReplaySummary {
        config: (*cfg).clone(),
        entries: 0,
        rejected: 0,
        ignored: 0,
        by_kind: BTreeMap::new(),
        first_at: None,
        last_at: None,
        expected: BTreeMap::new(),
        live_vehicles: 0,
        live_calls: 0,
        live_racks: 0,
        alarms_open: Vec::new(),
    };
    let mut after = 0;
    loop {
        let page = source.journal_after(after, super::REPLAY_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for entry in page {
            *s.by_kind.entry(entry.input.kind()).or_default() += 1;
            s.first_at.get_or_insert(entry.at);
            s.last_at = Some(entry.at);
            s.entries += 1;
            match core.handle(entry.at, &entry.input) {
                Outcome::Rejected(_) => s.rejected += 1,
                Outcome::Ignored(_) => s.ignored += 1,
                Outcome::Applied => {}
            }
        }
        while core.poll_action().is_some() {}
        target.commit(&[], &core.take_changes()).await?;
    }
    for line in &cfg.config.lines {
        for point in &line.broadcast_points {
            let next = core
                .expected_seq(&line.id, &point.id)
                .map_or_else(|| "(nothing received)".to_owned(), |q| q.to_string());
            s.expected
                .insert(PointId::new(&line.id, &point.id).to_string(), next);
        }
    }
    s.live_vehicles = core.vehicles().count();
    s.live_calls = core.calls().count();
    s.live_racks = core.racks().count();
    s.alarms_open = core
        .alarms()
        .filter(|a| a.state != AlarmState::Normal)
        .map(|a| format!("{} {:?}: {}", a.key.id(), a.state, a.message))
        .collect();
    Ok(s)
}
