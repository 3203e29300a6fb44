//! Outbox retention: events older than `controller.outbox_keep_hours` are deleted, at start and
//! then every [`PRUNE_EVERY`], in short chunks that commits pass between. A stream client whose
//! cursor falls below what is kept is told so (`410 Gone`) instead of being sent a gap.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tokio::task::JoinHandle;

use crate::store::Store;

/// How often old events are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Starts the pruning task; it runs until aborted.
pub fn spawn(store: Store, keep_hours: u64) -> JoinHandle<()> {
    let keep = i64::try_from(keep_hours)
        .ok()
        .and_then(TimeDelta::try_hours)
        .unwrap_or(TimeDelta::MAX);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            // A horizon before the calendar began keeps everything.
            let Some(before) = Utc::now().checked_sub_signed(keep) else {
                continue;
            };
            match store.prune_events(before).await {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(deleted, %before, "old events pruned from the outbox");
                }
                Err(e) => tracing::warn!(error = %e, "cannot prune the outbox; retrying later"),
            }
        }
    })
}
