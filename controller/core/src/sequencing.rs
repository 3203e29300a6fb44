//! The sequencing context: each line's broadcast points (the tracker that orders their
//! records and what sits at each recent position), the live vehicles and their sequence calls.
//!
//! Its state answers "which vehicle is where, and what does it need"; the flows that turn its
//! changes into picks, racks and alarms live with `Core`, which composes the contexts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ConfigIndex;
use crate::io::Outcome;
use crate::model::{Call, CallId, LineStatus, Vehicle, VehicleId};
use crate::record::RawRecord;
use crate::tracker::Tracker;
use crate::vin::Vin;

/// What happens to the sequence: records read, vehicles moved or withdrawn, the line stopping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SequencingInput {
    /// A record read at a broadcast point.
    Broadcast {
        line: String,
        point: String,
        record: RawRecord,
    },
    /// A vehicle held for repair re-enters the sequence under number `seq`.
    Resequence {
        line: String,
        point: String,
        vin: String,
        seq: u32,
    },
    /// A vehicle leaves the sequence for good.
    Cancel { line: String, vin: String },
    LineState {
        line: String,
        running: bool,
        reason: Option<String>,
    },
    /// A supervisor names the part for an unresolved (or not yet picked) call.
    ResolveCall { call: CallId, part: String },
}

impl SequencingInput {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Broadcast { .. } => "broadcast",
            Self::Resequence { .. } => "resequence",
            Self::Cancel { .. } => "cancel",
            Self::LineState { .. } => "line_state",
            Self::ResolveCall { .. } => "resolve_call",
        }
    }
}

/// The context's state. Only live things: vehicles between broadcast point and their last
/// install station, and their calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequencing {
    pub(crate) lines: BTreeMap<String, LineState>,
    pub(crate) vehicles: BTreeMap<VehicleId, Vehicle>,
    pub(crate) calls: BTreeMap<CallId, Call>,
    next_vehicle: u64,
    next_call: u64,
    /// `line/point` (as its alarms name it) → whether each of its last records was rejected,
    /// oldest first. A string key: JSON map keys must be strings.
    pub(crate) recent_records: BTreeMap<String, VecDeque<bool>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LineState {
    pub(crate) status: LineStatus,
    pub(crate) points: BTreeMap<String, PointState>,
    /// When the line's next takt status is due; `None` until the first input.
    pub(crate) takt_status_due: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PointState {
    pub(crate) tracker: Tracker,
    /// What sits at each recent position, up to the farthest install station.
    pub(crate) at: BTreeMap<u64, Occupant>,
    pub(crate) by_vin: BTreeMap<Vin, u64>,
    /// VINs with an explicit resequence on its way through the tracker.
    pub(crate) resequences: BTreeSet<Vin>,
    /// Positions from this point to its farthest install station.
    pub(crate) max_offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Occupant {
    Vehicle(VehicleId),
    /// Never broadcast to us (gap given up, jump) or rejected after settling.
    Unknown,
    /// The vehicle was cancelled or moved away by a resequence: nothing needed here.
    Vacated,
}

impl Sequencing {
    /// Every configured line, running, with nothing broadcast yet.
    pub(crate) fn new(cfg: &ConfigIndex) -> Self {
        let lines = cfg
            .config
            .lines
            .iter()
            .map(|line| {
                let points = line
                    .broadcast_points
                    .iter()
                    .map(|p| {
                        let max_offset = line
                            .install_stations
                            .iter()
                            .filter(|s| s.broadcast_point == p.id)
                            .map(|s| u64::from(s.offset_positions))
                            .max()
                            .unwrap_or(0);
                        let point = PointState {
                            tracker: Tracker::new(line.modulus, line.window),
                            at: BTreeMap::new(),
                            by_vin: BTreeMap::new(),
                            resequences: BTreeSet::new(),
                            max_offset,
                        };
                        (p.id.clone(), point)
                    })
                    .collect();
                let status = LineStatus {
                    line: line.id.clone(),
                    running: true,
                    reason: None,
                    since: None,
                    stopped_ms_total: 0,
                    takt_ms: line.takt_ms,
                };
                let state = LineState {
                    status,
                    points,
                    takt_status_due: None,
                };
                (line.id.clone(), state)
            })
            .collect();
        Self {
            lines,
            vehicles: BTreeMap::new(),
            calls: BTreeMap::new(),
            next_vehicle: 1,
            next_call: 1,
            recent_records: BTreeMap::new(),
        }
    }

    pub(crate) fn point(&self, line: &str, point: &str) -> Option<&PointState> {
        self.lines.get(line)?.points.get(point)
    }

    pub(crate) fn point_mut(&mut self, line: &str, point: &str) -> Option<&mut PointState> {
        self.lines.get_mut(line)?.points.get_mut(point)
    }

    /// Ids are given out in journal order, so a replay gives the same ones.
    pub(crate) fn next_vehicle_id(&mut self) -> VehicleId {
        let id = VehicleId(self.next_vehicle);
        self.next_vehicle += 1;
        id
    }

    pub(crate) fn next_call_id(&mut self) -> CallId {
        let id = CallId(self.next_call);
        self.next_call += 1;
        id
    }

    /// When any point next gives up waiting for a missing record, or a line's takt status is due.
    pub(crate) fn next_deadline(&self, gap_timeout: TimeDelta) -> Option<DateTime<Utc>> {
        let gaps = self
            .lines
            .values()
            .flat_map(|l| l.points.values())
            .filter_map(|p| p.tracker.gap_deadline(gap_timeout));
        gaps.chain(self.next_takt_status()).min()
    }

    /// When the next takt status is due on any line, if one has been sent yet.
    pub(crate) fn next_takt_status(&self) -> Option<DateTime<Utc>> {
        self.lines
            .values()
            .filter_map(|ls| ls.takt_status_due)
            .min()
    }

    /// The line started or stopped at `now`: its status, and the calls whose due time moved
    /// (a stop ending makes every part still to be installed needed that much later).
    /// `Err` with the outcome when nothing changes.
    pub(crate) fn set_running(
        &mut self,
        now: DateTime<Utc>,
        line: &str,
        running: bool,
        reason: Option<String>,
    ) -> Result<(LineStatus, Vec<CallId>), Outcome> {
        let Some(ls) = self.lines.get_mut(line) else {
            return Err(Outcome::Rejected(format!("no line `{line}`")));
        };
        let status = &mut ls.status;
        if status.running == running {
            let state = if running { "running" } else { "stopped" };
            return Err(Outcome::Ignored(format!(
                "line `{line}` is already {state}"
            )));
        }
        let mut stop_ms = 0;
        if running {
            stop_ms = status
                .since
                .map_or(0, |since| (now - since).num_milliseconds().max(0));
            status.stopped_ms_total += stop_ms;
            status.reason = None;
        } else {
            status.reason = reason;
        }
        status.running = running;
        status.since = Some(now);
        let status = status.clone();
        let mut shifted = Vec::new();
        if stop_ms > 0 {
            let shift = TimeDelta::milliseconds(stop_ms);
            for call in self.calls.values_mut() {
                if call.line == line && !call.status.is_final() {
                    call.due_at += shift;
                    shifted.push(call.id);
                }
            }
        }
        Ok((status, shifted))
    }

    /// Where a VIN stands on each broadcast point of a line; an error if it stands nowhere.
    pub(crate) fn positions_of(&self, line: &str, vin: &Vin) -> Result<Vec<(String, u64)>, String> {
        let ls = self
            .lines
            .get(line)
            .ok_or_else(|| format!("no line `{line}`"))?;
        let found: Vec<(String, u64)> = ls
            .points
            .iter()
            .filter_map(|(p, ps)| ps.by_vin.get(vin).map(|pos| (p.clone(), *pos)))
            .collect();
        if found.is_empty() {
            return Err(format!("VIN {vin} is not in sequence on line `{line}`"));
        }
        Ok(found)
    }
}
