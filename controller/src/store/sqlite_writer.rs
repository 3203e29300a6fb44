//! SQLite's commit path for a database file: one thread owning one connection, with each
//! table's upsert prepared once, so a commit is one hand-over to that thread and then a bind and
//! a step per row.
//!
//! Everything else in the store runs on sqlx, which takes every statement to its connection's
//! thread and back (100–170 µs on the bench VM). A commit could only afford a few statements
//! that way, so its rows travelled packed in one JSON value per table that SQLite unpacked
//! column by column: on the journal benchmark that unpacking was 60 % of SQLite's time, and
//! SQLite's thread is the one every commit waits for. Snapshots and WAL restarts run here too,
//! between commits; readers, migrations, in-memory databases and PostgreSQL stay on sqlx. rusqlite links the same `libsqlite3-sys` as sqlx, so
//! the process holds one SQLite and the two connections lock the file against each other as
//! any two connections do.

use std::path::Path;
use std::sync::{Mutex, PoisonError, mpsc};

use chrono::Utc;
use rusqlite::types::{ToSql, ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use super::batch::Batch;
use super::ops::{
    EVENTS_PRUNE, EVENTS_PRUNE_CHUNK, JOURNAL_CHECK_HEAD, JOURNAL_COLUMNS, JOURNAL_INSERT_HEAD,
    SNAPSHOT_INSERT_HEAD, SNAPSHOT_PRUNE_HEAD, SNAPSHOT_UPSERT_TAIL, SNAPSHOTS_KEPT,
};
use super::rows::{TABLE_COUNT, TABLES, Val, table_index, time_text};
use super::{SQLITE_BUSY_TIMEOUT, StoreError, journal_time};

/// Every statement the thread runs, written out once when it starts: sqlite's `?N`
/// placeholders on the SQL `ops` shares with the sqlx path.
struct Statements {
    /// Per table, in `TABLES` order.
    upserts: [String; TABLE_COUNT],
    journal_insert: String,
    journal_check: String,
    snapshot_insert: String,
    snapshot_prune: String,
    events_prune: String,
}

impl Statements {
    fn new() -> Self {
        let values = |n: usize| {
            let params: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
            format!("VALUES ({})", params.join(", "))
        };
        Self {
            upserts: std::array::from_fn(|i| {
                let table = TABLES[i];
                format!(
                    "{}{}{}",
                    table.insert_head(),
                    values(table.columns.len()),
                    table.upsert_tail()
                )
            }),
            journal_insert: format!("{JOURNAL_INSERT_HEAD}{}", values(JOURNAL_COLUMNS)),
            journal_check: format!("{JOURNAL_CHECK_HEAD}?1"),
            snapshot_insert: format!("{SNAPSHOT_INSERT_HEAD}{}{SNAPSHOT_UPSERT_TAIL}", values(3)),
            snapshot_prune: format!("{SNAPSHOT_PRUNE_HEAD}?1)"),
            events_prune: format!(
                "{}?1{}?2{}",
                EVENTS_PRUNE[0], EVENTS_PRUNE[1], EVENTS_PRUNE[2]
            ),
        }
    }
}

const CLOSED: &str = "the store is closed";

/// The writer thread's door. Dropping it (or [`SqliteWriter::close`]) ends the thread once the
/// commits already handed over are done.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    /// Resolves when the thread has closed its connection.
    closed: Mutex<Option<oneshot::Receiver<()>>>,
}

/// What the thread does, one at a time and in the order handed over.
enum Work {
    Commit(Box<Batch>),
    /// A snapshot row, in a transaction of its own: saved here rather than on sqlx's connection,
    /// where it held the write lock for all its round trips while every commit waited.
    Snapshot {
        journal_id: i64,
        state: String,
    },
    /// A PASSIVE checkpoint on this connection, between commits (see `spawn_checkpointer`).
    Checkpoint,
    /// One chunk of old outbox events deleted, between commits; how many comes back in it.
    PruneEvents {
        before: chrono::DateTime<Utc>,
        deleted: u64,
    },
}

struct Job {
    work: Work,
    /// The answer, and the work handed back: freeing a commit's thousands of rows is left to
    /// the async side, off the one thread every commit waits for.
    done: oneshot::Sender<(Result<(), StoreError>, Work)>,
}

impl SqliteWriter {
    /// Opens a connection to the (already migrated) database file and starts its thread.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let failed = |source: rusqlite::Error| open_failed(path, source);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(failed)?;
        conn.busy_timeout(SQLITE_BUSY_TIMEOUT).map_err(failed)?;
        // The same settings as the sqlx connections (`Store::open_sqlite`), which matter here
        // most: `synchronous` and `wal_autocheckpoint` are per connection.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY; \
             PRAGMA foreign_keys = ON;",
        )
        .map_err(failed)?;
        let sql = Statements::new();
        let (jobs, queue) = mpsc::channel::<Job>();
        let (closing, closed) = oneshot::channel();
        std::thread::Builder::new()
            .name("takt-sqlite-writer".to_owned())
            .spawn(move || {
                let mut conn = conn;
                for Job { mut work, done } in queue {
                    let result = match &mut work {
                        Work::Commit(batch) => commit(&mut conn, &sql, batch),
                        Work::Snapshot { journal_id, state } => {
                            save_snapshot(&mut conn, &sql, *journal_id, state)
                        }
                        Work::Checkpoint => checkpoint(&conn),
                        Work::PruneEvents { before, deleted } => {
                            prune_events(&conn, &sql, *before).map(|n| *deleted = n)
                        }
                    };
                    let _ = done.send((result, work));
                }
                drop(conn);
                let _ = closing.send(());
            })
            .map_err(|source| open_failed(path, source))?;
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
            closed: Mutex::new(Some(closed)),
        })
    }

    pub(crate) async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let span = batch.span();
        self.run(Work::Commit(Box::new(batch)), || {
            span.failed("sqlite", CLOSED)
        })
        .await
    }

    /// Saves a snapshot and prunes the old ones, as `ops::save_snapshot` does on sqlx.
    pub(crate) async fn save_snapshot(
        &self,
        journal_id: i64,
        state: String,
    ) -> Result<(), StoreError> {
        self.run(Work::Snapshot { journal_id, state }, || {
            StoreError::Snapshot {
                journal_id,
                source: CLOSED.into(),
            }
        })
        .await
    }

    /// Copies what the background checkpoint left in the WAL; see `spawn_checkpointer`.
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        self.run(Work::Checkpoint, || StoreError::Checkpoint {
            source: CLOSED.into(),
        })
        .await
    }

    /// Deletes one chunk of outbox events older than `before`, as `ops::prune_events` does on
    /// sqlx; how many.
    pub(crate) async fn prune_events(
        &self,
        before: chrono::DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let closed = || StoreError::Prune {
            source: CLOSED.into(),
        };
        match self
            .hand_over(Work::PruneEvents { before, deleted: 0 }, closed)
            .await?
        {
            (Ok(()), Work::PruneEvents { deleted, .. }) => Ok(deleted),
            (Ok(()), _) => Ok(0),
            (Err(e), _) => Err(e),
        }
    }

    async fn run(&self, work: Work, closed: impl Fn() -> StoreError) -> Result<(), StoreError> {
        self.hand_over(work, closed).await?.0
    }

    /// Hands `work` to the thread; its answer and the work back.
    async fn hand_over(
        &self,
        work: Work,
        closed: impl Fn() -> StoreError,
    ) -> Result<(Result<(), StoreError>, Work), StoreError> {
        let (done, result) = oneshot::channel();
        let sent = match &*self.jobs.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(jobs) => jobs.send(Job { work, done }).is_ok(),
            None => false,
        };
        if !sent {
            return Err(closed());
        }
        result.await.map_err(|_| closed())
    }

    /// Lets the commits already handed over finish, then closes the connection.
    pub(crate) async fn close(&self) {
        drop(
            self.jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let closed = self
            .closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(closed) = closed {
            let _ = closed.await;
        }
    }
}

fn open_failed(
    path: &Path,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StoreError {
    StoreError::Open {
        backend: "sqlite",
        target: path.display().to_string(),
        source: source.into(),
    }
}

fn commit(conn: &mut Connection, sql: &Statements, batch: &mut Batch) -> Result<(), StoreError> {
    let Some(span) = batch.check()? else {
        return Ok(());
    };
    let failed = |source: rusqlite::Error| span.failed("sqlite", source);
    // IMMEDIATE: take the write lock now, so another connection's write (`takt replay`
    // resetting the projections) makes this wait (busy timeout) instead of failing half-way.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    for (table, rows) in batch.projections() {
        let mut upsert = tx
            .prepare_cached(&sql.upserts[table_index(table)])
            .map_err(failed)?;
        for row in rows {
            upsert
                .execute(rusqlite::params_from_iter(row))
                .map_err(failed)?;
        }
    }
    if let Some(first) = batch.first {
        let mut insert = tx.prepare_cached(&sql.journal_insert).map_err(failed)?;
        for row in &batch.journal {
            insert
                .execute(rusqlite::params_from_iter(row))
                .map_err(failed)?;
        }
        let (count, max) = tx
            .prepare_cached(&sql.journal_check)
            .and_then(|mut check| check.query_row([first], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(failed)?;
        // An error drops `tx`, which rolls the whole batch back.
        span.check_journal(count, max)?;
    }
    tx.commit().map_err(failed)
}

fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    // One row: busy, frames in the WAL, frames copied. Busy only means a reader held it back;
    // the next round catches up.
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        .map_err(|source| StoreError::Checkpoint {
            source: Box::new(source),
        })
}

fn prune_events(
    conn: &Connection,
    sql: &Statements,
    before: chrono::DateTime<Utc>,
) -> Result<u64, StoreError> {
    conn.prepare_cached(&sql.events_prune)
        .and_then(|mut prune| {
            prune.execute(rusqlite::params![time_text(before), EVENTS_PRUNE_CHUNK])
        })
        .map(|n| n as u64)
        .map_err(|source| StoreError::Prune {
            source: Box::new(source),
        })
}

fn save_snapshot(
    conn: &mut Connection,
    sql: &Statements,
    journal_id: i64,
    state: &str,
) -> Result<(), StoreError> {
    let failed = |source: rusqlite::Error| StoreError::Snapshot {
        journal_id,
        source: Box::new(source),
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    let taken_at = time_text(journal_time(Utc::now()));
    tx.prepare_cached(&sql.snapshot_insert)
        .and_then(|mut insert| insert.execute(rusqlite::params![journal_id, state, taken_at]))
        .map_err(failed)?;
    tx.prepare_cached(&sql.snapshot_prune)
        .and_then(|mut prune| prune.execute([SNAPSHOTS_KEPT]))
        .map_err(failed)?;
    tx.commit().map_err(failed)
}

/// Values bound as sqlx binds them, so rows read back the same whichever path wrote them:
/// times as RFC 3339 text with an offset, booleans as integers, JSON as its text.
impl ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Int(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Val::Real(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Real(*v)),
            Val::Bool(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*v))),
            Val::Text(Some(v)) | Val::JsonText(Some(v)) => {
                ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes()))
            }
            Val::Time(Some(t)) => ToSqlOutput::Owned(Value::Text(time_text(*t))),
            Val::Json(Some(v)) => ToSqlOutput::Owned(Value::Text(v.to_string())),
            Val::Int(None)
            | Val::Real(None)
            | Val::Bool(None)
            | Val::Text(None)
            | Val::JsonText(None)
            | Val::Time(None)
            | Val::Json(None) => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}
