//! A commit's rows, encoded input by input as the batch is staged.
//!
//! The writer stages inputs while the batch before them commits, so encoding each one as it is
//! staged (on the writer's thread) keeps the encoding out of the commit's path: the commit then
//! only hands finished rows to the database, whose one writer every commit waits for. What is
//! checked here (ids strictly increasing, times at the journal's resolution, every value
//! encodable) fails the commit rather than the staging, because a failed commit already has
//! its one recovery path: the core is rebuilt from the store.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use takt_core::{Change, Outcome};

#[cfg(test)]
use super::Origin;
use super::rows::{self, TABLE_COUNT, TABLES, Table, Val, table_index};
use super::{JournalEntry, StoreError, journal_time};

/// The journal rows and projection rows of one commit. Build it with [`Batch::push_entry`] and
/// [`Batch::push_change`], then hand it to [`super::Store::commit_batch`].
#[derive(Debug, Default)]
pub struct Batch {
    pub(super) first: Option<i64>,
    last: Option<i64>,
    pub(super) journal: Vec<Vec<Val>>,
    /// Projection rows per table, in [`TABLES`] order, one per entity: a later change to an
    /// entity replaces its row (PostgreSQL refuses an `INSERT … ON CONFLICT` that touches one
    /// row twice, and the earlier version would only be overwritten anyway).
    tables: [Vec<Vec<Val>>; TABLE_COUNT],
    /// (table, primary key) → the position of the entity's row in `tables`.
    index: HashMap<(usize, Vec<Key>), usize>,
    changes: usize,
    /// The first thing that could not be encoded; the commit reports it and writes nothing.
    error: Option<StoreError>,
}

/// What a commit names of its batch when it fails, kept apart from the rows so that the rows
/// can go to the database.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    first: Option<i64>,
    last: Option<i64>,
    entries: usize,
    changes: usize,
}

impl Span {
    pub(super) fn failed(
        self,
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Commit {
            backend,
            first: self.first,
            last: self.last,
            changes: self.changes,
            source: source.into(),
        }
    }

    /// The commit's order check, given `COUNT(*)` and `MAX(id)` of the journal from the batch's
    /// first id on (`ops::JOURNAL_CHECK_HEAD`): every row there must be one of the batch's.
    pub(super) fn check_journal(self, count: i64, max: i64) -> Result<(), StoreError> {
        match self.first {
            Some(first) if usize::try_from(count).ok() != Some(self.entries) => {
                Err(StoreError::JournalOrder {
                    id: first,
                    previous: max,
                })
            }
            _ => Ok(()),
        }
    }
}

/// One primary-key value: an integer, text, or a time (the forecast's hour).
#[derive(Debug, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Text(String),
    Time(chrono::DateTime<chrono::Utc>),
    Null,
}

impl Key {
    fn of(value: &Val) -> Self {
        match value {
            Val::Int(Some(v)) => Key::Int(*v),
            Val::Text(Some(v)) => Key::Text(v.clone()),
            Val::Time(Some(t)) => Key::Time(*t),
            _ => Key::Null,
        }
    }
}

impl Batch {
    /// Appends a journal entry: its id must be above the last one pushed and its time at the
    /// journal's resolution.
    pub fn push_entry(&mut self, entry: &JournalEntry) {
        if self.error.is_some() {
            return;
        }
        if let Some(previous) = self.last
            && entry.id <= previous
        {
            self.error = Some(StoreError::JournalOrder {
                id: entry.id,
                previous,
            });
            return;
        }
        if journal_time(entry.at) != entry.at {
            self.error = Some(StoreError::TimePrecision {
                id: entry.id,
                at: entry.at,
            });
            return;
        }
        match journal_row(entry) {
            Ok(row) => {
                self.first.get_or_insert(entry.id);
                self.last = Some(entry.id);
                self.journal.push(row);
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Adds the projection row a change writes, replacing the row of an earlier change to the
    /// same entity.
    pub fn push_change(&mut self, change: Change) {
        if self.error.is_some() {
            return;
        }
        self.changes += 1;
        let (table, values) = match rows::row(change) {
            Ok(row) => row,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        let index = table_index(table);
        let key = values[..table.key].iter().map(Key::of).collect();
        let rows = &mut self.tables[index];
        match self.index.entry((index, key)) {
            Entry::Occupied(at) => rows[*at.get()] = values,
            Entry::Vacant(slot) => {
                slot.insert(rows.len());
                rows.push(values);
            }
        }
    }

    /// Before a commit: the first encoding error, if any, or `None` when there is nothing to
    /// write, or what the commit names of the batch if it fails.
    pub(super) fn check(&mut self) -> Result<Option<Span>, StoreError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        Ok((!self.is_empty()).then(|| self.span()))
    }

    pub(super) fn span(&self) -> Span {
        Span {
            first: self.first,
            last: self.last,
            entries: self.journal.len(),
            changes: self.changes,
        }
    }

    /// How many journal entries it holds.
    pub fn entries(&self) -> usize {
        self.journal.len()
    }

    pub fn is_empty(&self) -> bool {
        self.journal.is_empty() && self.tables.iter().all(Vec::is_empty)
    }

    /// The tables with rows to upsert, in [`TABLES`] order.
    pub(super) fn projections(&self) -> impl Iterator<Item = (&'static Table, &[Vec<Val>])> {
        TABLES
            .iter()
            .zip(&self.tables)
            .filter(|(_, rows)| !rows.is_empty())
            .map(|(table, rows)| (*table, rows.as_slice()))
    }
}

fn journal_row(entry: &JournalEntry) -> Result<Vec<Val>, StoreError> {
    let payload = serde_json::to_string(&entry.input).map_err(|source| StoreError::Encode {
        what: format!("journal entry {}", entry.id),
        source,
    })?;
    // The reason is a message for people and is stored as TEXT, so it gets the same U+0000
    // treatment as projection text; the input itself is kept exactly.
    let (outcome, reason) = match &entry.outcome {
        Outcome::Applied => ("applied", None),
        Outcome::Ignored(reason) => ("ignored", Some(rows::scrub(reason.clone()))),
        Outcome::Rejected(reason) => ("rejected", Some(rows::scrub(reason.clone()))),
    };
    Ok(vec![
        Val::Int(Some(entry.id)),
        Val::Time(Some(entry.at)),
        Val::Text(Some(entry.input.kind().to_owned())),
        Val::JsonText(Some(payload)),
        Val::Text(Some(outcome.to_owned())),
        Val::Text(reason),
        Val::Text(entry.origin.actor.clone().map(rows::scrub)),
        Val::Text(entry.origin.note.clone().map(rows::scrub)),
        Val::Text(entry.origin.idempotency_key.clone().map(rows::scrub)),
    ])
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use takt_core::Input;

    use super::*;

    fn cov(family: &str, vehicles: u64) -> Change {
        Change::Coverage(takt_core::model::Coverage {
            family: family.to_owned(),
            line: "L1".to_owned(),
            vehicles,
            minutes: f64::NAN,
        })
    }

    fn entry(id: i64, micros: i64) -> JournalEntry {
        JournalEntry {
            id,
            at: Utc.timestamp_opt(1_800_000_000, 0).unwrap()
                + chrono::TimeDelta::nanoseconds(micros * 1_000),
            input: Input::TICK,
            outcome: Outcome::Applied,
            origin: Origin::default(),
        }
    }

    #[test]
    fn the_last_change_per_entity_wins_in_table_order() {
        let mut batch = Batch::default();
        let line = Change::Line(takt_core::model::LineStatus {
            line: "L1".to_owned(),
            running: true,
            reason: None,
            since: None,
            stopped_ms_total: 0,
            takt_ms: 60_000,
        });
        for change in [cov("seats", 1), line, cov("wheels", 2), cov("seats", 3)] {
            batch.push_change(change);
        }
        let tables: Vec<_> = batch
            .projections()
            .map(|(t, rows)| (t.name, rows.len()))
            .collect();
        assert_eq!(tables, [("lines", 1), ("coverage", 2)]);
        let text = |s: &str| Val::Text(Some(s.to_owned()));
        let coverage = batch.projections().nth(1).expect("coverage rows").1;
        assert_eq!(
            coverage,
            [
                vec![
                    text("L1"),
                    text("seats"),
                    Val::Int(Some(3)),
                    Val::Real(None)
                ],
                vec![
                    text("L1"),
                    text("wheels"),
                    Val::Int(Some(2)),
                    Val::Real(None)
                ],
            ]
        );
        assert_eq!(batch.changes, 4);
    }

    #[test]
    fn entries_out_of_order_or_too_precise_fail_the_batch_and_stop_it() {
        let mut batch = Batch::default();
        batch.push_entry(&entry(5, 0));
        batch.push_entry(&entry(5, 1));
        assert!(matches!(
            batch.error,
            Some(StoreError::JournalOrder { id: 5, previous: 5 })
        ));
        // Nothing after the first error is encoded.
        batch.push_entry(&entry(6, 2));
        assert_eq!(batch.entries(), 1);

        let mut batch = Batch::default();
        let mut fine = entry(1, 0);
        fine.at += chrono::TimeDelta::nanoseconds(1);
        batch.push_entry(&fine);
        assert!(matches!(
            batch.error,
            Some(StoreError::TimePrecision { id: 1, .. })
        ));
        assert!(batch.is_empty());
    }
}
