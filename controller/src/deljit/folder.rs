//! The DELJIT drop folder: each supplier's call events as interchange files in
//! `<deljit_dir>/<tenant>/`, for partners whose EDI gateway picks files up.
//!
//! A file is named for the last event it covers (`DELJIT-<tenant>-<event id, 12 digits>.edi`),
//! written beside its name, fsynced and renamed into place, so a gateway never picks up half a
//! file and the folder itself is the cursor: after a restart the next file starts after the
//! highest id already there. Events are read from the outbox by that cursor, so nothing
//! committed is skipped and nothing is written twice.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use takt_core::ConfigIndex;
use tokio::task::JoinHandle;

use super::{CallEvent, interchange};
use crate::api::events::EventView;
use crate::runtime::writer::Handle;
use crate::store::{EventReader, Store};

/// Looked at after every commit that published events, and at least this often.
const AT_LEAST_EVERY: Duration = Duration::from_secs(5);
/// Events read per page.
const PAGE: u32 = 1_000;

/// Starts the task that keeps every supplier's folder up to date; it runs until aborted.
pub fn spawn(
    store: Store,
    plant: Arc<ConfigIndex>,
    writer: &Handle,
    dir: PathBuf,
) -> JoinHandle<()> {
    let mut published = writer.subscribe_events();
    tokio::spawn(async move {
        let mut cursors: Vec<(String, PathBuf, Option<i64>)> = plant
            .config
            .suppliers
            .iter()
            .map(|s| (s.id.clone(), dir.join(&s.id), None))
            .collect();
        loop {
            for (tenant, folder, cursor) in &mut cursors {
                if let Err(e) = catch_up(&store, &plant, tenant, folder, cursor).await {
                    tracing::warn!(tenant = %tenant, folder = %folder.display(), error = %e, "cannot write DELJIT files; retrying");
                }
            }
            // Woken by the next commit's events, or by the clock; a lagging receiver only
            // means more to read, which the cursor finds.
            let _ = tokio::time::timeout(AT_LEAST_EVERY, published.recv()).await;
        }
    })
}

/// Writes one file with the tenant's call events after its cursor, if there are any.
async fn catch_up(
    store: &Store,
    plant: &ConfigIndex,
    tenant: &str,
    folder: &Path,
    cursor: &mut Option<i64>,
) -> anyhow::Result<()> {
    let mut after = match *cursor {
        Some(after) => after,
        None => {
            tokio::fs::create_dir_all(folder).await?;
            let found = last_written(folder).await?;
            *cursor = Some(found);
            found
        }
    };
    let mut events = Vec::new();
    loop {
        let page: Vec<EventView> = store
            .events_after(&EventReader::Tenant(tenant.to_owned()), after, PAGE)
            .await?;
        let full = page.len() == PAGE as usize;
        for e in page {
            after = e.id;
            if let Ok(event) = serde_json::from_value(e.payload) {
                events.push(CallEvent {
                    id: e.id,
                    at: e.at,
                    event,
                });
            }
        }
        if !full {
            break;
        }
    }
    if after == cursor.unwrap_or(0) {
        return Ok(());
    }
    let made = interchange(plant, tenant, &format!("T{after}"), Utc::now(), &events)?;
    if made.messages > 0 {
        let name = folder.join(format!("DELJIT-{tenant}-{after:012}.edi"));
        let synced = write_durably(&name, made.bytes).await?;
        tracing::info!(tenant, file = %name.display(), messages = made.messages, "DELJIT written");
        if let Err(e) = synced {
            // The file is in place: the cursor moves on, or the next pass would write its
            // messages again under a later name.
            tracing::warn!(folder = %folder.display(), error = %e, "cannot sync the DELJIT folder");
        }
    }
    // Past events that carry no call too: the next file starts after them. (A restart starts
    // again after the last file and reads them once more, writing nothing for them.)
    *cursor = Some(after);
    Ok(())
}

/// The highest event id a file in `folder` covers; 0 when there is none.
async fn last_written(folder: &Path) -> anyhow::Result<i64> {
    let mut highest = 0;
    let mut entries = tokio::fs::read_dir(folder).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|n| n.strip_suffix(".edi"))
            .and_then(|n| n.rsplit('-').next())
            .and_then(|id| id.parse::<i64>().ok());
        highest = highest.max(id.unwrap_or(0));
    }
    Ok(highest)
}

/// `bytes` at `path` whole or not at all: written beside it, fsynced, renamed. `Err` if the file
/// is not in place; `Ok(Err)` if it is but syncing its folder failed.
async fn write_durably(path: &Path, bytes: Vec<u8>) -> anyhow::Result<std::io::Result<()>> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<std::io::Result<()>> {
        use std::io::Write;
        let partial = path.with_extension("edi.partial");
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)?;
        let parent = path.parent().unwrap_or(Path::new("."));
        Ok(std::fs::File::open(parent).and_then(|dir| dir.sync_all()))
    })
    .await?
}
