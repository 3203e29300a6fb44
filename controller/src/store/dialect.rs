//! The little that differs per backend at the Rust level: binding and decoding [`Val`]s and
//! running a built query. Everything else (the SQL and the logic around it) is written once, in
//! `ops.rs`, generic over [`Dialect`].
//!
//! Why a trait of concrete primitives instead of generic code with sqlx's bounds: sqlx's generic
//! bounds (`for<'c> &'c mut DB::Connection: Executor<'c>`, `for<'q> T: Encode<'q, DB>` for every
//! type) are not implied by `DB: Database` and must be restated on every function, and they tend
//! to break `Send` inference of the futures the runtime spawns. Here the bounds are checked once,
//! per concrete database, inside the macro below.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sqlx::error::BoxDynError;
use sqlx::types::Json;
use sqlx::{Arguments, AssertSqlSafe, Database, QueryBuilder, Row};

use super::rows::{Kind, Val};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(crate) trait Dialect: Database {
    /// What [`super::Store::backend`] reports.
    const BACKEND: &'static str;
    /// First statement of a read transaction that must see one point in time, if the default
    /// isolation does not (PostgreSQL's READ COMMITTED takes a new snapshot per statement;
    /// a SQLite transaction reads one snapshot of the WAL already).
    const CONSISTENT_READ: Option<&'static str>;
    /// One text may hold several statements, their arguments bound in order across them.
    /// SQLite's `?` placeholders are positional and sqlx steps every statement of a text;
    /// PostgreSQL's extended protocol takes one statement per text.
    const SCRIPTS: bool;

    fn push_bind(qb: &mut QueryBuilder<Self>, v: &Val);
    /// Moves `v` into `args`: the hot path encodes each value once, without a copy.
    fn bind(args: &mut Self::Arguments, v: Val) -> Result<(), BoxDynError>;
    /// Appends the placeholder of bind parameter `n` (1-based) to a statement text built ahead
    /// of its arguments.
    fn placeholder(sql: &mut String, n: usize);
    /// Appends a table source of the rows in bind parameter `n`, a JSON array of arrays, one
    /// row per element, in a column named `value`.
    fn json_rows(sql: &mut String, n: usize);
    /// Appends the expression for column `index` of such a row, typed for values like `like`.
    fn json_column(sql: &mut String, index: usize, like: &Val);
    fn get(row: &Self::Row, index: usize, kind: Kind) -> Result<Val, sqlx::Error>;
    /// Runs the built statement; returns the number of rows it affected.
    fn execute<'a>(
        conn: &'a mut Self::Connection,
        qb: &'a mut QueryBuilder<Self>,
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>>;
    fn fetch_all<'a>(
        conn: &'a mut Self::Connection,
        qb: &'a mut QueryBuilder<Self>,
    ) -> BoxFuture<'a, Result<Vec<Self::Row>, sqlx::Error>>;
    /// Runs a statement text (a script where [`Dialect::SCRIPTS`]) with arguments bound by
    /// [`Dialect::bind`]; returns the rows it selected.
    fn fetch_with(
        conn: &mut Self::Connection,
        sql: Arc<str>,
        args: Self::Arguments,
    ) -> BoxFuture<'_, Result<Vec<Self::Row>, sqlx::Error>>;
}

macro_rules! dialect {
    ($db:ty, $name:literal, $placeholder:expr, $json_rows:literal, $json_column:expr,
     $json_text_cast:literal, $consistent_read:expr, $scripts:literal) => {
        impl Dialect for $db {
            const BACKEND: &'static str = $name;
            const CONSISTENT_READ: Option<&'static str> = $consistent_read;
            const SCRIPTS: bool = $scripts;

            fn push_bind(qb: &mut QueryBuilder<Self>, v: &Val) {
                match v {
                    Val::Int(v) => qb.push_bind(*v),
                    Val::Real(v) => qb.push_bind(*v),
                    Val::Bool(v) => qb.push_bind(*v),
                    Val::Text(v) => qb.push_bind(v.clone()),
                    Val::Time(v) => qb.push_bind(*v),
                    Val::Json(v) => qb.push_bind(v.clone().map(Json)),
                    Val::JsonText(v) => qb.push_bind(v.clone()).push($json_text_cast),
                };
            }

            fn bind(args: &mut Self::Arguments, v: Val) -> Result<(), BoxDynError> {
                match v {
                    Val::Int(v) => args.add(v),
                    Val::Real(v) => args.add(v),
                    Val::Bool(v) => args.add(v),
                    Val::Text(v) | Val::JsonText(v) => args.add(v),
                    Val::Time(v) => args.add(v),
                    Val::Json(v) => args.add(v.map(Json)),
                }
            }

            fn placeholder(sql: &mut String, n: usize) {
                $placeholder(sql, n);
            }

            fn json_rows(sql: &mut String, n: usize) {
                sql.push_str($json_rows);
                sql.push('(');
                $placeholder(sql, n);
                sql.push_str($json_text_cast);
                sql.push(')');
            }

            fn json_column(sql: &mut String, index: usize, like: &Val) {
                $json_column(sql, index, like);
            }

            fn get(row: &Self::Row, index: usize, kind: Kind) -> Result<Val, sqlx::Error> {
                Ok(match kind {
                    Kind::Int => Val::Int(row.try_get(index)?),
                    Kind::Real => Val::Real(row.try_get(index)?),
                    Kind::Bool => Val::Bool(row.try_get(index)?),
                    Kind::Text => Val::Text(row.try_get(index)?),
                    Kind::Time => Val::Time(row.try_get(index)?),
                    Kind::Json => Val::Json(
                        row.try_get::<Option<Json<serde_json::Value>>, _>(index)?
                            .map(|j| j.0),
                    ),
                })
            }

            fn execute<'a>(
                conn: &'a mut Self::Connection,
                qb: &'a mut QueryBuilder<Self>,
            ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
                Box::pin(async move { Ok(qb.build().execute(conn).await?.rows_affected()) })
            }

            fn fetch_all<'a>(
                conn: &'a mut Self::Connection,
                qb: &'a mut QueryBuilder<Self>,
            ) -> BoxFuture<'a, Result<Vec<Self::Row>, sqlx::Error>> {
                Box::pin(async move { qb.build().fetch_all(conn).await })
            }

            fn fetch_with(
                conn: &mut Self::Connection,
                sql: Arc<str>,
                args: Self::Arguments,
            ) -> BoxFuture<'_, Result<Vec<Self::Row>, sqlx::Error>> {
                Box::pin(async move {
                    sqlx::query_with(AssertSqlSafe(sql), args)
                        .fetch_all(conn)
                        .await
                })
            }
        }
    };
}

// JSON is plain text, and `->>` gives SQLite's own type of each value (a nested array or object
// comes back as its JSON text, `true` as 1), which is what the STRICT columns take.
dialect!(
    sqlx::Sqlite,
    "sqlite",
    |sql: &mut String, _: usize| sql.push('?'),
    "jsonb_each",
    |sql: &mut String, index: usize, _: &Val| {
        sql.push_str("value ->> ");
        sql.push_str(&index.to_string());
    },
    "",
    None,
    true
);
// Text becomes `JSON` only by an explicit cast; every other column is cast from the text of
// its value, nested JSON (JSONB columns) from the value itself.
dialect!(
    sqlx::Postgres,
    "postgres",
    |sql: &mut String, n: usize| {
        sql.push('$');
        sql.push_str(&n.to_string());
    },
    "json_array_elements",
    |sql: &mut String, index: usize, like: &Val| {
        let (operator, cast) = match like {
            Val::Int(_) => ("->>", "::bigint"),
            Val::Real(_) => ("->>", "::double precision"),
            Val::Bool(_) => ("->>", "::boolean"),
            Val::Text(_) => ("->>", ""),
            Val::Time(_) => ("->>", "::timestamptz"),
            Val::Json(_) => ("->", "::jsonb"),
            Val::JsonText(_) => ("->>", "::json"),
        };
        sql.push_str(&format!("(value {operator} {index}){cast}"));
    },
    "::json",
    Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
    false
);
