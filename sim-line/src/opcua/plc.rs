//! The PLC's memory, without IO: what each broadcast point holds and which node values each
//! event changes. Time comes in as an argument so the handshake timeout is testable.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use opcua::types::Variant;
use takt_core::RawRecord;

use super::Layout;
use super::nodes::{RECORD_FIELDS, fifo_field, node_name};

/// Node values to write, in order: a counter comes after the fields it announces.
pub(super) type Writes = Vec<(String, Variant)>;

#[derive(Debug, Default)]
struct Handshake {
    /// Records not yet presented.
    queue: VecDeque<RawRecord>,
    /// The record in the fields now (kept after its ack, as a PLC leaves its registers).
    shown: Option<RawRecord>,
    /// When the shown record was presented, while it waits for its ack.
    awaiting_since: Option<Instant>,
    counter: u32,
    acked: Option<u32>,
    no_handshake: bool,
}

#[derive(Debug, Default)]
struct Fifo {
    /// Newest first; at most `slots` long.
    records: VecDeque<RawRecord>,
    last_seq: u32,
    count: u32,
}

#[derive(Debug)]
enum Point {
    Handshake(Handshake),
    Fifo(Fifo),
}

/// Everything the simulated PLC remembers; survives server restarts.
#[derive(Debug)]
pub(super) struct Plc {
    line: String,
    layout: Layout,
    running: bool,
    stop_reason: String,
    takt_ms: u32,
    points: BTreeMap<String, Point>,
}

impl Plc {
    pub(super) fn new(line: &str, points: &[String], layout: Layout) -> Self {
        let points = points
            .iter()
            .map(|id| {
                let point = match layout {
                    Layout::Handshake { .. } => Point::Handshake(Handshake::default()),
                    Layout::Fifo { .. } => Point::Fifo(Fifo::default()),
                };
                (id.clone(), point)
            })
            .collect();
        Self {
            line: line.to_owned(),
            layout,
            running: true,
            stop_reason: String::new(),
            takt_ms: 0,
            points,
        }
    }

    fn name(&self, point: Option<&str>, field: &str) -> String {
        node_name(&self.line, point, field)
    }

    pub(super) fn set_line_state(&mut self, running: bool, reason: &str) -> Writes {
        self.running = running;
        reason.clone_into(&mut self.stop_reason);
        vec![
            (self.name(None, "StopReason"), string(reason)),
            (self.name(None, "Running"), Variant::Boolean(running)),
        ]
    }

    pub(super) fn set_takt_ms(&mut self, takt_ms: u32) -> Writes {
        self.takt_ms = takt_ms;
        vec![(self.name(None, "TaktMs"), Variant::UInt32(takt_ms))]
    }

    /// Queues (handshake) or pushes (FIFO) `record`; `None` for an unknown point.
    pub(super) fn broadcast(
        &mut self,
        point: &str,
        record: RawRecord,
        now: Instant,
    ) -> Option<Writes> {
        let slots = match self.layout {
            Layout::Fifo { slots } => slots,
            Layout::Handshake { .. } => 0,
        };
        let line = self.line.clone();
        Some(match self.points.get_mut(point)? {
            Point::Handshake(hs) => {
                hs.queue.push_back(record);
                present_next(&line, point, hs, now)
            }
            Point::Fifo(fifo) => push_fifo(&line, point, fifo, record, slots),
        })
    }

    /// A client wrote `value` to `point`'s Ack.
    pub(super) fn ack(&mut self, point: &str, value: u32, now: Instant) -> Writes {
        let line = self.line.clone();
        let Some(Point::Handshake(hs)) = self.points.get_mut(point) else {
            return Writes::new();
        };
        // The node shows what the client wrote, matching or not.
        let mut writes = vec![(node_name(&line, Some(point), "Ack"), Variant::UInt32(value))];
        if hs.awaiting_since.is_none() || value != hs.counter {
            return writes;
        }
        hs.awaiting_since = None;
        hs.acked = Some(value);
        if hs.no_handshake {
            hs.no_handshake = false;
            writes.push(no_handshake(&line, point, false));
        }
        writes.extend(present_next(&line, point, hs, now));
        writes
    }

    /// Raises `NoHandshake` on every point whose presentation has waited `ack_timeout`.
    pub(super) fn expire(&mut self, now: Instant) -> Writes {
        let Some(timeout) = self.ack_timeout() else {
            return Writes::new();
        };
        let line = self.line.clone();
        let mut writes = Writes::new();
        for (id, point) in &mut self.points {
            if let Point::Handshake(hs) = point
                && let Some(since) = hs.awaiting_since
                && !hs.no_handshake
                && now >= since + timeout
            {
                hs.no_handshake = true;
                writes.push(no_handshake(&line, id, true));
            }
        }
        writes
    }

    /// When [`expire`](Self::expire) next has something to do.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let timeout = self.ack_timeout()?;
        self.points
            .values()
            .filter_map(|point| match point {
                Point::Handshake(hs) if !hs.no_handshake => hs.awaiting_since,
                _ => None,
            })
            .min()
            .map(|since| since + timeout)
    }

    fn ack_timeout(&self) -> Option<Duration> {
        match self.layout {
            Layout::Handshake { ack_timeout } => Some(ack_timeout),
            Layout::Fifo { .. } => None,
        }
    }

    /// Every node value, for a server that starts with empty nodes.
    pub(super) fn snapshot(&self) -> Writes {
        let mut writes = vec![
            (self.name(None, "Running"), Variant::Boolean(self.running)),
            (self.name(None, "StopReason"), string(&self.stop_reason)),
            (self.name(None, "TaktMs"), Variant::UInt32(self.takt_ms)),
        ];
        for (id, point) in &self.points {
            match point {
                Point::Handshake(hs) => {
                    writes.extend(record_writes(&self.line, id, None, hs.shown.as_ref()));
                    writes.push((
                        node_name(&self.line, Some(id), "Ack"),
                        Variant::UInt32(hs.acked.unwrap_or(0)),
                    ));
                    writes.push(no_handshake(&self.line, id, hs.no_handshake));
                    writes.push(counter(&self.line, id, hs.counter));
                }
                Point::Fifo(fifo) => {
                    let slots = match self.layout {
                        Layout::Fifo { slots } => slots,
                        Layout::Handshake { .. } => 0,
                    };
                    writes.extend(fifo_writes(&self.line, id, fifo, slots));
                }
            }
        }
        writes
    }

    pub(super) fn acked(&self, point: &str) -> Option<u32> {
        self.handshake(point)?.acked
    }

    /// Handshake: records not yet acknowledged (the one presented included); FIFO: records held.
    pub(super) fn queue_len(&self, point: &str) -> usize {
        match self.points.get(point) {
            Some(Point::Handshake(hs)) => hs.queue.len() + usize::from(hs.awaiting_since.is_some()),
            Some(Point::Fifo(fifo)) => fifo.records.len(),
            None => 0,
        }
    }

    pub(super) fn no_handshake(&self, point: &str) -> bool {
        self.handshake(point).is_some_and(|hs| hs.no_handshake)
    }

    /// Handshake: the record in the fields; FIFO: the newest record.
    pub(super) fn presented(&self, point: &str) -> Option<RawRecord> {
        match self.points.get(point)? {
            Point::Handshake(hs) => hs.shown.clone(),
            Point::Fifo(fifo) => fifo.records.front().cloned(),
        }
    }

    fn handshake(&self, point: &str) -> Option<&Handshake> {
        match self.points.get(point)? {
            Point::Handshake(hs) => Some(hs),
            Point::Fifo(_) => None,
        }
    }
}

/// Presents the head of the queue unless a presentation still waits for its ack: the fields
/// first, the counter last, so a client that sees the counter move reads a whole record.
fn present_next(line: &str, point: &str, hs: &mut Handshake, now: Instant) -> Writes {
    if hs.awaiting_since.is_some() {
        return Writes::new();
    }
    let Some(record) = hs.queue.pop_front() else {
        return Writes::new();
    };
    let mut writes = record_writes(line, point, None, Some(&record));
    hs.counter = hs.counter.wrapping_add(1);
    writes.push(counter(line, point, hs.counter));
    hs.shown = Some(record);
    hs.awaiting_since = Some(now);
    writes
}

fn push_fifo(line: &str, point: &str, fifo: &mut Fifo, record: RawRecord, slots: usize) -> Writes {
    fifo.last_seq = record.seq;
    fifo.count = fifo.count.wrapping_add(1);
    fifo.records.push_front(record);
    fifo.records.truncate(slots);
    fifo_writes(line, point, fifo, slots)
}

/// All slots, then `LastSeq` and `Count` last (they announce the slots).
fn fifo_writes(line: &str, point: &str, fifo: &Fifo, slots: usize) -> Writes {
    let mut writes: Writes = (0..slots)
        .flat_map(|slot| record_writes(line, point, Some(slot), fifo.records.get(slot)))
        .collect();
    writes.push((
        node_name(line, Some(point), "LastSeq"),
        Variant::UInt32(fifo.last_seq),
    ));
    writes.push((
        node_name(line, Some(point), "Count"),
        Variant::UInt32(fifo.count),
    ));
    writes
}

/// The five record fields; an empty slot is Seq 0 and empty strings.
fn record_writes(
    line: &str,
    point: &str,
    slot: Option<usize>,
    record: Option<&RawRecord>,
) -> Writes {
    let field_name = |field: &str| match slot {
        Some(slot) => node_name(line, Some(point), &fifo_field(slot, field)),
        None => node_name(line, Some(point), field),
    };
    let (seq, vin, body, model, options) = match record {
        Some(r) => (
            r.seq,
            r.vin.as_str(),
            r.body.as_str(),
            r.model.as_str(),
            r.options.join(" "),
        ),
        None => (0, "", "", "", String::new()),
    };
    let values = [
        Variant::UInt32(seq),
        string(vin),
        string(body),
        string(model),
        string(&options),
    ];
    RECORD_FIELDS
        .iter()
        .zip(values)
        .map(|(field, value)| (field_name(field), value))
        .collect()
}

fn counter(line: &str, point: &str, value: u32) -> (String, Variant) {
    (
        node_name(line, Some(point), "Counter"),
        Variant::UInt32(value),
    )
}

fn no_handshake(line: &str, point: &str, value: bool) -> (String, Variant) {
    (
        node_name(line, Some(point), "NoHandshake"),
        Variant::Boolean(value),
    )
}

fn string(value: &str) -> Variant {
    Variant::String(value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u32) -> RawRecord {
        RawRecord {
            seq,
            vin: format!("VIN{seq}"),
            body: String::new(),
            model: "M1".to_owned(),
            options: vec!["A".to_owned(), "B".to_owned()],
        }
    }

    fn handshake_plc() -> Plc {
        Plc::new(
            "A1",
            &["B1".to_owned()],
            Layout::Handshake {
                ack_timeout: Duration::from_secs(1),
            },
        )
    }

    fn names(writes: &Writes) -> Vec<&str> {
        writes.iter().map(|(name, _)| name.as_str()).collect()
    }

    #[test]
    fn a_presentation_writes_the_counter_last() {
        let mut plc = handshake_plc();
        let writes = plc
            .broadcast("B1", record(1), Instant::now())
            .expect("known point");
        assert_eq!(
            names(&writes),
            [
                "A1.B1.Seq",
                "A1.B1.Vin",
                "A1.B1.Body",
                "A1.B1.Model",
                "A1.B1.Options",
                "A1.B1.Counter"
            ]
        );
        assert_eq!(writes[4].1, Variant::String("A B".into()));
        assert_eq!(writes[5].1, Variant::UInt32(1));
    }

    #[test]
    fn no_handshake_rises_once_at_the_deadline_and_the_ack_clears_it() {
        let mut plc = handshake_plc();
        let t0 = Instant::now();
        plc.broadcast("B1", record(1), t0);
        plc.broadcast("B1", record(2), t0);
        let deadline = plc.next_deadline().expect("waiting for an ack");
        assert_eq!(deadline, t0 + Duration::from_secs(1));
        assert!(plc.expire(deadline - Duration::from_millis(1)).is_empty());
        assert_eq!(names(&plc.expire(deadline)), ["A1.B1.NoHandshake"]);
        assert!(plc.expire(deadline).is_empty(), "raised once");
        assert_eq!(plc.next_deadline(), None);

        let writes = plc.ack("B1", 1, deadline);
        assert_eq!(writes[0], ("A1.B1.Ack".to_owned(), Variant::UInt32(1)));
        assert_eq!(
            writes[1],
            ("A1.B1.NoHandshake".to_owned(), Variant::Boolean(false))
        );
        assert_eq!(
            writes.last(),
            Some(&("A1.B1.Counter".to_owned(), Variant::UInt32(2)))
        );
        assert_eq!(plc.presented("B1").map(|r| r.seq), Some(2));
    }

    #[test]
    fn fifo_keeps_the_newest_slots_and_counts_every_push() {
        let mut plc = Plc::new("A1", &["B1".to_owned()], Layout::Fifo { slots: 2 });
        let now = Instant::now();
        let writes = plc.broadcast("B1", record(7), now).expect("known point");
        // Slot 1 is still empty: Seq 0 and empty strings.
        assert!(writes.contains(&("A1.B1.Fifo[1].Seq".to_owned(), Variant::UInt32(0))));
        assert!(writes.contains(&("A1.B1.Fifo[1].Vin".to_owned(), Variant::String("".into()))));
        plc.broadcast("B1", record(8), now);
        let writes = plc.broadcast("B1", record(9), now).expect("known point");
        let tail: Vec<_> = writes.iter().rev().take(2).cloned().collect();
        assert_eq!(
            tail,
            [
                ("A1.B1.Count".to_owned(), Variant::UInt32(3)),
                ("A1.B1.LastSeq".to_owned(), Variant::UInt32(9)),
            ]
        );
        assert!(writes.contains(&("A1.B1.Fifo[1].Seq".to_owned(), Variant::UInt32(8))));
        assert_eq!(plc.queue_len("B1"), 2);
    }
}
