//! The ground truth: one JSON object per line for everything the simulated plant did —
//! broadcasts, line state, faults, lamp writes and button presses — so that a run can be
//! checked against the controller's journal afterwards.
//!
//! Every entry carries `t_us` (microseconds since the run started, monotonic) and `unix_ms`
//! (wall clock, to line entries up with another process's log).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use takt_core::RawRecord;

use crate::lock;
use crate::scenario::Fault;

/// One thing that happened on the simulated floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Fact {
    /// A record handed to the line's PLC at a broadcast point; `step` is its index in the plan.
    Broadcast {
        step: usize,
        point: String,
        vehicle: u32,
        record: RawRecord,
    },
    LineStopped {
        reason: String,
    },
    LineRunning,
    /// A fault acted out (from the scenario or injected at run time).
    Fault {
        fault: Fault,
    },
    /// A device restart finished: the module serves again, with every lamp dark.
    DeviceBack {
        device: String,
    },
    /// A lamp changed: a write reached it, or its module's reboot darkened it.
    Lamp {
        device: String,
        unit: u8,
        position: u16,
        colour: u16,
        digits: u16,
        blink: u16,
    },
    /// An operator pressed a button (held for the floor's `hold_ms`); `wrong` marks a
    /// deliberate wrong pick.
    Press {
        device: String,
        unit: u8,
        position: u16,
        wrong: bool,
    },
    /// The scenario's last step has been played.
    Finished,
}

/// A [`Fact`] with its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub t_us: u64,
    pub unix_ms: u64,
    #[serde(flatten)]
    pub fact: Fact,
}

/// Where facts are written; cheap to clone, safe to share between tasks.
#[derive(Debug, Clone)]
pub struct Truth {
    start: Instant,
    out: Arc<Mutex<Option<BufWriter<File>>>>,
    /// In-memory copy, for tests (a long-running simulator keeps only the file).
    kept: Option<Arc<Mutex<Vec<Entry>>>>,
}

impl Truth {
    /// Appends to the file at `path` (created if missing).
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn append_to(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self::with(Some(BufWriter::new(file)), false))
    }

    /// Keeps the facts in memory only ([`entries`](Self::entries)).
    #[must_use]
    pub fn in_memory() -> Self {
        Self::with(None, true)
    }

    fn with(out: Option<BufWriter<File>>, keep: bool) -> Self {
        Self {
            start: Instant::now(),
            out: Arc::new(Mutex::new(out)),
            kept: keep.then(Arc::default),
        }
    }

    /// Microseconds since the run started for `at`.
    #[must_use]
    pub fn t_us(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX)
    }

    /// Records `fact` as happening now.
    pub fn record(&self, fact: Fact) {
        self.record_at(Instant::now(), fact);
    }

    /// Records `fact` as happening at `at`. Written through at once: the log must hold
    /// everything up to a crash of the simulator.
    pub fn record_at(&self, at: Instant, fact: Fact) {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let entry = Entry {
            t_us: self.t_us(at),
            unix_ms,
            fact,
        };
        if let Some(out) = lock(&self.out).as_mut() {
            let written = serde_json::to_writer(&mut *out, &entry)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush());
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot write the ground-truth log");
            }
        }
        if let Some(kept) = &self.kept {
            lock(kept).push(entry);
        }
    }

    /// Every fact recorded by this process, in order (empty unless [`in_memory`](Self::in_memory)).
    #[must_use]
    pub fn entries(&self) -> Vec<Entry> {
        self.kept
            .as_ref()
            .map(|k| lock(k).clone())
            .unwrap_or_default()
    }
}

/// Reads a ground-truth file back (a half-written last line, from a crash, is skipped).
///
/// # Errors
/// When the file cannot be read.
pub fn read(path: &Path) -> io::Result<Vec<Entry>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    for line in BufReader::new(file).lines() {
        if let Ok(entry) = serde_json::from_str(&line?) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_reads_back_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("truth.jsonl");
        let truth = Truth::append_to(&path).expect("open");
        truth.record(Fact::LineRunning);
        truth.record(Fact::Fault {
            fault: Fault::Duplicate,
        });
        drop(truth);
        // A crash in the middle of a line.
        let mut file = OpenOptions::new().append(true).open(&path).expect("reopen");
        file.write_all(b"{\"t_us\":1,\"unix_").expect("write");
        let facts: Vec<Fact> = read(&path)
            .expect("read")
            .into_iter()
            .map(|e| e.fact)
            .collect();
        assert_eq!(
            facts,
            vec![
                Fact::LineRunning,
                Fact::Fault {
                    fault: Fault::Duplicate
                }
            ]
        );
        assert!(
            read(&dir.path().join("none.jsonl"))
                .expect("missing")
                .is_empty()
        );
    }
}
