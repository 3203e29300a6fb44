//! The picking context: pick/put stations with their queues and open tasks, the racks they fill,
//! and the coverage that measures what is ready ahead of the line.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ConfigIndex;
use crate::model::{CallId, Coverage, LightTarget, Rack, RackStatus, Task, TaskId};

/// What happens at the stations and to the racks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PickingInput {
    /// A confirm button pressed at a pick station.
    Press {
        station: String,
        button: LightTarget,
    },
    /// Close a family's open rack before it is full.
    CloseRack { family: String },
    /// A closed rack left for the line (`shipped`) or arrived there (`delivered`).
    RackMoved { rack: String, to: RackStatus },
    /// Clear error lights at a station and light its current task again.
    ResetStation { station: String },
}

impl PickingInput {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Press { .. } => "press",
            Self::CloseRack { .. } => "close_rack",
            Self::RackMoved { .. } => "rack_moved",
            Self::ResetStation { .. } => "reset_station",
        }
    }
}

/// The context's state: racks not yet emptied at the line, each station's work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Picking {
    pub(crate) stations: BTreeMap<String, StationState>,
    pub(crate) racks: BTreeMap<String, Rack>,
    /// Family → its open rack.
    pub(crate) open_racks: BTreeMap<String, String>,
    /// Family → number of the last rack opened.
    rack_numbers: BTreeMap<String, u64>,
    next_task: u64,
    /// Family → its coverage as last measured.
    pub(crate) coverage: BTreeMap<String, Coverage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StationState {
    pub(crate) family: String,
    /// Calls waiting to be picked, in sequence order.
    pub(crate) queue: BTreeSet<(u64, CallId)>,
    pub(crate) task: Option<Task>,
    /// Buttons showing a wrong-press light.
    pub(crate) errors: BTreeSet<LightTarget>,
    /// The button that confirmed the last task, and when: a second press of it is a repeat.
    pub(crate) confirmed: Option<(LightTarget, DateTime<Utc>)>,
}

impl Picking {
    /// A station for every family picked in the plant, idle; no racks yet.
    pub(crate) fn new(cfg: &ConfigIndex) -> Self {
        let stations = cfg
            .config
            .families
            .iter()
            .filter_map(|f| {
                let station = f.station.as_ref()?;
                let state = StationState {
                    family: f.id.clone(),
                    queue: BTreeSet::new(),
                    task: None,
                    errors: BTreeSet::new(),
                    confirmed: None,
                };
                Some((station.clone(), state))
            })
            .collect();
        Self {
            stations,
            racks: BTreeMap::new(),
            open_racks: BTreeMap::new(),
            rack_numbers: BTreeMap::new(),
            next_task: 1,
            coverage: BTreeMap::new(),
        }
    }

    pub(crate) fn next_task_id(&mut self) -> TaskId {
        let id = TaskId(self.next_task);
        self.next_task += 1;
        id
    }

    /// Opens the family's next rack (numbered from 1 per family) and returns its id.
    pub(crate) fn open_rack(&mut self, now: DateTime<Utc>, family: &str, size: u32) -> String {
        let number = self.rack_numbers.entry(family.to_owned()).or_insert(0);
        *number += 1;
        let id = format!("{family}-{number:06}");
        let rack = Rack {
            id: id.clone(),
            family: family.to_owned(),
            number: *number,
            size,
            slots: vec![None; size as usize],
            status: RackStatus::Open,
            opened_at: now,
            changed_at: now,
        };
        self.racks.insert(id.clone(), rack);
        self.open_racks.insert(family.to_owned(), id.clone());
        id
    }

    /// The slot of a rack that a put is waiting for, if one is.
    pub(crate) fn pending_put(&self, rack: &str) -> Option<u32> {
        self.stations
            .values()
            .find_map(|s| match s.task.as_ref().map(|t| &t.kind) {
                Some(crate::model::TaskKind::Put { rack: r, slot }) if r == rack => Some(*slot),
                _ => None,
            })
    }
}
