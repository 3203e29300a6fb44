//! What the API reads: projection rows by key, filtered and paged by cursor, decoded into the
//! caller's types.
//!
//! Rows come out as JSON objects keyed by column (the form [`super::Store::dump_projections`]
//! gives), so a view type whose fields are named like the columns deserialises straight from
//! them. Pages are in primary-key order and resume after the last key given: a cursor that stays
//! right while rows are inserted and updated, which an offset would not.
//!
//! Tenant isolation is here, not in the handlers: [`Filter::Tenant`] is how a read is narrowed
//! to one tenant, and the functions that serve tenants take one (see `Store` in `mod.rs`).

use serde::de::DeserializeOwned;
use sqlx::{Pool, QueryBuilder};

use super::StoreError;
use super::dialect::Dialect;
use super::rows::{self, Kind, Table, Val};

/// A condition on one column.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    /// `column = value`.
    Eq(&'static str, Val),
    /// `column >= value`.
    AtLeast(&'static str, Val),
    /// `column < value`.
    Below(&'static str, Val),
}

/// One page of a projection: at most `limit` rows with a primary key above `after` (the key of
/// the last row of the page before, as text).
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    pub after: Option<String>,
    pub limit: u32,
}

/// Who reads the outbox: the plant (every event) or one tenant (the events that concern it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventReader {
    Plant,
    Tenant(String),
}

/// The projections plant users page through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    Vehicles,
    Calls,
    Racks,
    Tasks,
    Alarms,
    Lines,
    Shipments,
}

/// A projection a tenant reads its own rows of: each names its tenant in a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantProjection {
    /// A supplier's calls (`calls.supplier`).
    Calls,
    /// A supplier's shipments (`shipments.supplier`).
    Shipments,
}

impl TenantProjection {
    pub(crate) fn table(self) -> &'static Table {
        match self {
            TenantProjection::Calls => &rows::CALLS,
            TenantProjection::Shipments => &rows::SHIPMENTS,
        }
    }

    /// The column that names whose a row is.
    pub(crate) fn tenant_column(self) -> &'static str {
        "supplier"
    }
}

impl Projection {
    pub(crate) fn table(self) -> &'static Table {
        match self {
            Projection::Vehicles => &rows::VEHICLES,
            Projection::Calls => &rows::CALLS,
            Projection::Racks => &rows::RACKS,
            Projection::Tasks => &rows::TASKS,
            Projection::Alarms => &rows::ALARMS,
            Projection::Lines => &rows::LINES,
            Projection::Shipments => &rows::SHIPMENTS,
        }
    }
}

/// The filter `key column = key`.
pub(crate) fn key_is(table: &'static Table, key: &str) -> Result<Filter, StoreError> {
    Ok(Filter::Eq(table.columns[0].0, cursor(table, key)?))
}

/// A cursor as a value of `table`'s key column, or why it cannot be one.
fn cursor(table: &Table, after: &str) -> Result<Val, StoreError> {
    match table.columns[table.key - 1].1 {
        Kind::Int => after
            .parse()
            .map(|v| Val::Int(Some(v)))
            .map_err(|_| StoreError::BadCursor {
                cursor: after.to_owned(),
            }),
        _ => Ok(Val::Text(Some(after.to_owned()))),
    }
}

/// Rows of `table` matching every filter, in key order; `T`'s fields are its column names.
/// The cursor is a value of the key's last column: a table with a composite key (coverage:
/// line, family) is paged with the leading key columns fixed by filters.
pub(crate) async fn select<D: Dialect, T: DeserializeOwned>(
    pool: &Pool<D>,
    table: &'static Table,
    filters: &[Filter],
    page: &PageQuery,
) -> Result<Vec<T>, StoreError> {
    let failed = |source| StoreError::Query {
        backend: D::BACKEND,
        what: "read a projection",
        source,
    };
    let key_columns: Vec<&str> = table.columns[..table.key].iter().map(|c| c.0).collect();
    let key = key_columns[key_columns.len() - 1];
    let mut qb = QueryBuilder::<D>::new(format!(
        "SELECT {} FROM {} WHERE true",
        table.column_list(),
        table.name
    ));
    for filter in filters {
        match filter {
            Filter::Eq(column, value) => {
                qb.push(format!(" AND {column} = "));
                D::push_bind(&mut qb, value);
            }
            Filter::AtLeast(column, value) => {
                qb.push(format!(" AND {column} >= "));
                D::push_bind(&mut qb, value);
            }
            Filter::Below(column, value) => {
                qb.push(format!(" AND {column} < "));
                D::push_bind(&mut qb, value);
            }
        }
    }
    if let Some(after) = &page.after {
        qb.push(format!(" AND {key} > "));
        D::push_bind(&mut qb, &cursor(table, after)?);
    }
    qb.push(format!(" ORDER BY {} LIMIT ", key_columns.join(", ")));
    D::push_bind(&mut qb, &Val::Int(Some(i64::from(page.limit))));
    let mut conn = pool.acquire().await.map_err(failed)?;
    let rows = D::fetch_all(&mut *conn, &mut qb).await.map_err(failed)?;
    rows.iter()
        .map(|row| {
            let mut object = serde_json::Map::with_capacity(table.columns.len());
            for (i, (name, kind)) in table.columns.iter().enumerate() {
                let value = D::get(row, i, *kind).map_err(|source| StoreError::Decode {
                    what: format!("{}.{name}", table.name),
                    source: Box::new(source),
                })?;
                object.insert((*name).to_owned(), value.into_json());
            }
            serde_json::from_value(serde_json::Value::Object(object)).map_err(|source| {
                StoreError::Decode {
                    what: format!("a row of {}", table.name),
                    source: Box::new(source),
                }
            })
        })
        .collect()
}
