//! The durable store: the journal of inputs, the projections of the core's entities, snapshots.
//!
//! SQLite by default (one file, zero set-up), PostgreSQL when the URL says so. One [`Store`]
//! type serves both; the SQL is written once (`ops.rs`) and the few per-backend details live in
//! `dialect.rs` and the two migration folders. A SQLite file's commits and snapshots are the
//! exception: they run on a thread of their own (`sqlite_writer.rs`), on the same SQL text.
//!
//! Journal first: [`Store::commit`] writes a batch of journal entries together with every
//! projection row they changed, in one transaction, and returns only once it is durable
//! (SQLite runs with `synchronous=FULL`). Readers page the journal by id
//! ([`Store::journal_after`]), which is why ids must only ever grow.

mod batch;
mod dialect;
mod ops;
mod reads;
mod rows;
mod sqlite_writer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use takt_core::{Change, Input, Outcome};

pub use batch::Batch;
pub use ops::SNAPSHOTS_KEPT;
use reads::Filter;
pub use reads::{EventReader, PageQuery, Projection, TenantProjection};
use rows::Val;
use serde::de::DeserializeOwned;
use sqlite_writer::SqliteWriter;
use takt_core::identity::ApiToken;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a SQLite connection waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One journaled input: when it was applied, what it was, and how the core took it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    /// Assigned by the runtime; strictly increasing.
    pub id: i64,
    /// The `now` the core was given. Must be whole microseconds (see [`journal_time`]).
    pub at: DateTime<Utc>,
    /// Kept exactly, whatever characters it holds.
    pub input: Input,
    /// Its reason is stored as text with U+0000 replaced by U+FFFD (PostgreSQL cannot hold it).
    pub outcome: Outcome,
    /// Who gave it, for inputs that came through the API; empty for the plant's own.
    pub origin: Origin,
}

/// Who gave an input and on what terms: journaled with it, outside the core (which decides
/// nothing by who asked; the API checks that before the input is submitted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The API caller: the token's label and lookup id.
    pub actor: Option<String>,
    /// The reason the caller gave (required for overrides).
    pub note: Option<String>,
    /// The client's `Idempotency-Key`: a retry with the same key gets this entry's answer.
    pub idempotency_key: Option<String>,
}

/// `t` at the journal's resolution (microseconds, PostgreSQL's `TIMESTAMPTZ`).
///
/// The runtime must pass the core this value, not the raw clock: replay feeds the core the
/// stored time, and a time the store cannot keep exactly would make replay diverge. This is why
/// [`Store::commit`] refuses an entry whose time has finer digits, on both backends.
pub fn journal_time(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL `{url}` is neither `sqlite:…`, `postgres://…` nor a file path")]
    UnsupportedUrl { url: String },
    #[error("cannot create directory {} for the SQLite store", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the {backend} store at `{target}`")]
    Open {
        backend: &'static str,
        target: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot migrate the {backend} store schema")]
    Migrate {
        backend: &'static str,
        #[source]
        source: MigrateError,
    },
    #[error("cannot commit {} to the {backend} store", batch(.first, .last, .changes))]
    Commit {
        backend: &'static str,
        first: Option<i64>,
        last: Option<i64>,
        changes: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "journal entry {id} does not follow journal entry {previous}: journal ids must be strictly increasing"
    )]
    JournalOrder { id: i64, previous: i64 },
    #[error(
        "journal entry {id} has time {at} with sub-microsecond digits, which the store cannot keep; pass the core `store::journal_time(now)`"
    )]
    TimePrecision { id: i64, at: DateTime<Utc> },
    #[error("{backend} store: cannot {what}")]
    Query {
        backend: &'static str,
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot save the snapshot at journal entry {journal_id}")]
    Snapshot {
        journal_id: i64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot checkpoint the SQLite WAL")]
    Checkpoint {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot prune old events from the outbox")]
    Prune {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot encode {what} for the store")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} is {value}, beyond the store's 64-bit signed integers")]
    OutOfRange { what: &'static str, value: u64 },
    #[error("{cursor:?} is not a cursor of this list")]
    BadCursor { cursor: String },
    #[error("cannot decode {what} read from the store")]
    Decode {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn batch(first: &Option<i64>, last: &Option<i64>, changes: &usize) -> String {
    match (first, last) {
        (Some(first), Some(last)) if first == last => {
            format!("journal entry {first} with {changes} projection changes")
        }
        (Some(first), Some(last)) => {
            format!("journal entries {first}..={last} with {changes} projection changes")
        }
        _ => format!("{changes} projection changes"),
    }
}

/// The database behind a [`Store`]. Cloning shares the connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Backend,
    /// SQLite files only: the background checkpointer, stopped when the last clone goes.
    _checkpointer: Option<Arc<AbortOnDrop>>,
}

/// Aborts a background task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often the background checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL size (in 4 KiB frames: 1 GiB) past which the writer's connection checkpoints too, so that
/// the WAL starts over. That checkpoint and the commit after it hold the commits up for ~10–15
/// ms, so it is kept for when the WAL would otherwise cost more: at the plant's rates the
/// background checkpoint completes and SQLite starts the WAL over by itself; only sustained
/// bursts (20,000 inputs/s wrote ~135 MB of WAL a second) get here.
const WAL_RESTART_FRAMES: i64 = 262_144;

/// Checkpoint the WAL off the writer's path. With SQLite's automatic checkpoint, the commit
/// that crosses the threshold copies megabytes into the database file and fsyncs it before it
/// returns: that one commit's inputs wait tens of milliseconds. A PASSIVE checkpoint on another
/// connection does the same work beside the writer without blocking it.
///
/// But under sustained load it never catches up: the writer commits again before it ends, so
/// the WAL is never wholly copied and SQLite never starts it over. It grew by ~135 MB/s at
/// 20,000 inputs/s, and every page lookup searches the WAL's index, so commits slowed down
/// (p99 over 190 ms after 40 s at that rate). So once the WAL is past [`WAL_RESTART_FRAMES`],
/// the writer's own connection copies the little written since the background passes (between
/// two commits, nothing else writing), and the next commit starts the WAL over.
fn spawn_checkpointer(pool: SqlitePool, writer: Arc<SqliteWriter>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if pool.is_closed() {
                break;
            }
            let checkpointed = match passive_checkpoint(&pool).await {
                Ok(frames) if frames > WAL_RESTART_FRAMES => restart_wal(&pool, &writer).await,
                Ok(_) => Ok(()),
                Err(e) => Err(checkpoint_failed(e)),
            };
            if let Err(e) = checkpointed {
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
            }
        }
    }))
}

/// One PASSIVE checkpoint on a background connection; returns how many frames the WAL holds.
async fn passive_checkpoint(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    // (busy, frames in the WAL, frames copied into the database)
    let (_, frames, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    Ok(frames)
}

/// Restarts the WAL under sustained load: background passes again while the last one had much
/// to copy (each copies what was committed while the one before ran, so they get shorter), then
/// the writer's own checkpoint, which holds up the commits, with only the last short pass's
/// worth left to copy.
async fn restart_wal(pool: &SqlitePool, writer: &SqliteWriter) -> Result<(), StoreError> {
    /// A pass this short leaves the writer little (~1 ms of commits) to copy.
    const SHORT: Duration = Duration::from_millis(1);
    const PASSES: usize = 4;
    for _ in 0..PASSES {
        let started = std::time::Instant::now();
        passive_checkpoint(pool).await.map_err(checkpoint_failed)?;
        if started.elapsed() <= SHORT {
            break;
        }
    }
    writer.checkpoint().await
}

fn checkpoint_failed(source: sqlx::Error) -> StoreError {
    StoreError::Query {
        backend: "sqlite",
        what: "checkpoint the WAL",
        source,
    }
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite {
        /// Reads, migrations and `takt replay`'s reset; for an in-memory database, the one
        /// connection it lives in, which then takes the commits too.
        pool: SqlitePool,
        /// A database file's commits, snapshots and WAL restarts (see `sqlite_writer`).
        writer: Option<Arc<SqliteWriter>>,
    },
    Postgres(PgPool),
}

/// Runs the same generic operation on whichever pool the store has.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $op:expr) => {
        match &$store.pool {
            Backend::Sqlite { pool: $pool, .. } => $op,
            Backend::Postgres($pool) => $op,
        }
    };
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `url`: `sqlite://path`,
    /// `sqlite:path`, `sqlite::memory:`, a plain file path, or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url).await
        } else if url.starts_with("sqlite:") || !url.contains("://") {
            Self::open_sqlite(url).await
        } else {
            Err(StoreError::UnsupportedUrl { url: redact(url) })
        }
    }

    async fn open_sqlite(url: &str) -> Result<Store, StoreError> {
        let failed = |source: sqlx::Error| StoreError::Open {
            backend: "sqlite",
            target: url.to_owned(),
            source: Box::new(source),
        };
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map_err(failed)?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory
            && let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        }
        let options = options
            .create_if_missing(true)
            // WAL: readers (API, streams) never block the writer and vice versa.
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit survives power loss, not only a process crash; journal first
            // means "durable before acting".
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            // Checkpoints run in the background (see `spawn_checkpointer`), not in commits.
            .pragma("wal_autocheckpoint", if in_memory { "1000" } else { "0" })
            // Statement journals (kept by every multi-row upsert inside a transaction, to undo
            // just that statement) and temporary b-trees in memory, not in temporary files:
            // otherwise each statement of a commit costs file writes. Durability is untouched;
            // the WAL still holds every commit.
            .pragma("temp_store", "MEMORY")
            .foreign_keys(true);
        // A connection to a file in this process cannot have gone away: the ping sqlx sends
        // before lending one out is a round trip to SQLite's thread on every commit for nothing.
        let pool = |connections: u32| {
            SqlitePoolOptions::new()
                .max_connections(connections)
                .test_before_acquire(false)
        };
        let pool = if in_memory {
            // An in-memory database lives as long as its one connection: never let it go.
            pool(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool(4)
        }
        .connect_with(options.clone())
        .await
        .map_err(failed)?;
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: "sqlite",
                source,
            })?;
        let (writer, checkpointer) = if in_memory {
            (None, None)
        } else {
            let writer = Arc::new(SqliteWriter::open(options.get_filename())?);
            let checkpointer = spawn_checkpointer(pool.clone(), writer.clone());
            (Some(writer), Some(Arc::new(checkpointer)))
        };
        Ok(Store {
            pool: Backend::Sqlite { pool, writer },
            _checkpointer: checkpointer,
        })
    }

    async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let failed = |source: sqlx::Error| StoreError::Open {
            backend: "postgres",
            target: redact(url),
            source: Box::new(source),
        };
        let options = PgConnectOptions::from_str(url).map_err(failed)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(failed)?;
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: "postgres",
                source,
            })?;
        Ok(Store {
            pool: Backend::Postgres(pool),
            _checkpointer: None,
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection; later calls fail. Waits for connections in use to come back.
    pub async fn close(&self) {
        if let Some(writer) = self.sqlite_writer() {
            writer.close().await;
        }
        on_pool!(self, pool => pool.close().await);
    }

    /// A SQLite file's writer thread, which takes its commits and snapshots.
    fn sqlite_writer(&self) -> Option<&SqliteWriter> {
        match &self.pool {
            Backend::Sqlite { writer, .. } => writer.as_deref(),
            Backend::Postgres(_) => None,
        }
    }

    /// In one transaction: appends `entries` (ids strictly increasing and above every id
    /// already journaled) and upserts the projection rows of `changes`, the last change to an
    /// entity winning. Either all of it is durable when this returns `Ok`, or none of it is.
    pub async fn commit(
        &self,
        entries: &[JournalEntry],
        changes: &[Change],
    ) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        entries.iter().for_each(|e| batch.push_entry(e));
        changes.iter().for_each(|c| batch.push_change(c.clone()));
        self.commit_batch(batch).await
    }

    /// [`Store::commit`] of a batch encoded as it was staged (see [`Batch`]).
    pub async fn commit_batch(&self, batch: Batch) -> Result<(), StoreError> {
        match self.sqlite_writer() {
            Some(writer) => writer.commit(batch).await,
            None => on_pool!(self, pool => ops::commit(pool, batch).await),
        }
    }

    /// The highest journal id, 0 when the journal is empty.
    pub async fn last_journal_id(&self) -> Result<i64, StoreError> {
        on_pool!(self, pool => ops::last_journal_id(pool).await)
    }

    /// Journal entries with id > `after`, ascending, at most `limit` of them (replay and
    /// streams read the journal in pages by id).
    pub async fn journal_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        on_pool!(self, pool => ops::journal_after(pool, after, limit).await)
    }

    /// Journal entries made since `since` that carry an idempotency key, ascending: what the
    /// writer must remember to answer a retried API command from the entry it already made.
    pub async fn journal_keyed_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        on_pool!(self, pool => ops::journal_keyed_since(pool, since).await)
    }

    /// Stores the core state as of journal entry `journal_id`, as JSON text (replacing one stored
    /// for the same id) and prunes all but the newest [`SNAPSHOTS_KEPT`].
    pub async fn save_snapshot(&self, journal_id: i64, state: String) -> Result<(), StoreError> {
        match self.sqlite_writer() {
            Some(writer) => writer.save_snapshot(journal_id, state).await,
            None => on_pool!(self, pool => ops::save_snapshot(pool, journal_id, state).await),
        }
    }

    /// The newest snapshot: the journal id it was taken at and the state.
    pub async fn latest_snapshot(&self) -> Result<Option<(i64, serde_json::Value)>, StoreError> {
        on_pool!(self, pool => ops::latest_snapshot(pool).await)
    }

    /// Journal ids of the stored snapshots, ascending.
    pub async fn snapshot_ids(&self) -> Result<Vec<i64>, StoreError> {
        on_pool!(self, pool => ops::snapshot_ids(pool).await)
    }

    /// Every projection table (`vehicles`, `calls`, `racks`, `tasks`, `alarms`, `lines`,
    /// `coverage`, `api_tokens`, `events`) as JSON objects keyed by column, sorted by primary
    /// key. Both backends give the same JSON for the same commits: times as RFC 3339 UTC
    /// strings, numbers as numbers.
    pub async fn dump_projections(
        &self,
    ) -> Result<BTreeMap<String, Vec<serde_json::Value>>, StoreError> {
        on_pool!(self, pool => ops::dump_projections(pool).await)
    }

    /// One page of a projection, for plant users: every row, whoever it concerns. Tenants never
    /// read through this; their reads take the tenant (see [`reads`]).
    pub async fn plant_page<T: DeserializeOwned>(
        &self,
        projection: Projection,
        page: &PageQuery,
    ) -> Result<Vec<T>, StoreError> {
        let table = projection.table();
        on_pool!(self, pool => reads::select(pool, table, &[], page).await)
    }

    /// Coverage of `line`'s families, by family (the cursor is a family id), for plant users.
    pub async fn line_coverage<T: DeserializeOwned>(
        &self,
        line: &str,
        page: &PageQuery,
    ) -> Result<Vec<T>, StoreError> {
        let filter = [Filter::Eq("line", Val::Text(Some(line.to_owned())))];
        on_pool!(self, pool => reads::select(pool, &rows::COVERAGE, &filter, page).await)
    }

    /// The row of a projection with primary key `key`, for plant users.
    pub async fn plant_row<T: DeserializeOwned>(
        &self,
        projection: Projection,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let table = projection.table();
        self.first_row(table, &[reads::key_is(table, key)?]).await
    }

    /// The first row of `table` that passes every filter, in key order.
    async fn first_row<T: DeserializeOwned>(
        &self,
        table: &'static rows::Table,
        filter: &[Filter],
    ) -> Result<Option<T>, StoreError> {
        let page = PageQuery {
            after: None,
            limit: 1,
        };
        let found: Vec<T> =
            on_pool!(self, pool => reads::select(pool, table, filter, &page).await)?;
        Ok(found.into_iter().next())
    }

    /// One page of `tenant`'s own rows of `projection`, by key. A tenant's read: the tenant is
    /// not optional, and the filter on it is here, not in the handler.
    pub async fn tenant_page<T: DeserializeOwned>(
        &self,
        projection: TenantProjection,
        tenant: &str,
        page: &PageQuery,
    ) -> Result<Vec<T>, StoreError> {
        let filter = [tenant_is(projection.tenant_column(), tenant)];
        let table = projection.table();
        on_pool!(self, pool => reads::select(pool, table, &filter, page).await)
    }

    /// `tenant`'s own row of `projection` with key `key`; `None` for another's as for none.
    pub async fn tenant_row<T: DeserializeOwned>(
        &self,
        projection: TenantProjection,
        tenant: &str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let table = projection.table();
        let filter = [
            tenant_is(projection.tenant_column(), tenant),
            reads::key_is(table, key)?,
        ];
        self.first_row(table, &filter).await
    }

    /// `tenant`'s forecast demand needed in `[from, to)`, by line, family, part and hour.
    pub async fn tenant_demand<T: DeserializeOwned>(
        &self,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<T>, StoreError> {
        self.tenant_window(&rows::DEMAND, "hour", tenant, from, to)
            .await
    }

    /// `tenant`'s calls due at their install station in `[from, to)`, by id.
    pub async fn tenant_calls_due<T: DeserializeOwned>(
        &self,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<T>, StoreError> {
        self.tenant_window(&rows::CALLS, "due_at", tenant, from, to)
            .await
    }

    /// Every row of `table` that is `tenant`'s with `column` in `[from, to)`.
    async fn tenant_window<T: DeserializeOwned>(
        &self,
        table: &'static rows::Table,
        column: &'static str,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<T>, StoreError> {
        let filter = [
            tenant_is("supplier", tenant),
            Filter::AtLeast(column, Val::Time(Some(from))),
            Filter::Below(column, Val::Time(Some(to))),
        ];
        let all = PageQuery {
            after: None,
            limit: u32::MAX,
        };
        on_pool!(self, pool => reads::select(pool, table, &filter, &all).await)
    }

    /// Outbox events after id `after`, ascending, at most `limit`: every event for the plant,
    /// only its own for a tenant.
    pub async fn events_after<T: DeserializeOwned>(
        &self,
        reader: &EventReader,
        after: i64,
        limit: u32,
    ) -> Result<Vec<T>, StoreError> {
        let filters = match reader {
            EventReader::Plant => Vec::new(),
            EventReader::Tenant(tenant) => vec![tenant_is("tenant", tenant)],
        };
        let page = PageQuery {
            after: Some(after.to_string()),
            limit,
        };
        on_pool!(self, pool => reads::select(pool, &rows::EVENTS, &filters, &page).await)
    }

    /// Deletes the outbox events older than `before`, in short chunks that let commits in
    /// between, keeping the newest event whatever its age; how many went.
    pub async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = match self.sqlite_writer() {
                Some(writer) => writer.prune_events(before).await?,
                None => on_pool!(self, pool => ops::prune_events(pool, before).await)?,
            };
            total += deleted;
            if deleted < ops::EVENTS_PRUNE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    /// The id of the oldest event the outbox keeps: a cursor below it, less one, has lost
    /// events to [`Store::prune_events`]. `None`: no event yet.
    pub async fn oldest_event_id(&self) -> Result<Option<i64>, StoreError> {
        on_pool!(self, pool => ops::oldest_event_id(pool).await)
    }

    /// The token with lookup id `id`, revoked or not.
    pub async fn api_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        let filter = [Filter::Eq("id", Val::Text(Some(id.to_owned())))];
        self.first_row(&rows::API_TOKENS, &filter).await
    }

    /// A page of every token issued, revoked ones included (their hashes are no secret but are
    /// not shown either: see the API's view).
    pub async fn api_tokens(&self, page: &PageQuery) -> Result<Vec<ApiToken>, StoreError> {
        on_pool!(self, pool => reads::select(pool, &rows::API_TOKENS, &[], page).await)
    }

    /// Empties the projections and snapshots, keeping the journal, so that `takt replay` can
    /// rebuild them from it.
    pub async fn reset_projections(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => ops::reset_projections(pool).await)
    }
}

/// The filter of every tenant's read: rows of `column` equal to the tenant. A NULL there (the
/// plant's own rows) never equals anything, so no tenant reads them.
fn tenant_is(column: &'static str, tenant: &str) -> Filter {
    Filter::Eq(column, Val::Text(Some(tenant.to_owned())))
}

/// `url` without its password, for error messages and logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://takt:s3cr3t@db:5432/takt"),
            "postgres://takt:***@db:5432/takt"
        );
        assert_eq!(
            redact("postgres://postgres@db/t"),
            "postgres://postgres@db/t"
        );
        assert_eq!(redact("data/takt.db"), "data/takt.db");
    }

    /// Under load the background checkpoint never copies the whole WAL, so SQLite never starts
    /// it over; after the writer's own checkpoint the next commits must write at the WAL's
    /// beginning again instead of growing the file.
    #[tokio::test]
    async fn the_writer_checkpoint_lets_the_wal_start_over() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = dir.path().join("takt.db");
        let store = Store::open(&db.display().to_string()).await.expect("open");
        let writer = store
            .sqlite_writer()
            .expect("a SQLite file store has its writer thread");
        let at = journal_time(Utc::now());
        let tick = |id| JournalEntry {
            id,
            at,
            input: Input::TICK,
            outcome: Outcome::Applied,
            origin: Origin::default(),
        };
        let wal_bytes = || std::fs::metadata(dir.path().join("takt.db-wal")).map(|m| m.len());
        for id in 1..=200 {
            store.commit(&[tick(id)], &[]).await.expect("commit");
        }
        let grown = wal_bytes().expect("the WAL exists");

        writer.checkpoint().await.expect("checkpoint");
        for id in 201..=300 {
            store.commit(&[tick(id)], &[]).await.expect("commit");
        }
        assert_eq!(
            wal_bytes().expect("the WAL exists"),
            grown,
            "100 commits after the checkpoint fit where 200 were: the WAL started over"
        );
        assert_eq!(store.last_journal_id().await.expect("last id"), 300);
        store.close().await;
    }

    #[test]
    fn journal_time_keeps_microseconds() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("valid time");
        assert_eq!(journal_time(t).timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(journal_time(journal_time(t)), journal_time(t));
    }
}
