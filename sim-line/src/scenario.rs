//! Scenarios: what the simulated line does, deterministic from a seed.
//!
//! A scenario file names a seed, how many vehicles, their model and option mix, line stops and
//! faults. [`Scenario::plan`] turns it, with the plant's configuration, into a timeline of
//! [`Step`]s: every broadcast record at every broadcast point, line stops and starts, and the
//! faults the server must act out. The same scenario and plant always give the same timeline,
//! so a run can be compared with the controller's journal afterwards (the timeline *is* the
//! ground truth of what was sent).

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use takt_core::{PlantConfig, RawRecord, Vin};

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub seed: u64,
    pub vehicles: u32,
    /// Line to simulate; the plant's first line when left out.
    #[serde(default)]
    pub line: Option<String>,
    /// Sequence number of the first vehicle (set it near the modulus to exercise the wrap).
    #[serde(default)]
    pub start_seq: u32,
    /// How much faster than real time the line runs: 60 makes a 60 s takt last one second.
    #[serde(default = "real_time")]
    pub acceleration: f64,
    /// Positions from the first broadcast point to each later one (a late broadcast point sees
    /// a vehicle that many takts later). Points not listed: 0.
    #[serde(default)]
    pub point_offsets: BTreeMap<String, u32>,
    /// Model weights; empty means every model of the plant equally often.
    #[serde(default)]
    pub models: BTreeMap<String, f64>,
    /// Per option key, value weights; keys not listed take each of the plant's values equally.
    #[serde(default)]
    pub options: BTreeMap<String, BTreeMap<String, f64>>,
    #[serde(default)]
    pub stops: Vec<StopPlan>,
    #[serde(default)]
    pub faults: Vec<FaultPlan>,
}

fn real_time() -> f64 {
    1.0
}

/// A line stop after the given vehicle's broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopPlan {
    pub after_vehicle: u32,
    pub duration_ms: u64,
    pub reason: String,
}

/// A fault injected after the given vehicle's broadcast.
///
/// Not `deny_unknown_fields`: serde cannot combine it with `flatten`; a misspelt field of a
/// fault still fails as a missing one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    pub after_vehicle: u32,
    /// Plant time after that vehicle's broadcast (0: with it). A light module rebooting
    /// mid-takt finds lamps lit; one rebooting with the broadcast finds the stations idle.
    #[serde(default)]
    pub after_ms: u64,
    #[serde(flatten)]
    pub fault: Fault,
}

/// What can go wrong on the line side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fault")]
pub enum Fault {
    /// Close every client session (the server keeps running).
    DropSessions,
    /// Stop the server and start it again on the same port.
    RestartServer,
    /// A light module reboots: its connection drops, its lamps go dark, and it is back on
    /// the same port after `down_ms` (wall-clock).
    RestartDevice {
        device: String,
        #[serde(default)]
        down_ms: u64,
    },
    /// The next `count` records are published late, after the one that follows them: a gap
    /// the controller can backfill from the FIFO.
    Gap { count: u32 },
    /// The next `count` sequence numbers are never published: positions that stay unknown.
    Skip { count: u32 },
    /// The last record is published again, unchanged.
    Duplicate,
    /// The last record is published again with one option changed.
    Correction,
    /// Nothing is published for this long (the line keeps moving).
    StopBroadcasting { duration_ms: u64 },
}

/// One thing the simulated line does, at `at_ms` of plant time (before acceleration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub at_ms: u64,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// Publish a record at a broadcast point; `vehicle` numbers the vehicle in the scenario.
    Broadcast {
        point: String,
        vehicle: u32,
        record: RawRecord,
    },
    LineStopped {
        reason: String,
    },
    LineRunning,
    /// A fault for the server to act out (gaps, skips, duplicates and corrections are already
    /// in the broadcasts; this marks where they happen).
    Fault(Fault),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scenario: {field}: {message}")]
pub struct ScenarioError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError {
        field: field.into(),
        message: message.into(),
    }
}

impl Scenario {
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|e| err("file", e.to_string()))
    }

    /// The timeline this scenario plays on `plant`.
    pub fn plan(&self, plant: &PlantConfig) -> Result<Vec<Step>, ScenarioError> {
        let line = match &self.line {
            Some(id) => plant
                .lines
                .iter()
                .find(|l| l.id == *id)
                .ok_or_else(|| err("line", format!("no line `{id}` in the plant")))?,
            None => plant
                .lines
                .first()
                .ok_or_else(|| err("line", "the plant has no line"))?,
        };
        if self.acceleration.is_nan() || self.acceleration <= 0.0 {
            return Err(err("acceleration", "must be greater than 0"));
        }
        if self.start_seq >= line.modulus {
            return Err(err(
                "start_seq",
                format!("must be below the line's modulus {}", line.modulus),
            ));
        }
        for point in self.point_offsets.keys() {
            if !line.broadcast_points.iter().any(|p| p.id == *point) {
                return Err(err(
                    format!("point_offsets.{point}"),
                    "no such broadcast point",
                ));
            }
        }
        let models = self.model_mix(plant)?;
        let options = self.option_mix(plant)?;
        for (i, f) in self.faults.iter().enumerate() {
            if f.after_vehicle >= self.vehicles {
                return Err(err(
                    format!("faults[{i}].after_vehicle"),
                    "beyond the last vehicle",
                ));
            }
        }

        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let records: Vec<RawRecord> = (0..self.vehicles)
            .map(|n| {
                let model = pick(&mut rng, &models).clone();
                let options = options
                    .iter()
                    .map(|(key, values)| format!("{key}={}", pick(&mut rng, values)))
                    .collect();
                RawRecord {
                    seq: ((u64::from(self.start_seq) + u64::from(n)) % u64::from(line.modulus))
                        as u32,
                    vin: vin(self.seed, n),
                    body: format!("B{n:06}"),
                    model,
                    options,
                }
            })
            .collect();

        let takt_ms = line.takt_ms;
        let offsets = &self.point_offsets;
        let mut steps = Vec::new();
        let mut stopped_ms = 0;
        // Records overtaken by the next one (gap fault) and records kept back while broadcasting
        // is stopped, which catch up in order when it resumes.
        let mut late: Vec<(u32, RawRecord)> = Vec::new();
        let mut backlog: Vec<(u32, RawRecord)> = Vec::new();
        let (mut gap_left, mut skip_left, mut silent_until) = (0, 0, 0);
        for n in 0..self.vehicles {
            let at = u64::from(n) * takt_ms + stopped_ms;
            let record = &records[n as usize];
            if skip_left > 0 {
                skip_left -= 1;
            } else if at < silent_until {
                backlog.push((n, record.clone()));
            } else if gap_left > 0 {
                gap_left -= 1;
                late.push((n, record.clone()));
            } else {
                for (v, r) in backlog.drain(..) {
                    steps.extend(publish(line, v, &r, at, takt_ms, offsets));
                }
                steps.extend(publish(line, n, record, at, takt_ms, offsets));
                for (v, r) in late.drain(..) {
                    steps.extend(publish(line, v, &r, at, takt_ms, offsets));
                }
            }
            for f in self.faults.iter().filter(|f| f.after_vehicle == n) {
                let fault_at = at + f.after_ms;
                steps.push(Step {
                    at_ms: fault_at,
                    event: Event::Fault(f.fault.clone()),
                });
                match &f.fault {
                    Fault::Gap { count } => gap_left = *count,
                    Fault::Skip { count } => skip_left = *count,
                    Fault::StopBroadcasting { duration_ms } => {
                        silent_until = fault_at + duration_ms;
                    }
                    Fault::Duplicate => {
                        steps.extend(publish(line, n, record, fault_at, takt_ms, offsets));
                    }
                    Fault::Correction => {
                        let mut changed = record.clone();
                        correct(&mut changed, &plant.options);
                        steps.extend(publish(line, n, &changed, fault_at, takt_ms, offsets));
                    }
                    Fault::DropSessions | Fault::RestartServer | Fault::RestartDevice { .. } => {}
                }
            }
            for s in self.stops.iter().filter(|s| s.after_vehicle == n) {
                steps.push(Step {
                    at_ms: at,
                    event: Event::LineStopped {
                        reason: s.reason.clone(),
                    },
                });
                stopped_ms += s.duration_ms;
                steps.push(Step {
                    at_ms: at + s.duration_ms,
                    event: Event::LineRunning,
                });
            }
        }
        // Whatever is still kept back when the scenario ends is published last, in order.
        let end = u64::from(self.vehicles) * takt_ms + stopped_ms;
        for (v, r) in backlog.into_iter().chain(late) {
            steps.extend(publish(line, v, &r, end, takt_ms, offsets));
        }
        // Stable: equal times keep the order decided above (a late record after its overtaker).
        steps.sort_by_key(|s| s.at_ms);
        Ok(steps)
    }

    fn model_mix(&self, plant: &PlantConfig) -> Result<Vec<(String, f64)>, ScenarioError> {
        if self.models.is_empty() {
            return Ok(plant.models.iter().map(|m| (m.code.clone(), 1.0)).collect());
        }
        for model in self.models.keys() {
            if !plant.models.iter().any(|m| m.code == *model) {
                return Err(err(format!("models.{model}"), "not a model of the plant"));
            }
        }
        weights(
            "models",
            self.models.iter().map(|(k, w)| (k.clone(), *w)).collect(),
        )
    }

    fn option_mix(&self, plant: &PlantConfig) -> Result<Vec<(String, Mix)>, ScenarioError> {
        for (key, values) in &self.options {
            let Some(legal) = plant.options.get(key) else {
                return Err(err(
                    format!("options.{key}"),
                    "not an option key of the plant",
                ));
            };
            for value in values.keys() {
                if !legal.contains(value) {
                    return Err(err(
                        format!("options.{key}.{value}"),
                        "not a value of this option in the plant",
                    ));
                }
            }
        }
        plant
            .options
            .iter()
            .map(|(key, legal)| {
                let mix = match self.options.get(key) {
                    Some(values) => weights(
                        &format!("options.{key}"),
                        values.iter().map(|(v, w)| (v.clone(), *w)).collect(),
                    )?,
                    None => legal.iter().map(|v| (v.clone(), 1.0)).collect(),
                };
                Ok((key.clone(), mix))
            })
            .collect()
    }
}

/// Wall-clock time for `plant_ms` of plant time on a line running `acceleration` times faster.
#[must_use]
pub fn wall_time(plant_ms: u64, acceleration: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(plant_ms as f64 / 1000.0 / acceleration)
}

/// Choices with their weights.
type Mix = Vec<(String, f64)>;

fn weights(field: &str, items: Mix) -> Result<Mix, ScenarioError> {
    if items.iter().any(|(_, w)| !w.is_finite() || *w < 0.0) {
        return Err(err(field, "weights must be finite and not negative"));
    }
    if items.iter().map(|(_, w)| w).sum::<f64>() <= 0.0 {
        return Err(err(field, "at least one weight must be above 0"));
    }
    Ok(items)
}

/// Weighted choice; the weights are checked to sum above zero.
fn pick<'a>(rng: &mut ChaCha8Rng, items: &'a [(String, f64)]) -> &'a String {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    // 53 random bits: a uniform f64 in [0, 1).
    let mut x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items.iter().rfind(|(_, w)| *w > 0.0).unwrap_or(&items[0]).0
}

/// A legal VIN, unique per scenario seed and vehicle, with a correct ISO 3779 check digit so
/// that it passes on lines that verify it.
fn vin(seed: u64, n: u32) -> String {
    // WMI, vehicle descriptor, check digit placeholder, model year, plant, serial number.
    let serial = (u64::from(n) + seed % 1_000) % 1_000_000;
    let draft = format!("WBA3A5C50KL{serial:06}");
    let expected = Vin::parse(&draft).map_or('0', |v| v.expected_check_digit());
    let mut chars: Vec<char> = draft.chars().collect();
    chars[8] = expected;
    chars.into_iter().collect()
}

/// Change one option of a record to another of the plant's legal values (a correction).
pub(crate) fn correct(record: &mut RawRecord, legal: &BTreeMap<String, Vec<String>>) {
    for opt in &mut record.options {
        let Some((key, value)) = opt.split_once('=') else {
            continue;
        };
        let other = legal
            .get(key)
            .and_then(|values| values.iter().find(|v| *v != value));
        if let Some(other) = other {
            *opt = format!("{key}={other}");
            return;
        }
    }
}

fn publish(
    line: &takt_core::config::LineConfig,
    n: u32,
    record: &RawRecord,
    at: u64,
    takt_ms: u64,
    offsets: &BTreeMap<String, u32>,
) -> Vec<Step> {
    line.broadcast_points
        .iter()
        .map(|p| Step {
            at_ms: at + u64::from(offsets.get(&p.id).copied().unwrap_or(0)) * takt_ms,
            event: Event::Broadcast {
                point: p.id.clone(),
                vehicle: n,
                record: record.clone(),
            },
        })
        .collect()
}
