//! The journal-first runtime around the core.
//!
//! [`Journaled`] stages a batch of inputs (applies it to the core in memory and encodes the
//! journal rows and the projection changes), the batch is committed in one transaction, and only
//! after the commit are the core's actions handed out. If a commit fails, the in-memory core has
//! run ahead of what is durable, so it is rebuilt from the store before anything else happens.
//! [`writer`] runs it as the one task that owns the core, with group commit, staging what
//! arrives while the batch before commits. [`replay`] feeds a journal through a fresh core into
//! projections.

pub mod idempotency;
pub mod replay;
pub mod writer;

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use takt_core::identity::Identities;
use takt_core::{
    Action, Change, ConfigIndex, Core, Input, OutboxEvent, Outcome, PlantConfig, State,
};

use crate::status::Status;
use crate::store::{Batch, JournalEntry, Origin, Store, StoreError, journal_time};
use idempotency::{Keys, Seen};
use writer::SubmitError;

/// How many journal rows a rebuild reads at a time.
const REPLAY_PAGE: i64 = 5_000;

/// A journaled input's id and how the core took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub id: i64,
    pub outcome: Outcome,
    /// Answered from the entry an earlier request with the same idempotency key made; nothing
    /// was journaled this time.
    pub repeat: bool,
}

/// What a submitter hears: its entry, or why it was not journaled.
pub type Answer = Result<Applied, SubmitError>;

/// An input as it reaches the journal: when, what, and who gave it.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub at: DateTime<Utc>,
    pub input: Input,
    pub origin: Origin,
}

impl Submitted {
    /// An input from the plant (no API caller).
    pub fn plant(at: DateTime<Utc>, input: Input) -> Self {
        Self {
            at,
            input,
            origin: Origin::default(),
        }
    }
}

/// An outbox event as the writer announces it after its commit. Its wire form is encoded once,
/// by the first stream client that needs it, for every client: a fan-out to thousands must not
/// encode the same event thousands of times.
#[derive(Debug)]
pub struct Published {
    pub event: OutboxEvent,
    wire: OnceLock<Arc<str>>,
}

impl Published {
    pub fn new(event: OutboxEvent) -> Self {
        Self {
            event,
            wire: OnceLock::new(),
        }
    }

    /// The event as `encode` writes it, encoded on the first call only.
    pub fn wire(&self, encode: impl FnOnce(&OutboxEvent) -> String) -> Arc<str> {
        self.wire
            .get_or_init(|| Arc::from(encode(&self.event)))
            .clone()
    }
}

/// The core plus its durable journal. Owns both: nothing else writes the journal.
#[derive(Debug)]
pub struct Journaled {
    core: Core,
    store: Store,
    cfg: Arc<ConfigIndex>,
    /// The last journal id given out: committed, or staged and committing.
    last_id: i64,
    /// Inputs since the last snapshot was taken.
    since_snapshot: u64,
    snapshot_every: u64,
    /// Idempotency keys of recent API commands.
    keys: Keys,
    /// Whether the core's outbox events are written with the batch (always, but for the
    /// journal benchmark's A/B: see [`Journaled::without_stored_outbox`]).
    store_outbox: bool,
}

/// What a snapshot row holds. The configuration is kept with the state because a state built
/// under one configuration means nothing under another: then the journal is replayed instead.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    config: PlantConfig,
    state: State,
}

impl Snapshot {
    /// Hundreds of kilobytes of JSON: off the writer's path, this runs on a blocking thread.
    fn encode(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|source| StoreError::Encode {
            what: "a snapshot".to_owned(),
            source,
        })
    }
}

/// A snapshot taken at a journal id, to save once that id is durable.
#[derive(Debug)]
pub struct SnapshotDue {
    journal_id: i64,
    snapshot: Snapshot,
}

impl SnapshotDue {
    /// Encodes it on a blocking thread and saves it. The journal is durable either way; a
    /// snapshot that fails only makes the next start replay longer, so failures are logged,
    /// not returned.
    pub async fn save(self, store: &Store) {
        let Self {
            journal_id,
            snapshot,
        } = self;
        let saved = match tokio::task::spawn_blocking(move || snapshot.encode()).await {
            Ok(Ok(json)) => store.save_snapshot(journal_id, json).await,
            Ok(Err(e)) => Err(e),
            Err(e) => {
                tracing::error!(error = %e, journal_id, "snapshot encoding task failed");
                return;
            }
        };
        if let Err(e) = saved {
            tracing::warn!(error = %e, journal_id, "cannot save a snapshot");
        }
    }
}

/// Counts from a rebuild, for logs and `takt replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RebuildStats {
    pub snapshot_id: Option<i64>,
    pub replayed: u64,
    pub last_id: i64,
}

impl Journaled {
    /// Rebuild the core from the latest usable snapshot and the journal after it.
    pub async fn open(
        cfg: Arc<ConfigIndex>,
        store: Store,
        snapshot_every: u64,
    ) -> Result<(Self, RebuildStats), StoreError> {
        let (core, stats) = rebuild(cfg.clone(), &store).await?;
        let keys = Keys::load(&store, Utc::now()).await?;
        Ok((
            Self {
                core,
                store,
                cfg,
                last_id: stats.last_id,
                since_snapshot: stats.replayed,
                snapshot_every,
                keys,
                store_outbox: true,
            },
            stats,
        ))
    }

    /// For the journal benchmark only: the core still numbers and publishes its events, but
    /// their outbox rows are not written, so one run can measure what storing them costs. A
    /// controller running like this would serve streams that cannot resume.
    #[doc(hidden)]
    #[must_use]
    pub fn without_stored_outbox(mut self) -> Self {
        self.store_outbox = false;
        self
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn last_id(&self) -> i64 {
        self.last_id
    }

    /// The status now; only meaningful with nothing staged and uncommitted.
    pub fn status(&self) -> Status {
        Status::of(&self.core, self.last_id)
    }

    /// Apply `batch` to the core in memory and give every input its journal id. Nothing is
    /// durable yet: the caller must [`Staged::commit`] it before releasing its actions, and call
    /// [`Journaled::recover`] if the commit fails (the core is then ahead of the disk).
    pub fn stage(&mut self, batch: Vec<(DateTime<Utc>, Input)>) -> Staged {
        let mut staged = Staged::default();
        let batch = batch
            .into_iter()
            .map(|(at, input)| Submitted::plant(at, input))
            .collect();
        self.stage_onto(&mut staged, batch);
        self.seal(&mut staged);
        staged
    }

    /// Apply `batch` behind what `staged` already holds, so that all of it commits as one
    /// transaction: the writer stages inputs as they arrive while the batch before commits.
    /// [`Journaled::seal`] it before the commit.
    pub fn stage_onto(&mut self, staged: &mut Staged, batch: Vec<Submitted>) {
        staged.answers.reserve(batch.len());
        for Submitted { at, input, origin } in batch {
            match self.keys.check(&origin, &input) {
                Seen::New => {}
                Seen::Repeat { id, outcome } => {
                    staged.answers.push(Ok(Applied {
                        id,
                        outcome,
                        repeat: true,
                    }));
                    continue;
                }
                Seen::Conflict { id } => {
                    staged.answers.push(Err(SubmitError::KeyReused { id }));
                    continue;
                }
            }
            // The core must see exactly the time the journal keeps, or a replay would differ.
            let at = journal_time(at);
            let outcome = self.core.handle(at, &input);
            self.last_id += 1;
            let entry = JournalEntry {
                id: self.last_id,
                at,
                input,
                outcome,
                origin,
            };
            staged.rows.push_entry(&entry);
            self.keys.remember(&entry);
            staged.answers.push(Ok(Applied {
                id: entry.id,
                outcome: entry.outcome,
                repeat: false,
            }));
            self.since_snapshot += 1;
        }
        let mut tokens_changed = false;
        for change in self.core.take_changes() {
            tokens_changed |= matches!(change, Change::ApiToken(_));
            if let Change::Event(event) = &change {
                staged.events.push(Arc::new(Published::new(event.clone())));
                if !self.store_outbox {
                    continue;
                }
            }
            staged.rows.push_change(change);
        }
        if tokens_changed {
            staged.identities = Some(Arc::new(self.core.identities().clone()));
        }
        staged
            .actions
            .extend(std::iter::from_fn(|| self.core.poll_action()));
        // Only cloned here; it is encoded and saved off the writer's path. A snapshot already
        // due in `staged` is superseded: this one is of a later state and becomes durable with
        // the same commit.
        if self.snapshot_every > 0 && self.since_snapshot >= self.snapshot_every {
            self.since_snapshot = 0;
            staged.snapshot = Some(SnapshotDue {
                journal_id: self.last_id,
                snapshot: self.snapshot_of_now(),
            });
        }
        staged.status = None;
    }

    /// Nothing more will be staged onto `staged`: record the status it leaves the plant in.
    /// Separate from staging because the status is a copy of every active alarm, and the writer
    /// may stage onto one batch many times.
    pub fn seal(&self, staged: &mut Staged) {
        staged.status = Some(self.status());
    }

    /// After a failed commit the core has run ahead of what is durable: rebuild it from the store.
    pub async fn recover(&mut self) -> Result<(), StoreError> {
        let (core, stats) = rebuild(self.cfg.clone(), &self.store).await?;
        self.core = core;
        self.last_id = stats.last_id;
        self.since_snapshot = stats.replayed;
        // Keys staged with the failed batch were never journaled.
        self.keys = Keys::load(&self.store, Utc::now()).await?;
        Ok(())
    }

    /// Journal first, then act: stage `batch`, commit it with its projections in one
    /// transaction, and return the outcomes and the actions to release.
    pub async fn apply(
        &mut self,
        batch: Vec<(DateTime<Utc>, Input)>,
    ) -> Result<(Vec<Answer>, Vec<Action>), StoreError> {
        let batch = batch
            .into_iter()
            .map(|(at, input)| Submitted::plant(at, input))
            .collect();
        self.apply_submitted(batch).await
    }

    /// [`Journaled::apply`] for inputs someone gave, each with its [`Origin`].
    pub async fn apply_submitted(
        &mut self,
        batch: Vec<Submitted>,
    ) -> Result<(Vec<Answer>, Vec<Action>), StoreError> {
        let mut staged = Staged::default();
        self.stage_onto(&mut staged, batch);
        self.seal(&mut staged);
        if let Err(e) = staged.commit(&self.store).await {
            tracing::error!(error = %e, "journal commit failed; rebuilding the core from the store");
            self.recover().await?;
            return Err(e);
        }
        if let Some(due) = staged.take_snapshot() {
            due.save(&self.store).await;
        }
        Ok(staged.into_parts())
    }

    /// Save the core's state now; only call it with nothing staged and uncommitted.
    pub async fn snapshot(&mut self) -> Result<(), StoreError> {
        let json = self.snapshot_of_now().encode()?;
        self.store.save_snapshot(self.last_id, json).await?;
        self.since_snapshot = 0;
        Ok(())
    }

    fn snapshot_of_now(&self) -> Snapshot {
        Snapshot {
            config: self.cfg.config.clone(),
            state: self.core.state().clone(),
        }
    }
}

/// A batch applied in memory, waiting to become durable.
#[derive(Debug, Default)]
pub struct Staged {
    /// The journal rows to append and the projection rows to write, encoded as staged.
    rows: Batch,
    /// One per input staged, in order.
    answers: Vec<Answer>,
    actions: Vec<Action>,
    /// The outbox rows this batch writes, to announce once it is durable.
    events: Vec<Arc<Published>>,
    /// The core's state right after this batch, to save once the batch is durable.
    snapshot: Option<SnapshotDue>,
    /// What `/status` shows once this batch is durable; set by [`Journaled::seal`].
    status: Option<Status>,
    /// The tokens as this batch leaves them, if it issued or revoked one.
    identities: Option<Arc<Identities>>,
}

impl Staged {
    /// Journal rows and projection changes in one transaction. The rows are moved into the
    /// transaction: a batch commits once (after a failure the core is rebuilt from the store,
    /// not the batch retried).
    pub async fn commit(&mut self, store: &Store) -> Result<(), StoreError> {
        store.commit_batch(std::mem::take(&mut self.rows)).await
    }

    /// The snapshot due with this batch, if any: only after [`Staged::commit`]. Saving it is
    /// the caller's to schedule: it is big, and the batch's actions need not wait for it.
    pub fn take_snapshot(&mut self) -> Option<SnapshotDue> {
        self.snapshot.take()
    }

    /// The tokens to authenticate against from now on, if this batch changed them: only after
    /// [`Staged::commit`].
    pub fn take_identities(&mut self) -> Option<Arc<Identities>> {
        self.identities.take()
    }

    /// The outbox events to announce: only after [`Staged::commit`].
    pub fn take_events(&mut self) -> Vec<Arc<Published>> {
        std::mem::take(&mut self.events)
    }

    /// The outcomes to answer and the actions to release: only after [`Staged::commit`].
    pub fn into_parts(self) -> (Vec<Answer>, Vec<Action>) {
        (self.answers, self.actions)
    }

    /// The status to publish: only after [`Staged::commit`]; `None` if it was never sealed.
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// How many inputs it holds.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
}

/// The core as of the end of the journal: from the latest snapshot taken under the same
/// configuration, or from nothing, then every journal row after it in order.
pub async fn rebuild(
    cfg: Arc<ConfigIndex>,
    store: &Store,
) -> Result<(Core, RebuildStats), StoreError> {
    let mut stats = RebuildStats::default();
    let mut core = Core::new(cfg.clone());
    if let Some((id, json)) = store.latest_snapshot().await? {
        match serde_json::from_value::<Snapshot>(json) {
            Ok(snap) if snap.config == cfg.config => {
                core = Core::restore(cfg.clone(), snap.state);
                stats.snapshot_id = Some(id);
                stats.last_id = id;
            }
            Ok(_) => tracing::info!(
                id,
                "configuration changed since the snapshot; replaying the whole journal"
            ),
            Err(e) => {
                tracing::warn!(id, error = %e, "snapshot unreadable; replaying the whole journal");
            }
        }
    }
    loop {
        let page = store.journal_after(stats.last_id, REPLAY_PAGE).await?;
        let Some(last) = page.last() else { break };
        stats.last_id = last.id;
        for entry in page {
            core.handle(entry.at, &entry.input);
            stats.replayed += 1;
        }
        // Replayed inputs were acted on when they first happened; only the state matters now.
        drop(core.take_changes());
        while core.poll_action().is_some() {}
    }
    Ok((core, stats))
}
