//! The projection tables as data: column lists, and how each [`Change`] becomes one row.
//!
//! Both dialects read and write through these lists, so the SQL that touches projections is
//! generated once; the migrations under `controller/migrations/` must declare the same columns.

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::Value as Json;
use takt_core::Change;
use takt_core::model::TaskKind;

use super::StoreError;

/// How a column is stored and decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Real,
    Bool,
    Text,
    Time,
    Json,
}

/// One column value; `None` is SQL `NULL`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Int(Option<i64>),
    Real(Option<f64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Time(Option<DateTime<Utc>>),
    Json(Option<Json>),
    /// Serialised JSON bound as text, for columns that keep the exact text (the journal
    /// payload, snapshots): PostgreSQL `JSON` rather than `JSONB`.
    JsonText(Option<String>),
}

/// A value as it travels to the database inside the rows of one insert (see `ops::insert_rows`):
/// numbers as numbers, NULL as `null`, text and JSON text as strings, nested JSON as itself, and
/// times as RFC 3339 text with an offset, the form sqlx's SQLite encoding writes (so rows written
/// either way read back alike) and PostgreSQL's `timestamptz` parses.
impl Serialize for Val {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Int(v) => v.serialize(s),
            Val::Real(v) => v.serialize(s),
            Val::Bool(v) => v.serialize(s),
            Val::Text(v) | Val::JsonText(v) => v.serialize(s),
            Val::Time(v) => v.map(time_text).serialize(s),
            Val::Json(v) => v.serialize(s),
        }
    }
}

impl Val {
    /// The value as it appears in [`super::Store::dump_projections`]: times as RFC 3339 UTC
    /// strings and numbers as numbers, so that both backends give the same JSON.
    pub(crate) fn into_json(self) -> Json {
        match self {
            Val::Int(v) => v.map_or(Json::Null, Json::from),
            Val::Real(v) => v
                .and_then(serde_json::Number::from_f64)
                .map_or(Json::Null, Json::Number),
            Val::Bool(v) => v.map_or(Json::Null, Json::Bool),
            Val::Text(v) => v.map_or(Json::Null, Json::String),
            Val::Time(v) => v.map_or(Json::Null, |t| Json::String(rfc3339(t))),
            Val::Json(v) => v.unwrap_or(Json::Null),
            Val::JsonText(v) => v.map_or(Json::Null, |text| {
                serde_json::from_str(&text).unwrap_or(Json::String(text))
            }),
        }
    }

    /// Orders key values the same way on both backends (database collations differ for text).
    fn sort_key(&self) -> SortKey<'_> {
        match self {
            Val::Int(v) => SortKey::Int(*v),
            Val::Text(v) => SortKey::Text(v.as_deref()),
            Val::Time(v) => SortKey::Time(*v),
            // Keys are only ever integers, text or times.
            _ => SortKey::Other,
        }
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum SortKey<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Time(Option<DateTime<Utc>>),
    Other,
}

/// A time as the store writes it: RFC 3339 with an offset (`+00:00`), the form sqlx's SQLite
/// encoding writes and PostgreSQL's `timestamptz` parses.
pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// RFC 3339 in UTC with `Z`, fractional seconds only when there are any.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A projection table: its first `key` columns are the primary key.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: &'static str,
    pub(crate) columns: &'static [(&'static str, Kind)],
    pub(crate) key: usize,
}

impl Table {
    pub(crate) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `INSERT INTO t (cols) ` — the caller appends `VALUES …` and then [`Table::upsert_tail`].
    pub(crate) fn insert_head(&self) -> String {
        format!("INSERT INTO {} ({}) ", self.name, self.column_list())
    }

    /// ` ON CONFLICT (key) DO UPDATE SET c = excluded.c, …`; the same in both dialects.
    pub(crate) fn upsert_tail(&self) -> String {
        let key = self.columns[..self.key]
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ");
        let set = self.columns[self.key..]
            .iter()
            .map(|(name, _)| format!("{name} = excluded.{name}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(" ON CONFLICT ({key}) DO UPDATE SET {set}")
    }

    /// Sorts dumped rows by primary key.
    pub(crate) fn sort(&self, rows: &mut [Vec<Val>]) {
        rows.sort_by(|a, b| {
            let ka = a[..self.key].iter().map(Val::sort_key);
            let kb = b[..self.key].iter().map(Val::sort_key);
            ka.cmp(kb)
        });
    }
}

use Kind::{Bool, Int, Json as J, Real, Text, Time};

pub(crate) static VEHICLES: Table = Table {
    name: "vehicles",
    columns: &[
        ("id", Int),
        ("line", Text),
        ("point", Text),
        ("pos", Int),
        ("seq", Int),
        ("vin", Text),
        ("body", Text),
        ("model", Text),
        ("options", J),
        ("broadcast_at", Time),
        ("status", Text),
        ("stopped_ms_at_broadcast", Int),
        ("calls", J),
    ],
    key: 1,
};

pub(crate) static CALLS: Table = Table {
    name: "calls",
    columns: &[
        ("id", Int),
        ("vehicle", Int),
        ("line", Text),
        ("family", Text),
        ("seq", Int),
        ("pos", Int),
        ("vin", Text),
        ("part", Text),
        ("status", Text),
        ("rack", Text),
        ("slot", Int),
        ("due_at", Time),
        ("corrections", Int),
        ("created_at", Time),
        ("changed_at", Time),
        ("supplier", Text),
        ("received_at", Time),
        ("built_at", Time),
        ("shipped_at", Time),
        ("delivered_at", Time),
        ("short_shipped", Text),
    ],
    key: 1,
};

pub(crate) static RACKS: Table = Table {
    name: "racks",
    columns: &[
        ("id", Text),
        ("family", Text),
        ("number", Int),
        ("size", Int),
        ("filled", Int),
        ("slots", J),
        ("status", Text),
        ("opened_at", Time),
        ("changed_at", Time),
    ],
    key: 1,
};

pub(crate) static TASKS: Table = Table {
    name: "tasks",
    columns: &[
        ("id", Int),
        ("station", Text),
        ("call", Int),
        ("kind", Text),
        ("bin", Text),
        ("rack", Text),
        ("slot", Int),
        ("status", Text),
        ("created_at", Time),
        ("changed_at", Time),
    ],
    key: 1,
};

pub(crate) static ALARMS: Table = Table {
    name: "alarms",
    columns: &[
        ("id", Text),
        ("kind", Text),
        ("subject", Text),
        ("priority", Text),
        ("state", Text),
        ("message", Text),
        ("shelved_until", Time),
        ("raised_at", Time),
        ("changed_at", Time),
        ("occurrences", Int),
    ],
    key: 1,
};

pub(crate) static LINES: Table = Table {
    name: "lines",
    columns: &[
        ("line", Text),
        ("running", Bool),
        ("reason", Text),
        ("since", Time),
        ("stopped_ms_total", Int),
        ("takt_ms", Int),
    ],
    key: 1,
};

pub(crate) static COVERAGE: Table = Table {
    name: "coverage",
    columns: &[
        ("line", Text),
        ("family", Text),
        ("vehicles", Int),
        ("minutes", Real),
    ],
    key: 2,
};

pub(crate) static API_TOKENS: Table = Table {
    name: "api_tokens",
    columns: &[
        ("id", Text),
        ("hash", Text),
        ("scope", J),
        ("label", Text),
        ("created_at", Time),
        ("revoked_at", Time),
    ],
    key: 1,
};

pub(crate) static SHIPMENTS: Table = Table {
    name: "shipments",
    columns: &[
        ("id", Int),
        ("supplier", Text),
        ("number", Text),
        ("carrier", Text),
        ("trailer", Text),
        ("eta", Time),
        ("racks", J),
        ("skipped", J),
        ("status", Text),
        ("at_risk", J),
        ("arrived_at", Time),
        ("created_at", Time),
        ("changed_at", Time),
    ],
    key: 1,
};

pub(crate) static DEMAND: Table = Table {
    name: "forecast_demand",
    columns: &[
        ("line", Text),
        ("family", Text),
        ("part", Text),
        ("hour", Time),
        ("supplier", Text),
        ("quantity", Int),
        ("planned_at", Time),
    ],
    key: 4,
};

pub(crate) static EVENTS: Table = Table {
    name: "events",
    columns: &[
        ("id", Int),
        ("at", Time),
        ("tenant", Text),
        ("kind", Text),
        ("payload", J),
    ],
    key: 1,
};

pub(crate) const TABLE_COUNT: usize = 11;

/// Where `table` stands in [`TABLES`].
pub(crate) fn table_index(table: &Table) -> usize {
    TABLES
        .iter()
        .position(|t| std::ptr::eq(*t, table))
        .expect("every table is listed in TABLES")
}

/// Every projection table, in the order commits write them and dumps list them. Statics, not
/// constants, so that a table has one address to be recognised by.
pub(crate) static TABLES: [&Table; TABLE_COUNT] = [
    &VEHICLES,
    &CALLS,
    &RACKS,
    &TASKS,
    &ALARMS,
    &LINES,
    &COVERAGE,
    &API_TOKENS,
    &SHIPMENTS,
    &DEMAND,
    &EVENTS,
];

fn int(what: &'static str, v: u64) -> Result<Val, StoreError> {
    i64::try_from(v)
        .map(|v| Val::Int(Some(v)))
        .map_err(|_| StoreError::OutOfRange { what, value: v })
}

fn small(v: impl Into<i64>) -> Val {
    Val::Int(Some(v.into()))
}

/// PostgreSQL's TEXT and JSONB cannot hold U+0000 (PLC strings are often NUL-padded); projection
/// text gets U+FFFD in its place on both backends so that they stay equal. The journal keeps the
/// original.
pub(crate) fn scrub(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

fn scrub_json(v: Json) -> Json {
    match v {
        Json::String(s) => Json::String(scrub(s)),
        Json::Array(items) => Json::Array(items.into_iter().map(scrub_json).collect()),
        Json::Object(map) => Json::Object(
            map.into_iter()
                .map(|(k, v)| (scrub(k), scrub_json(v)))
                .collect(),
        ),
        other => other,
    }
}

fn text(v: impl Into<String>) -> Val {
    Val::Text(Some(scrub(v.into())))
}

fn opt_text(v: Option<impl Into<String>>) -> Val {
    Val::Text(v.map(|s| scrub(s.into())))
}

/// PostgreSQL keeps microseconds; truncating on both backends keeps their projections equal.
fn time(t: DateTime<Utc>) -> Val {
    Val::Time(Some(t.trunc_subsecs(6)))
}

fn opt_time(t: Option<DateTime<Utc>>) -> Val {
    Val::Time(t.map(|t| t.trunc_subsecs(6)))
}

/// A JSON column's value as its text (PostgreSQL casts it to `JSONB` on insert). serde_json
/// writes U+0000 only as the escape `\u0000`, so text without one needs no scrubbing; the rare
/// value that has one (or a backslash followed by `u0000`) takes the long way through a tree.
fn json(what: &'static str, v: &impl Serialize) -> Result<Val, StoreError> {
    let failed = |source| StoreError::Encode {
        what: what.to_owned(),
        source,
    };
    let text = serde_json::to_string(v).map_err(failed)?;
    if !text.contains("\\u0000") {
        return Ok(Val::JsonText(Some(text)));
    }
    let tree = scrub_json(serde_json::to_value(v).map_err(failed)?);
    Ok(Val::JsonText(Some(tree.to_string())))
}

/// A nullable JSON column: SQL NULL for `None` (not JSON `null`).
fn opt_json(what: &'static str, v: Option<&impl Serialize>) -> Result<Val, StoreError> {
    v.map_or(Ok(Val::JsonText(None)), |v| json(what, v))
}

/// The serde name of a unit enum value (`"active_unacknowledged"`), as stored in text columns.
fn name(what: &'static str, v: &impl Serialize) -> Result<Val, StoreError> {
    match serde_json::to_value(v) {
        Ok(Json::String(s)) => Ok(text(s)),
        Ok(other) => Err(StoreError::Encode {
            what: what.to_owned(),
            source: serde::ser::Error::custom(format!("expected a name, got {other}")),
        }),
        Err(source) => Err(StoreError::Encode {
            what: what.to_owned(),
            source,
        }),
    }
}

/// The table and row a change writes; its text moves into the row.
pub(crate) fn row(change: Change) -> Result<(&'static Table, Vec<Val>), StoreError> {
    Ok(match change {
        Change::Vehicle(v) => (
            &VEHICLES,
            vec![
                int("vehicle id", v.id.0)?,
                text(v.line),
                text(v.point),
                int("vehicle pos", v.pos)?,
                small(v.seq.value()),
                text(v.vin),
                text(v.body),
                text(v.model),
                json("vehicle options", &v.options)?,
                time(v.broadcast_at),
                name("vehicle status", &v.status)?,
                small(v.stopped_ms_at_broadcast),
                json("vehicle calls", &v.calls)?,
            ],
        ),
        Change::Call(c) => (
            &CALLS,
            vec![
                int("call id", c.id.0)?,
                int("call vehicle", c.vehicle.0)?,
                text(c.line),
                text(c.family),
                small(c.seq.value()),
                int("call pos", c.pos)?,
                text(c.vin),
                opt_text(c.part),
                name("call status", &c.status)?,
                opt_text(c.rack),
                Val::Int(c.slot.map(i64::from)),
                time(c.due_at),
                small(c.corrections),
                time(c.created_at),
                time(c.changed_at),
                opt_text(c.supplier),
                opt_time(c.received_at),
                opt_time(c.built_at),
                opt_time(c.shipped_at),
                opt_time(c.delivered_at),
                opt_text(c.short_shipped),
            ],
        ),
        Change::Rack(r) => {
            let filled = r.filled();
            (
                &RACKS,
                vec![
                    text(r.id),
                    text(r.family),
                    int("rack number", r.number)?,
                    small(r.size),
                    small(filled),
                    json("rack slots", &r.slots)?,
                    name("rack status", &r.status)?,
                    time(r.opened_at),
                    time(r.changed_at),
                ],
            )
        }
        Change::Task(t) => {
            let (kind, bin, rack, slot) = match t.kind {
                TaskKind::Pick { bin } => ("pick", Some(bin), None, None),
                TaskKind::Put { rack, slot } => ("put", None, Some(rack), Some(slot)),
            };
            (
                &TASKS,
                vec![
                    int("task id", t.id.0)?,
                    text(t.station),
                    int("task call", t.call.0)?,
                    text(kind),
                    opt_text(bin),
                    opt_text(rack),
                    Val::Int(slot.map(i64::from)),
                    name("task status", &t.status)?,
                    time(t.created_at),
                    time(t.changed_at),
                ],
            )
        }
        Change::Alarm(a) => (
            &ALARMS,
            vec![
                text(a.key.id()),
                text(a.key.kind.name()),
                text(a.key.subject),
                name("alarm priority", &a.priority)?,
                name("alarm state", &a.state)?,
                text(a.message),
                opt_time(a.shelved_until),
                time(a.raised_at),
                time(a.changed_at),
                int("alarm occurrences", a.occurrences)?,
            ],
        ),
        Change::Line(l) => (
            &LINES,
            vec![
                text(l.line),
                Val::Bool(Some(l.running)),
                opt_text(l.reason),
                opt_time(l.since),
                small(l.stopped_ms_total),
                int("line takt_ms", l.takt_ms)?,
            ],
        ),
        Change::Coverage(c) => (
            &COVERAGE,
            vec![
                text(c.line),
                text(c.family),
                int("coverage vehicles", c.vehicles)?,
                // SQLite turns NaN into NULL; do the same for every non-finite value on both.
                Val::Real(Some(c.minutes).filter(|m| m.is_finite())),
            ],
        ),
        Change::ApiToken(t) => (
            &API_TOKENS,
            vec![
                text(t.id),
                text(t.hash),
                json("token scope", &t.scope)?,
                text(t.label),
                time(t.created_at),
                opt_time(t.revoked_at),
            ],
        ),
        Change::Shipment(s) => (
            &SHIPMENTS,
            vec![
                int("shipment id", s.id)?,
                text(s.supplier),
                text(s.number),
                text(s.carrier),
                text(s.trailer),
                time(s.eta),
                json("shipment racks", &s.racks)?,
                json("shipment skipped", &s.skipped)?,
                name("shipment status", &s.status)?,
                opt_json("shipment risk", s.at_risk.as_ref())?,
                opt_time(s.arrived_at),
                time(s.created_at),
                time(s.changed_at),
            ],
        ),
        Change::Demand(d) => (
            &DEMAND,
            vec![
                text(d.line),
                text(d.family),
                text(d.part),
                time(d.hour),
                text(d.supplier),
                small(d.quantity),
                time(d.planned_at),
            ],
        ),
        Change::Event(e) => (
            &EVENTS,
            vec![
                int("event id", e.id)?,
                time(e.at),
                opt_text(e.tenant),
                text(e.event.name()),
                json("event payload", &e.event)?,
            ],
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_sql_names_key_and_updates_the_rest() {
        assert_eq!(
            COVERAGE.upsert_tail(),
            " ON CONFLICT (line, family) DO UPDATE SET vehicles = excluded.vehicles, \
             minutes = excluded.minutes"
        );
        assert_eq!(
            LINES.insert_head(),
            "INSERT INTO lines (line, running, reason, since, stopped_ms_total, takt_ms) "
        );
    }
}
