//! Sequence tracker: one per broadcast point, turns records arriving in any order into
//! positions settled strictly in sequence.
//!
//! Internally every record gets an *absolute position* (a counter that never wraps), so the rest
//! of the core never does modular arithmetic. Records ahead of a gap are held until the gap is
//! filled or its time runs out; then the missing positions settle as *unknown* and the held
//! records follow in order.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::record::{PayloadDigest, Record};
use crate::seq::SeqNo;

/// What a position turned out to hold, released strictly in position order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Settled {
    Vehicle {
        pos: u64,
        record: Record,
    },
    /// `count` positions from `pos` on were never broadcast to us (gap expired or jump).
    Unknown {
        pos: u64,
        first_seq: SeqNo,
        count: u64,
    },
}

/// What offering one record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// Positions settled, in order (the record itself and any held ones it unblocked).
    Settled(Vec<Settled>),
    /// Held behind a gap; `missing` is the range to backfill (inclusive), `new_gap` if it was not
    /// already being waited for.
    Held {
        missing: (SeqNo, SeqNo),
        new_gap: bool,
    },
    /// Same number, same payload as what we have: nothing to do.
    Duplicate,
    /// Same number as a settled position, different payload.
    Correction { pos: u64, record: Record },
    /// A number whose position was already settled as unknown.
    Late,
    /// More than the window but less than half the counter ahead: the source jumped.
    /// The skipped positions are settled unknown, then the record.
    Jump(Vec<Settled>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    modulus: u32,
    window: u32,
    expected: Option<SeqNo>,
    next_pos: u64,
    held: BTreeMap<u64, Record>,
    gap_since: Option<DateTime<Utc>>,
    /// How many settled positions are remembered to tell repeats from new records.
    history: u32,
    /// The last `history` settled positions, oldest first, with their payload's digest:
    /// `None` where unknown.
    recent: VecDeque<(u64, Option<PayloadDigest>)>,
}

/// Remember at least this many settled records: a FIFO re-read after a reconnect repeats up to
/// its depth, and a repeat must be recognised as one, not mistaken for a jump.
const HISTORY_MIN: u32 = 1024;

impl Tracker {
    pub fn new(modulus: u32, window: u32) -> Self {
        Self {
            modulus,
            window,
            expected: None,
            next_pos: 0,
            held: BTreeMap::new(),
            gap_since: None,
            // Serial-number arithmetic (RFC 1982): anything under half the counter behind is "behind".
            history: window.max(HISTORY_MIN).min(modulus / 2),
            recent: VecDeque::new(),
        }
    }

    /// The number expected next, once anything has been seen.
    pub fn expected(&self) -> Option<SeqNo> {
        self.expected
    }

    /// The absolute position the next settled record takes.
    pub fn next_pos(&self) -> u64 {
        self.next_pos
    }

    /// When the current gap times out, if one is open.
    pub fn gap_deadline(&self, timeout: TimeDelta) -> Option<DateTime<Utc>> {
        self.gap_since.map(|t| t + timeout)
    }

    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    pub fn offer(&mut self, now: DateTime<Utc>, record: Record) -> Offered {
        let Some(expected) = self.expected else {
            self.expected = Some(record.seq);
            return Offered::Settled(self.settle_record(record));
        };
        let ahead = record.seq.ahead_of(expected, self.modulus);
        if ahead == 0 {
            let mut out = self.settle_record(record);
            out.extend(self.release_held());
            if self.held.is_empty() {
                self.gap_since = None;
            }
            return Offered::Settled(out);
        }
        if ahead < self.window {
            let pos = self.next_pos + u64::from(ahead);
            if self
                .held
                .get(&pos)
                .is_some_and(|old| old.same_payload(&record))
            {
                return Offered::Duplicate;
            }
            // A repeat of a held record with a new payload simply replaces it: nothing acted on it yet.
            self.held.insert(pos, record);
            let new_gap = self.gap_since.is_none();
            if new_gap {
                self.gap_since = Some(now);
            }
            let last_missing = self.first_held_pos().unwrap_or(pos) - self.next_pos;
            return Offered::Held {
                missing: (expected, expected.plus(last_missing - 1, self.modulus)),
                new_gap,
            };
        }
        if ahead >= self.modulus.div_ceil(2) {
            let behind = expected.ahead_of(record.seq, self.modulus);
            let pos = self.next_pos.checked_sub(u64::from(behind));
            let digest = record.digest();
            return match self.recent.iter_mut().find(|(p, _)| Some(*p) == pos) {
                Some((_, Some(have))) if *have == digest => Offered::Duplicate,
                Some((_, Some(have))) => {
                    *have = digest;
                    Offered::Correction {
                        pos: pos.unwrap_or_default(),
                        record,
                    }
                }
                // Settled as unknown, or older than anything remembered.
                Some((_, None)) | None => Offered::Late,
            };
        }
        // A jump: give up on any gap first, then skip to the record.
        let mut out = self.expire_all();
        let expected = self.expected.unwrap_or(record.seq);
        let ahead = record.seq.ahead_of(expected, self.modulus);
        if ahead > 0 {
            out.push(self.settle_unknown(expected, u64::from(ahead)));
        }
        out.extend(self.settle_record(record));
        out.extend(self.release_held());
        Offered::Jump(out)
    }

    /// Give up on a gap whose time is up; returns what settles (unknown positions, then held records).
    pub fn expire(&mut self, now: DateTime<Utc>, timeout: TimeDelta) -> Vec<Settled> {
        match self.gap_since {
            Some(since) if since + timeout <= now => {
                let out = self.expire_one();
                self.gap_since = if self.held.is_empty() {
                    None
                } else {
                    Some(now)
                };
                out
            }
            _ => Vec::new(),
        }
    }

    fn expire_all(&mut self) -> Vec<Settled> {
        let mut out = Vec::new();
        while !self.held.is_empty() {
            out.extend(self.expire_one());
        }
        self.gap_since = None;
        out
    }

    fn expire_one(&mut self) -> Vec<Settled> {
        let Some(first) = self.first_held_pos() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(expected) = self.expected {
            out.push(self.settle_unknown(expected, first - self.next_pos));
        }
        out.extend(self.release_held());
        out
    }

    fn first_held_pos(&self) -> Option<u64> {
        self.held.keys().next().copied()
    }

    fn release_held(&mut self) -> Vec<Settled> {
        let mut out = Vec::new();
        while let Some(record) = self.held.remove(&self.next_pos) {
            out.extend(self.settle_record(record));
        }
        out
    }

    fn settle_record(&mut self, record: Record) -> Vec<Settled> {
        let pos = self.next_pos;
        self.remember(pos, Some(record.digest()));
        self.next_pos += 1;
        self.expected = Some(record.seq.next(self.modulus));
        vec![Settled::Vehicle { pos, record }]
    }

    fn settle_unknown(&mut self, first_seq: SeqNo, count: u64) -> Settled {
        let pos = self.next_pos;
        // Only the last `history` of them can ever be asked about again.
        for p in pos + count.saturating_sub(u64::from(self.history))..pos + count {
            self.remember(p, None);
        }
        self.next_pos += count;
        self.expected = Some(first_seq.plus(count, self.modulus));
        Settled::Unknown {
            pos,
            first_seq,
            count,
        }
    }

    fn remember(&mut self, pos: u64, digest: Option<PayloadDigest>) {
        self.recent.push_back((pos, digest));
        while self.recent.len() > self.history as usize {
            self.recent.pop_front();
        }
    }
}
