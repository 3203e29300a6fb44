//! Idempotency keys: a retried API command is answered from the journal entry its key first
//! made, and journals nothing.
//!
//! The writer checks and records keys as it stages, one input at a time, so two retries racing
//! each other cannot both be journaled: the second sees the first even before it commits. Keys
//! are scoped by actor (two clients may pick the same key) and kept for [`KEPT_FOR`]; on start
//! they are read back from the journal, which holds every key with its entry.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use takt_core::{Input, Outcome};

use crate::store::{JournalEntry, Origin, Store, StoreError};

/// How long a key is remembered: a client retrying later than this makes a new request.
pub const KEPT_FOR: TimeDelta = TimeDelta::hours(24);

/// (actor, key).
type Scoped = (String, String);

/// The entry a key made.
#[derive(Debug, Clone)]
struct Remembered {
    id: i64,
    outcome: Outcome,
    input: Input,
}

/// What a submission's key says about it.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// No key, or a key not seen before: journal it.
    New,
    /// The same request again: answer with the first entry's id and outcome.
    Repeat { id: i64, outcome: Outcome },
    /// The key was used for a different request.
    Conflict { id: i64 },
}

/// Keys remembered, with their expiry order.
#[derive(Debug, Default)]
pub struct Keys {
    by_key: HashMap<Scoped, Remembered>,
    by_age: VecDeque<(DateTime<Utc>, Scoped)>,
}

fn scoped(origin: &Origin) -> Option<Scoped> {
    let key = origin.idempotency_key.clone()?;
    Some((origin.actor.clone().unwrap_or_default(), key))
}

impl Keys {
    /// The keys journaled within [`KEPT_FOR`] of `now`.
    pub async fn load(store: &Store, now: DateTime<Utc>) -> Result<Self, StoreError> {
        let mut keys = Self::default();
        for entry in store.journal_keyed_since(now - KEPT_FOR).await? {
            keys.remember(&entry);
        }
        Ok(keys)
    }

    pub fn check(&self, origin: &Origin, input: &Input) -> Seen {
        let Some(remembered) = scoped(origin).and_then(|k| self.by_key.get(&k)) else {
            return Seen::New;
        };
        if remembered.input == *input {
            Seen::Repeat {
                id: remembered.id,
                outcome: remembered.outcome.clone(),
            }
        } else {
            Seen::Conflict { id: remembered.id }
        }
    }

    /// Remember `entry`'s key, if it has one; forget keys older than [`KEPT_FOR`].
    pub fn remember(&mut self, entry: &JournalEntry) {
        while let Some((at, _)) = self.by_age.front()
            && *at < entry.at - KEPT_FOR
        {
            if let Some((_, key)) = self.by_age.pop_front() {
                self.by_key.remove(&key);
            }
        }
        let Some(key) = scoped(&entry.origin) else {
            return;
        };
        self.by_age.push_back((entry.at, key.clone()));
        self.by_key.insert(
            key,
            Remembered {
                id: entry.id,
                outcome: entry.outcome.clone(),
                input: entry.input.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use takt_core::AlarmInput;

    fn entry(id: i64, hours: i64, actor: &str, key: &str, alarm: &str) -> JournalEntry {
        JournalEntry {
            id,
            at: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::hours(hours),
            input: Input::Alarms(AlarmInput::Acknowledge {
                alarm: alarm.into(),
            }),
            outcome: Outcome::Applied,
            origin: Origin {
                actor: Some(actor.into()),
                note: None,
                idempotency_key: Some(key.into()),
            },
        }
    }

    #[test]
    fn repeat_conflict_scope_and_expiry() {
        let mut keys = Keys::default();
        let first = entry(1, 0, "hmi", "k", "a1");
        keys.remember(&first);
        assert_eq!(
            keys.check(&first.origin, &first.input),
            Seen::Repeat {
                id: 1,
                outcome: Outcome::Applied
            }
        );
        let other_body = entry(2, 0, "hmi", "k", "a2");
        assert_eq!(
            keys.check(&other_body.origin, &other_body.input),
            Seen::Conflict { id: 1 }
        );
        let other_actor = entry(3, 0, "planner", "k", "a1");
        assert_eq!(
            keys.check(&other_actor.origin, &other_actor.input),
            Seen::New
        );
        let no_key = Origin::default();
        assert_eq!(keys.check(&no_key, &first.input), Seen::New);
        // A day and an hour later the first key is gone.
        keys.remember(&entry(4, 25, "hmi", "k2", "a1"));
        assert_eq!(keys.check(&first.origin, &first.input), Seen::New);
    }
}
