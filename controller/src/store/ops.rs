//! The store's SQL, written once for both backends (the two dialects agree on all of it:
//! `ON CONFLICT … DO UPDATE … excluded`, `LIMIT`, `COALESCE`; placeholders come from
//! `QueryBuilder` or [`Dialect::placeholder`], rows to insert arrive as one JSON value that
//! [`Dialect::json_rows`] unpacks).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use sqlx::{Pool, QueryBuilder};
use takt_core::{Input, Outcome};

use super::batch::Batch;
use super::dialect::Dialect;
use super::rows::{self, Kind, TABLES, Table, Val};
use super::{JournalEntry, Origin, StoreError};

/// How many snapshots `save_snapshot` keeps: the latest, plus a couple in case the latest one
/// turns out unreadable after an upgrade of the core's state format.
pub const SNAPSHOTS_KEPT: i64 = 3;

// SQL that `sqlite_writer` (a SQLite file's commits and snapshots) shares, each completed with a
// placeholder or rows.
pub(super) const JOURNAL_INSERT_HEAD: &str =
    "INSERT INTO journal (id, at, kind, payload, outcome, reason, actor, note, idempotency_key) ";
/// How many columns [`JOURNAL_INSERT_HEAD`] names.
pub(super) const JOURNAL_COLUMNS: usize = 9;
/// The commit's order check, from a bound id on: readers page the journal by id, so an entry
/// below an id they may already have read would never reach them; every row at or above the
/// batch's first id must be one of the batch's.
pub(super) const JOURNAL_CHECK_HEAD: &str =
    "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM journal WHERE id >= ";
pub(super) const SNAPSHOT_INSERT_HEAD: &str =
    "INSERT INTO snapshots (journal_id, state, taken_at) ";
pub(super) const SNAPSHOT_UPSERT_TAIL: &str = " ON CONFLICT (journal_id) DO UPDATE SET \
    state = excluded.state, taken_at = excluded.taken_at";
/// Completed with the bound number of snapshots to keep and `)`.
pub(super) const SNAPSHOT_PRUNE_HEAD: &str = "DELETE FROM snapshots WHERE journal_id NOT IN \
    (SELECT journal_id FROM snapshots ORDER BY journal_id DESC LIMIT ";

/// Deletes one chunk of the outbox's oldest events, at most the bound count (`?2`/`$2`): the
/// run of ids below the first event at or after the bound cut-off (`?1`/`$1`) — a run, so that
/// an event stamped earlier after a clock step back is never cut out of the middle and the
/// oldest id kept always says what a cursor has lost — and never the newest event, whose id
/// tells a reader where the outbox stands when everything else has gone. (Times compare as
/// times in PostgreSQL; in SQLite both sides are RFC 3339 text in UTC with the same offset,
/// which sorts as the times do.)
pub(super) const EVENTS_PRUNE: [&str; 3] = [
    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id < \
     COALESCE((SELECT MIN(id) FROM events WHERE at >= ",
    "), (SELECT MAX(id) FROM events)) AND id < (SELECT MAX(id) FROM events) ORDER BY id LIMIT ",
    ")",
];
/// Most events one prune statement deletes: a chunk is a short transaction, so commits that
/// wait behind it wait little.
pub(super) const EVENTS_PRUNE_CHUNK: i64 = 2_000;

fn query<D: Dialect>(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError + Copy {
    move |source| StoreError::Query {
        backend: D::BACKEND,
        what,
        source,
    }
}

/// One statement of a commit: its text and its values in placeholder order.
struct Statement {
    sql: Arc<str>,
    values: Vec<Val>,
}

/// `head SELECT <one expression per column> FROM <the rows> WHERE true tail`, with all the rows
/// bound as one value: a JSON array of rows, each an array of column values (see
/// [`Val`]'s `Serialize`), which the database unpacks itself. So a table's insert is one
/// statement with one placeholder however many rows the batch has: the text is the same for
/// every batch (sqlx prepares it once per connection and keeps it), no backend's bind limit
/// splits a batch, and the whole commit fits one script (see [`run`]). Binding every value
/// on its own cost a statement per 256 rows, each a round trip to SQLite's thread, and a
/// prepared text per batch size. (`WHERE true` lets SQLite's parser tell the `ON CONFLICT` of
/// the upsert from a join constraint.)
fn insert_rows<D: Dialect>(
    head: &str,
    tail: &str,
    rows: &[Vec<Val>],
) -> Result<Statement, StoreError> {
    let like = rows.first().map_or(&[][..], Vec::as_slice);
    let mut sql = String::with_capacity(head.len() + tail.len() + like.len() * 32 + 64);
    sql.push_str(head);
    sql.push_str("SELECT ");
    for (index, value) in like.iter().enumerate() {
        if index > 0 {
            sql.push_str(", ");
        }
        D::json_column(&mut sql, index, value);
    }
    sql.push_str(" FROM ");
    D::json_rows(&mut sql, 1);
    sql.push_str(" WHERE true");
    sql.push_str(tail);
    let json = serde_json::to_string(rows).map_err(|source| StoreError::Encode {
        what: format!("rows for `{}`", head.trim()),
        source,
    })?;
    Ok(Statement {
        sql: sql.into(),
        values: vec![Val::JsonText(Some(json))],
    })
}

/// Runs `statements` in order and returns the rows they selected. The values are moved into the
/// arguments. Where the backend takes scripts, as one text: every statement is otherwise a
/// round trip to SQLite's thread (100–170 µs each on the bench VM), more than SQLite's own work
/// on one broadcast, and that is the latency of every light. A commit's script is one of a few
/// texts (which tables the batch touched), so sqlx's statement cache holds them all.
async fn run<D: Dialect>(
    conn: &mut D::Connection,
    statements: Vec<Statement>,
) -> Result<Vec<D::Row>, sqlx::Error> {
    if D::SCRIPTS && statements.len() > 1 {
        let values: usize = statements.iter().map(|s| s.values.len()).sum();
        let sql: Vec<&str> = statements.iter().map(|s| &*s.sql).collect();
        let sql: Arc<str> = sql.join(";\n").into();
        let args = arguments::<D>(statements.into_iter().flat_map(|s| s.values), values)?;
        return D::fetch_with(conn, sql, args).await;
    }
    let mut rows = Vec::new();
    for Statement { sql, values } in statements {
        let len = values.len();
        rows.extend(D::fetch_with(conn, sql, arguments::<D>(values, len)?).await?);
    }
    Ok(rows)
}

fn arguments<D: Dialect>(
    values: impl IntoIterator<Item = Val>,
    len: usize,
) -> Result<D::Arguments, sqlx::Error> {
    let mut args = D::Arguments::default();
    sqlx::Arguments::reserve(&mut args, len, 0);
    for value in values {
        D::bind(&mut args, value).map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

pub(crate) async fn commit<D: Dialect>(pool: &Pool<D>, mut batch: Batch) -> Result<(), StoreError> {
    let Some(span) = batch.check()? else {
        return Ok(());
    };
    let failed = |source: sqlx::Error| span.failed(D::BACKEND, source);
    // The order inside the transaction does not matter for atomicity. Projections go first so
    // that the commonest refusal (a journal id already taken) comes after other writes, which is
    // what the rollback tests rely on to prove those writes are undone.
    let mut statements = Vec::with_capacity(TABLES.len() + 2);
    for (table, rows) in batch.projections() {
        statements.push(insert_rows::<D>(
            &table.insert_head(),
            &table.upsert_tail(),
            rows,
        )?);
    }
    let first = batch.first;
    if let Some(first) = first {
        statements.push(insert_rows::<D>(JOURNAL_INSERT_HEAD, "", &batch.journal)?);
        statements.push(Statement {
            sql: journal_check::<D>(),
            values: vec![Val::Int(Some(first))],
        });
    }
    drop(batch);
    let mut tx = pool.begin().await.map_err(failed)?;
    let rows = run::<D>(&mut tx, statements).await.map_err(failed)?;
    if first.is_some() {
        // An error drops `tx`, which rolls the whole batch back.
        span.check_journal(
            int(&rows, 0, "journal count")?,
            int(&rows, 1, "journal max id")?,
        )?;
    }
    tx.commit().await.map_err(failed)
}

/// [`JOURNAL_CHECK_HEAD`] with the dialect's placeholder.
fn journal_check<D: Dialect>() -> Arc<str> {
    let mut sql = String::from(JOURNAL_CHECK_HEAD);
    D::placeholder(&mut sql, 1);
    sql.into()
}

/// Column `index` of the first row as an integer (aggregates always return one row).
fn int<R: sqlx::Row>(rows: &[R], index: usize, what: &'static str) -> Result<i64, StoreError>
where
    R::Database: Dialect,
{
    let row = rows.first().ok_or_else(|| StoreError::Decode {
        what: what.to_owned(),
        source: "the aggregate returned no row".into(),
    })?;
    match <R::Database as Dialect>::get(row, index, Kind::Int) {
        Ok(Val::Int(Some(v))) => Ok(v),
        Ok(other) => Err(StoreError::Decode {
            what: what.to_owned(),
            source: format!("expected an integer, got {other:?}").into(),
        }),
        Err(source) => Err(StoreError::Decode {
            what: what.to_owned(),
            source: Box::new(source),
        }),
    }
}

pub(crate) async fn last_journal_id<D: Dialect>(pool: &Pool<D>) -> Result<i64, StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(query::<D>("acquire a connection"))?;
    let mut qb = QueryBuilder::<D>::new("SELECT COALESCE(MAX(id), 0) FROM journal");
    let rows = D::fetch_all(&mut *conn, &mut qb)
        .await
        .map_err(query::<D>("read the last journal id"))?;
    int(&rows, 0, "last journal id")
}

pub(crate) async fn journal_after<D: Dialect>(
    pool: &Pool<D>,
    after: i64,
    limit: i64,
) -> Result<Vec<JournalEntry>, StoreError> {
    journal_where::<D>(pool, |qb| {
        qb.push("id > ");
        D::push_bind(qb, &Val::Int(Some(after)));
        qb.push(" ORDER BY id LIMIT ");
        D::push_bind(qb, &Val::Int(Some(limit.max(0))));
    })
    .await
}

/// Entries made since `since` that carry an idempotency key, in order.
pub(crate) async fn journal_keyed_since<D: Dialect>(
    pool: &Pool<D>,
    since: chrono::DateTime<Utc>,
) -> Result<Vec<JournalEntry>, StoreError> {
    journal_where::<D>(pool, |qb| {
        qb.push("idempotency_key IS NOT NULL AND at >= ");
        D::push_bind(qb, &Val::Time(Some(since)));
        qb.push(" ORDER BY id");
    })
    .await
}

/// Journal entries selected by the condition (and order and limit) that `condition` appends.
async fn journal_where<D: Dialect>(
    pool: &Pool<D>,
    condition: impl FnOnce(&mut QueryBuilder<D>),
) -> Result<Vec<JournalEntry>, StoreError> {
    const COLUMNS: [(&str, Kind); 8] = [
        ("id", Kind::Int),
        ("at", Kind::Time),
        ("payload", Kind::Json),
        ("outcome", Kind::Text),
        ("reason", Kind::Text),
        ("actor", Kind::Text),
        ("note", Kind::Text),
        ("idempotency_key", Kind::Text),
    ];
    let mut conn = pool
        .acquire()
        .await
        .map_err(query::<D>("acquire a connection"))?;
    let mut qb = QueryBuilder::<D>::new(format!(
        "SELECT {} FROM journal WHERE ",
        COLUMNS.map(|(name, _)| name).join(", ")
    ));
    condition(&mut qb);
    let rows = D::fetch_all(&mut *conn, &mut qb)
        .await
        .map_err(query::<D>("read the journal"))?;
    rows.iter()
        .map(|row| {
            let mut values = COLUMNS.iter().enumerate().map(|(i, (name, kind))| {
                D::get(row, i, *kind).map_err(|source| StoreError::Decode {
                    what: format!("journal column {name}"),
                    source: Box::new(source),
                })
            });
            let mut next = || values.next().expect("one value per column");
            let id = match next()? {
                Val::Int(Some(id)) => id,
                other => return Err(bad_journal_value("id", &other)),
            };
            let at = match next()? {
                Val::Time(Some(at)) => at,
                other => return Err(bad_journal_value("at", &other)),
            };
            let payload = match next()? {
                Val::Json(Some(payload)) => payload,
                other => return Err(bad_journal_value("payload", &other)),
            };
            let input: Input =
                serde_json::from_value(payload).map_err(|source| StoreError::Decode {
                    what: format!("journal entry {id}: input payload"),
                    source: Box::new(source),
                })?;
            let outcome = match (next()?, next()?) {
                (Val::Text(Some(o)), _) if o == "applied" => Outcome::Applied,
                (Val::Text(Some(o)), Val::Text(r)) if o == "ignored" => {
                    Outcome::Ignored(r.unwrap_or_default())
                }
                (Val::Text(Some(o)), Val::Text(r)) if o == "rejected" => {
                    Outcome::Rejected(r.unwrap_or_default())
                }
                (other, _) => return Err(bad_journal_value("outcome", &other)),
            };
            let mut text = || match next()? {
                Val::Text(v) => Ok(v),
                other => Err(bad_journal_value("origin", &other)),
            };
            let origin = Origin {
                actor: text()?,
                note: text()?,
                idempotency_key: text()?,
            };
            Ok(JournalEntry {
                id,
                at,
                input,
                outcome,
                origin,
            })
        })
        .collect()
}

fn bad_journal_value(column: &str, value: &Val) -> StoreError {
    StoreError::Decode {
        what: format!("journal column {column}"),
        source: format!("unexpected value {value:?}").into(),
    }
}

pub(crate) async fn save_snapshot<D: Dialect>(
    pool: &Pool<D>,
    journal_id: i64,
    state: String,
) -> Result<(), StoreError> {
    let failed = query::<D>("save a snapshot");
    let mut tx = pool.begin().await.map_err(failed)?;
    let row = vec![
        Val::Int(Some(journal_id)),
        Val::JsonText(Some(state)),
        Val::Time(Some(super::journal_time(Utc::now()))),
    ];
    let insert = insert_rows::<D>(SNAPSHOT_INSERT_HEAD, SNAPSHOT_UPSERT_TAIL, &[row])?;
    run::<D>(&mut tx, vec![insert])
        .await
        .map_err(query::<D>("save a snapshot"))?;
    let mut qb = QueryBuilder::<D>::new(SNAPSHOT_PRUNE_HEAD);
    D::push_bind(&mut qb, &Val::Int(Some(SNAPSHOTS_KEPT)));
    qb.push(")");
    D::execute(&mut *tx, &mut qb)
        .await
        .map_err(query::<D>("prune old snapshots"))?;
    tx.commit().await.map_err(query::<D>("save a snapshot"))
}

pub(crate) async fn latest_snapshot<D: Dialect>(
    pool: &Pool<D>,
) -> Result<Option<(i64, serde_json::Value)>, StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(query::<D>("acquire a connection"))?;
    let mut qb = QueryBuilder::<D>::new(
        "SELECT journal_id, state FROM snapshots ORDER BY journal_id DESC LIMIT 1",
    );
    let rows = D::fetch_all(&mut *conn, &mut qb)
        .await
        .map_err(query::<D>("read the latest snapshot"))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let decode = |index, kind| {
        D::get(row, index, kind).map_err(|source| StoreError::Decode {
            what: "the latest snapshot".to_owned(),
            source: Box::new(source),
        })
    };
    match (decode(0, Kind::Int)?, decode(1, Kind::Json)?) {
        (Val::Int(Some(id)), Val::Json(Some(state))) => Ok(Some((id, state))),
        other => Err(StoreError::Decode {
            what: "the latest snapshot".to_owned(),
            source: format!("unexpected values {other:?}").into(),
        }),
    }
}

/// One chunk of [`EVENTS_PRUNE`]; how many events it deleted.
pub(crate) async fn prune_events<D: Dialect>(
    pool: &Pool<D>,
    before: chrono::DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(query::<D>("acquire a connection"))?;
    let mut qb = QueryBuilder::<D>::new(EVENTS_PRUNE[0]);
    D::push_bind(&mut qb, &Val::Time(Some(before)));
    qb.push(EVENTS_PRUNE[1]);
    D::push_bind(&mut qb, &Val::Int(Some(EVENTS_PRUNE_CHUNK)));
    qb.push(EVENTS_PRUNE[2]);
    D::execute(&mut *conn, &mut qb)
        .await
        .map_err(query::<D>("prune old events"))
}

/// The id of the oldest event the outbox keeps, if it holds any.
pub(crate) async fn oldest_event_id<D: Dialect>(pool: &Pool<D>) -> Result<Option<i64>, StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(query::<D>("acquire a connection"))?;
    let mut qb = QueryBuilder::<D>::new("SELECT MIN(id) FROM events");
    let rows = D::fetch_all(&mut *conn, &mut qb)
        .await
        .map_err(query::<D>("read the oldest event id"))?;
    match rows.first().map(|row| D::get(row, 0, Kind::Int)) {
        None | Some(Ok(Val::Int(None))) => Ok(None),
        Some(Ok(Val::Int(Some(id)))) => Ok(Some(id)),
        Some(Ok(other)) => Err(StoreError::Decode {
            what: "the oldest event id".to_owned(),
            source: format!("unexpected value {other:?}").into(),
        }),
        Some(Err(source)) => Err(StoreError::Decode {
            what: "the oldest event id".to_owned(),
            source: Box::new(source),
        }),
    }
}

pub(crate) async fn snapshot_ids<D: Dialect>(pool: &Pool<D>) -> Result<Vec<i64>, StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(query::<D>("acquire a connection"))?;
    let mut qb = QueryBuilder::<D>::new("SELECT journal_id FROM snapshots ORDER BY journal_id");
    let rows = D::fetch_all(&mut *conn, &mut qb)
        .await
        .map_err(query::<D>("list snapshots"))?;
    rows.iter()
        .map(|row| match D::get(row, 0, Kind::Int) {
            Ok(Val::Int(Some(id))) => Ok(id),
            Ok(other) => Err(StoreError::Decode {
                what: "a snapshot id".to_owned(),
                source: format!("unexpected value {other:?}").into(),
            }),
            Err(source) => Err(StoreError::Decode {
                what: "a snapshot id".to_owned(),
                source: Box::new(source),
            }),
        })
        .collect()
}

async fn dump_table<D: Dialect>(
    conn: &mut D::Connection,
    table: &Table,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let mut qb = QueryBuilder::<D>::new(format!(
        "SELECT {} FROM {}",
        table.column_list(),
        table.name
    ));
    let rows = D::fetch_all(conn, &mut qb)
        .await
        .map_err(query::<D>("dump a projection table"))?;
    let mut decoded = rows
        .iter()
        .map(|row| {
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, (name, kind))| {
                    D::get(row, i, *kind).map_err(|source| StoreError::Decode {
                        what: format!("{}.{name}", table.name),
                        source: Box::new(source),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Sorted here, not by ORDER BY: text collations differ between the backends.
    table.sort(&mut decoded);
    Ok(decoded
        .into_iter()
        .map(|values| {
            let object = table
                .columns
                .iter()
                .zip(values)
                .map(|((name, _), value)| ((*name).to_owned(), value.into_json()))
                .collect();
            serde_json::Value::Object(object)
        })
        .collect())
}

pub(crate) async fn dump_projections<D: Dialect>(
    pool: &Pool<D>,
) -> Result<BTreeMap<String, Vec<serde_json::Value>>, StoreError> {
    // One read transaction, so the tables are dumped at one point in time.
    let mut tx = pool.begin().await.map_err(query::<D>("dump projections"))?;
    if let Some(sql) = D::CONSISTENT_READ {
        D::execute(&mut *tx, &mut QueryBuilder::new(sql))
            .await
            .map_err(query::<D>("dump projections"))?;
    }
    let mut out = BTreeMap::new();
    for table in rows::TABLES {
        out.insert(
            table.name.to_owned(),
            dump_table::<D>(&mut *tx, table).await?,
        );
    }
    tx.commit().await.map_err(query::<D>("dump projections"))?;
    Ok(out)
}

pub(crate) async fn reset_projections<D: Dialect>(pool: &Pool<D>) -> Result<(), StoreError> {
    let mut tx = pool
        .begin()
        .await
        .map_err(query::<D>("reset projections"))?;
    let names = rows::TABLES.iter().map(|t| t.name).chain(["snapshots"]);
    for name in names {
        let mut qb = QueryBuilder::<D>::new(format!("DELETE FROM {name}"));
        D::execute(&mut *tx, &mut qb)
            .await
            .map_err(query::<D>("reset projections"))?;
    }
    tx.commit().await.map_err(query::<D>("reset projections"))
}

#[cfg(test)]
mod tests {
    use super::{Val, insert_rows};

    #[test]
    fn rows_are_one_json_value_unpacked_per_dialect_with_casts_from_the_first_row() {
        let rows = [
            vec![Val::Int(Some(1)), Val::JsonText(Some("{}".to_owned()))],
            vec![Val::Int(None), Val::JsonText(Some("[1]".to_owned()))],
        ];
        let pg = insert_rows::<sqlx::Postgres>("INSERT INTO t (a, b) ", " TAIL", &rows)
            .expect("encodes");
        assert_eq!(
            &*pg.sql,
            "INSERT INTO t (a, b) SELECT (value ->> 0)::bigint, (value ->> 1)::json \
             FROM json_array_elements($1::json) WHERE true TAIL"
        );
        let lite =
            insert_rows::<sqlx::Sqlite>("INSERT INTO t (a, b) ", "", &rows).expect("encodes");
        assert_eq!(
            &*lite.sql,
            "INSERT INTO t (a, b) SELECT value ->> 0, value ->> 1 FROM jsonb_each(?) WHERE true"
        );
        // The JSON text stays a string: the database keeps it byte for byte.
        assert_eq!(
            lite.values,
            vec![Val::JsonText(Some(r#"[[1,"{}"],[null,"[1]"]]"#.to_owned()))]
        );
    }
}
