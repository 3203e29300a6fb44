//! The typed plant configuration the core runs on.
//!
//! The controller parses and validates the TOML file into these structs (with file, line and
//! field in every error); the core trusts them. [`PlantConfig::index`] builds the lookups the core
//! needs and is the one place that checks cross-references, so a config that indexes is a config
//! the core can run.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use crate::partners::{CarrierConfig, SupplierConfig};

/// Whole-plant configuration as far as the core is concerned.
///
/// Not `deny_unknown_fields` at this level only: the same file carries the controller's own
/// sections, and the loader checks top-level keys itself. Every nested table denies unknown keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantConfig {
    pub plant: PlantInfo,
    #[serde(default)]
    pub alarms: AlarmSettings,
    pub models: Vec<ModelConfig>,
    /// Option codes by key: `SEAT = ["LTHR-BLK", "CLTH-GRY"]` allows `SEAT=LTHR-BLK`.
    pub options: BTreeMap<String, Vec<String>>,
    pub lines: Vec<LineConfig>,
    pub families: Vec<FamilyConfig>,
    #[serde(default)]
    pub stations: Vec<StationConfig>,
    #[serde(default)]
    pub suppliers: Vec<SupplierConfig>,
    #[serde(default)]
    pub carriers: Vec<CarrierConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlantInfo {
    pub name: String,
}

/// Alarm thresholds and priorities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmSettings {
    /// How long a sequence gap may wait for its backfill before its positions are marked unknown.
    pub gap_fill_timeout_ms: u64,
    /// Coverage below this many minutes raises a coverage alarm for the family.
    pub coverage_low_min: f64,
    /// Priority per alarm kind (snake_case kind name); kinds not listed use their default.
    pub priorities: BTreeMap<String, Priority>,
    /// A point raises `rejection_rate` while at least this share (percent) of its last
    /// `rejection_window` records were rejected.
    pub rejection_rate_pct: f64,
    pub rejection_window: u32,
}

impl Default for AlarmSettings {
    fn default() -> Self {
        Self {
            gap_fill_timeout_ms: 10_000,
            coverage_low_min: 10.0,
            priorities: BTreeMap::new(),
            rejection_rate_pct: 50.0,
            rejection_window: 10,
        }
    }
}

impl AlarmSettings {
    /// Rejected records among the last `rejection_window` that raise `rejection_rate`.
    pub fn rejections_alarming(&self) -> usize {
        let share = self.rejection_rate_pct / 100.0 * f64::from(self.rejection_window);
        // Checked at load: a percentage in (0, 100] of a window of at most u32::MAX.
        (share.ceil() as usize).max(1)
    }
}

/// ISA-18.2 alarm priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub code: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    pub id: String,
    /// The sequence counter runs 0..modulus and then wraps (10000: 0000–9999).
    pub modulus: u32,
    /// How far ahead a record may arrive and still wait for the gap before it to be filled.
    /// Farther ahead (up to half the counter) is a jump; behind is a repeat or a correction.
    #[serde(default = "default_window")]
    pub window: u32,
    pub takt_ms: u64,
    /// Verify the ISO 3779 check digit (position 9) of every VIN; North-American lines.
    #[serde(default)]
    pub vin_check_digit: bool,
    pub broadcast_points: Vec<BroadcastPointConfig>,
    pub install_stations: Vec<InstallStationConfig>,
}

fn default_window() -> u32 {
    50
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastPointConfig {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallStationConfig {
    pub id: String,
    /// The broadcast point whose counter positions this station.
    pub broadcast_point: String,
    /// Vehicles between the broadcast point and this station: a vehicle is here `offset` broadcasts later.
    pub offset_positions: u32,
}

/// Who builds a family's racks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sequencing {
    /// Built in the plant's sequencing area with pick-to-light / put-to-light.
    InPlant,
    /// Built by the supplier from the sequence calls it receives.
    Supplier,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyConfig {
    pub id: String,
    pub line: String,
    pub install_station: String,
    pub rack_size: u32,
    pub sequencing: Sequencing,
    /// Pick station that builds this family's racks; required for `in-plant`.
    #[serde(default)]
    pub station: Option<String>,
    /// Models that take a part of this family; empty means every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// First match wins.
    pub rules: Vec<VariantRule>,
    /// The supplier that can build this family when its own cannot (named, not switched to by
    /// Takt: the plant decides).
    #[serde(default)]
    pub alternate_supplier: Option<String>,
}

/// `models` (any of, empty = any) and `options` (all of) select `part`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantRule {
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
    pub part: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    pub id: String,
    pub bins: Vec<BinConfig>,
    #[serde(default = "default_pick_colour")]
    pub pick_colour: LampColour,
    #[serde(default = "default_put_colour")]
    pub put_colour: LampColour,
    #[serde(default = "default_error_colour")]
    pub error_colour: LampColour,
    #[serde(default)]
    pub pick_blink: Blink,
    #[serde(default)]
    pub put_blink: Blink,
    #[serde(default = "default_error_blink")]
    pub error_blink: Blink,
    /// A press of the button just confirmed, this soon after, is the operator pressing again
    /// (the light was slow to go out), not a wrong pick.
    #[serde(default = "default_repeat_press_ms")]
    pub repeat_press_ms: u64,
}

fn default_error_blink() -> Blink {
    Blink::Fast
}
fn default_repeat_press_ms() -> u64 {
    2000
}

fn default_pick_colour() -> LampColour {
    LampColour::Green
}
fn default_put_colour() -> LampColour {
    LampColour::Blue
}
fn default_error_colour() -> LampColour {
    LampColour::Red
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinConfig {
    pub id: String,
    pub part: String,
    #[serde(default = "default_qty")]
    pub qty: u32,
}

fn default_qty() -> u32 {
    1
}

/// Logical lamp colour; the device profile maps it to the module's register value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LampColour {
    Green,
    Blue,
    Red,
    Yellow,
    White,
    Cyan,
    Magenta,
}

/// Logical lamp pattern; the device profile maps it to the module's animation code.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Blink {
    #[default]
    Steady,
    Slow,
    Fast,
}

/// A cross-reference in the config that does not resolve, or a value out of range.
///
/// `path` is the dotted TOML path (`families[2].station`) so the loader can name the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigIssue {
    pub path: String,
    pub message: String,
}

pub(crate) fn issue(path: impl Into<String>, message: impl Into<String>) -> ConfigIssue {
    ConfigIssue {
        path: path.into(),
        message: message.into(),
    }
}

/// Lookups derived from a [`PlantConfig`]; built once, read by the core on every input, so
/// nothing on the hot path searches the configuration lists.
#[derive(Debug, Clone)]
pub struct ConfigIndex {
    pub config: PlantConfig,
    models: BTreeSet<String>,
    lines: BTreeMap<String, usize>,
    families: BTreeMap<String, usize>,
    stations: BTreeMap<String, usize>,
    /// Per family, in config order: (line index, install station index) of its install station.
    family_stations: Vec<(usize, usize)>,
    /// (line, broadcast point) → the families whose install station counts from that point.
    by_point: BTreeMap<String, BTreeMap<String, Vec<usize>>>,
    /// Family → the supplier that builds it (index into `suppliers`).
    supplier_of: BTreeMap<String, usize>,
}

impl PlantConfig {
    /// Check every cross-reference and range; returns all issues found, not just the first.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let models: BTreeSet<&str> = self.models.iter().map(|m| m.code.as_str()).collect();
        duplicates(
            self.models.iter().map(|m| m.code.as_str()),
            "models",
            "code",
            &mut issues,
        );
        for (key, values) in &self.options {
            if key.is_empty() || key.contains('=') {
                issues.push(issue(
                    format!("options.{key}"),
                    "option key must be non-empty and contain no '='",
                ));
            }
            if values.is_empty() {
                issues.push(issue(
                    format!("options.{key}"),
                    "an option key needs at least one value",
                ));
            }
        }
        if self.alarms.gap_fill_timeout_ms == 0 {
            issues.push(issue(
                "alarms.gap_fill_timeout_ms",
                "must be greater than 0",
            ));
        }
        if self.alarms.coverage_low_min.is_nan() || self.alarms.coverage_low_min < 0.0 {
            issues.push(issue("alarms.coverage_low_min", "must be 0 or more"));
        }
        let pct = self.alarms.rejection_rate_pct;
        if pct.is_nan() || pct <= 0.0 || pct > 100.0 {
            issues.push(issue(
                "alarms.rejection_rate_pct",
                "must be more than 0 and at most 100",
            ));
        }
        if self.alarms.rejection_window == 0 {
            issues.push(issue("alarms.rejection_window", "must be greater than 0"));
        }
        for kind in self.alarms.priorities.keys() {
            if crate::alarm::AlarmKind::from_name(kind).is_none() {
                issues.push(issue(
                    format!("alarms.priorities.{kind}"),
                    format!(
                        "unknown alarm kind; known kinds: {}",
                        crate::alarm::AlarmKind::ALL
                            .iter()
                            .map(|k| k.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        duplicates(
            self.lines.iter().map(|l| l.id.as_str()),
            "lines",
            "id",
            &mut issues,
        );
        if self.lines.is_empty() {
            issues.push(issue("lines", "at least one line is required"));
        }
        for (i, line) in self.lines.iter().enumerate() {
            let at = format!("lines[{i}]");
            if line.modulus < 2 {
                issues.push(issue(format!("{at}.modulus"), "must be at least 2"));
            }
            if line.window == 0 || line.window.saturating_mul(2) >= line.modulus {
                issues.push(issue(
                    format!("{at}.window"),
                    format!(
                        "must be between 1 and half the modulus ({})",
                        line.modulus / 2
                    ),
                ));
            }
            if line.takt_ms == 0 {
                issues.push(issue(format!("{at}.takt_ms"), "must be greater than 0"));
            }
            if line.broadcast_points.is_empty() {
                issues.push(issue(
                    format!("{at}.broadcast_points"),
                    "at least one broadcast point is required",
                ));
            }
            duplicates(
                line.broadcast_points.iter().map(|p| p.id.as_str()),
                &format!("{at}.broadcast_points"),
                "id",
                &mut issues,
            );
            duplicates(
                line.install_stations.iter().map(|s| s.id.as_str()),
                &format!("{at}.install_stations"),
                "id",
                &mut issues,
            );
            for (j, st) in line.install_stations.iter().enumerate() {
                if !line
                    .broadcast_points
                    .iter()
                    .any(|p| p.id == st.broadcast_point)
                {
                    issues.push(issue(
                        format!("{at}.install_stations[{j}].broadcast_point"),
                        format!(
                            "no broadcast point `{}` on line `{}`",
                            st.broadcast_point, line.id
                        ),
                    ));
                }
                if st.offset_positions == 0 {
                    issues.push(issue(
                        format!("{at}.install_stations[{j}].offset_positions"),
                        "must be greater than 0",
                    ));
                }
            }
        }
        duplicates(
            self.families.iter().map(|f| f.id.as_str()),
            "families",
            "id",
            &mut issues,
        );
        let stations: BTreeMap<&str, &StationConfig> =
            self.stations.iter().map(|s| (s.id.as_str(), s)).collect();
        let mut station_users: BTreeMap<&str, &str> = BTreeMap::new();
        for (i, fam) in self.families.iter().enumerate() {
            let at = format!("families[{i}]");
            match self.lines.iter().find(|l| l.id == fam.line) {
                None => issues.push(issue(
                    format!("{at}.line"),
                    format!("no line `{}`", fam.line),
                )),
                Some(line) => {
                    if !line
                        .install_stations
                        .iter()
                        .any(|s| s.id == fam.install_station)
                    {
                        issues.push(issue(
                            format!("{at}.install_station"),
                            format!(
                                "no install station `{}` on line `{}`",
                                fam.install_station, line.id
                            ),
                        ));
                    }
                }
            }
            if fam.rack_size == 0 {
                issues.push(issue(format!("{at}.rack_size"), "must be greater than 0"));
            }
            for (j, m) in fam.models.iter().enumerate() {
                if !models.contains(m.as_str()) {
                    issues.push(issue(
                        format!("{at}.models[{j}]"),
                        format!("unknown model `{m}`"),
                    ));
                }
            }
            if fam.rules.is_empty() {
                issues.push(issue(
                    format!("{at}.rules"),
                    "at least one variant rule is required",
                ));
            }
            for (j, rule) in fam.rules.iter().enumerate() {
                for (k, m) in rule.models.iter().enumerate() {
                    if !models.contains(m.as_str()) {
                        issues.push(issue(
                            format!("{at}.rules[{j}].models[{k}]"),
                            format!("unknown model `{m}`"),
                        ));
                    }
                }
                for (k, o) in rule.options.iter().enumerate() {
                    if let Err(e) = check_option(&self.options, o) {
                        issues.push(issue(format!("{at}.rules[{j}].options[{k}]"), e));
                    }
                }
                if rule.part.trim().is_empty() {
                    issues.push(issue(format!("{at}.rules[{j}].part"), "must not be empty"));
                }
            }
            match (fam.sequencing, &fam.station) {
                (Sequencing::InPlant, None) => issues.push(issue(
                    format!("{at}.station"),
                    "an in-plant family needs the pick station that builds its racks",
                )),
                (Sequencing::Supplier, Some(_)) => issues.push(issue(
                    format!("{at}.station"),
                    "a supplier-sequenced family has no in-plant pick station",
                )),
                (Sequencing::InPlant, Some(st)) => match stations.get(st.as_str()) {
                    None => {
                        issues.push(issue(format!("{at}.station"), format!("no station `{st}`")));
                    }
                    Some(station) => {
                        if let Some(other) = station_users.insert(st.as_str(), fam.id.as_str()) {
                            issues.push(issue(
                                format!("{at}.station"),
                                format!("station `{st}` already builds family `{other}`"),
                            ));
                        }
                        for (j, rule) in fam.rules.iter().enumerate() {
                            if !station.bins.iter().any(|b| b.part == rule.part) {
                                issues.push(issue(
                                    format!("{at}.rules[{j}].part"),
                                    format!(
                                        "station `{st}` has no bin holding part `{}`",
                                        rule.part
                                    ),
                                ));
                            }
                        }
                    }
                },
                (Sequencing::Supplier, None) => {}
            }
        }
        duplicates(
            self.stations.iter().map(|s| s.id.as_str()),
            "stations",
            "id",
            &mut issues,
        );
        for (i, st) in self.stations.iter().enumerate() {
            duplicates(
                st.bins.iter().map(|b| b.id.as_str()),
                &format!("stations[{i}].bins"),
                "id",
                &mut issues,
            );
            duplicates(
                st.bins.iter().map(|b| b.part.as_str()),
                &format!("stations[{i}].bins"),
                "part",
                &mut issues,
            );
            for (j, bin) in st.bins.iter().enumerate() {
                if bin.qty == 0 {
                    issues.push(issue(
                        format!("stations[{i}].bins[{j}].qty"),
                        "must be greater than 0",
                    ));
                }
            }
        }
        crate::partners::validate(self, &mut issues);
        issues
    }

    /// Validate and build the lookups; the only way to get a [`ConfigIndex`].
    pub fn index(self) -> Result<ConfigIndex, Vec<ConfigIssue>> {
        let issues = self.validate();
        if !issues.is_empty() {
            return Err(issues);
        }
        let positions = |ids: Vec<&String>| -> BTreeMap<String, usize> {
            ids.into_iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect()
        };
        let lines = positions(self.lines.iter().map(|l| &l.id).collect());
        let family_stations: Vec<(usize, usize)> = self
            .families
            .iter()
            .map(|f| {
                let li = lines[&f.line];
                let si = self.lines[li]
                    .install_stations
                    .iter()
                    .position(|s| s.id == f.install_station)
                    .expect("validated: family install station exists");
                (li, si)
            })
            .collect();
        let mut by_point: BTreeMap<String, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
        for (i, &(li, si)) in family_stations.iter().enumerate() {
            let line = &self.lines[li];
            by_point
                .entry(line.id.clone())
                .or_default()
                .entry(line.install_stations[si].broadcast_point.clone())
                .or_default()
                .push(i);
        }
        let supplier_of = self
            .suppliers
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.families.iter().map(move |f| (f.clone(), i)))
            .collect();
        Ok(ConfigIndex {
            supplier_of,
            models: self.models.iter().map(|m| m.code.clone()).collect(),
            lines,
            families: positions(self.families.iter().map(|f| &f.id).collect()),
            stations: positions(self.stations.iter().map(|s| &s.id).collect()),
            family_stations,
            by_point,
            config: self,
        })
    }
}

fn duplicates<'a>(
    ids: impl Iterator<Item = &'a str>,
    table: &str,
    field: &str,
    issues: &mut Vec<ConfigIssue>,
) {
    let mut seen = BTreeSet::new();
    for (i, id) in ids.enumerate() {
        if id.trim().is_empty() {
            issues.push(issue(format!("{table}[{i}].{field}"), "must not be empty"));
        } else if !seen.insert(id) {
            issues.push(issue(
                format!("{table}[{i}].{field}"),
                format!("duplicate `{id}`"),
            ));
        }
    }
}

/// `KEY=VALUE` with a known key and value.
pub(crate) fn check_option(
    options: &BTreeMap<String, Vec<String>>,
    code: &str,
) -> Result<(), String> {
    let Some((key, value)) = code.split_once('=') else {
        return Err(format!("option code `{code}` is not of the form KEY=VALUE"));
    };
    match options.get(key) {
        None => Err(format!("unknown option key `{key}` in `{code}`")),
        Some(values) if !values.iter().any(|v| v == value) => {
            Err(format!("unknown value `{value}` for option `{key}`"))
        }
        Some(_) => Ok(()),
    }
}

impl PlantConfig {
    /// `Ok` if `code` is a `KEY=VALUE` option code of this plant; else what is wrong with it.
    pub fn check_option(&self, code: &str) -> Result<(), String> {
        check_option(&self.options, code)
    }
}

impl ConfigIndex {
    pub fn line(&self, id: &str) -> Option<&LineConfig> {
        self.lines.get(id).map(|&i| &self.config.lines[i])
    }

    pub fn family(&self, id: &str) -> Option<&FamilyConfig> {
        self.families.get(id).map(|&i| &self.config.families[i])
    }

    pub fn station(&self, id: &str) -> Option<&StationConfig> {
        self.stations.get(id).map(|&i| &self.config.stations[i])
    }

    pub fn is_model(&self, code: &str) -> bool {
        self.models.contains(code)
    }

    pub fn is_option(&self, code: &str) -> Result<(), String> {
        check_option(&self.config.options, code)
    }

    /// The install station of a family (which broadcast point, how many positions after it).
    pub fn family_station(&self, fam: &FamilyConfig) -> &InstallStationConfig {
        let i = self.families[&fam.id];
        let (li, si) = self.family_stations[i];
        &self.config.lines[li].install_stations[si]
    }

    /// Families whose install station counts positions from this broadcast point, with it.
    pub fn families_at(
        &self,
        line: &str,
        point: &str,
    ) -> impl Iterator<Item = (&FamilyConfig, &InstallStationConfig)> {
        self.by_point
            .get(line)
            .and_then(|points| points.get(point))
            .into_iter()
            .flatten()
            .map(|&i| {
                let (li, si) = self.family_stations[i];
                (
                    &self.config.families[i],
                    &self.config.lines[li].install_stations[si],
                )
            })
    }

    /// The supplier that builds `family`, if it is supplier-built and its supplier configured.
    pub fn supplier_of(&self, family: &str) -> Option<&SupplierConfig> {
        self.supplier_of
            .get(family)
            .map(|&i| &self.config.suppliers[i])
    }

    /// Whether `id` is a configured supplier or carrier: a tenant tokens can be made for.
    pub fn is_tenant(&self, id: &str) -> bool {
        self.config.suppliers.iter().any(|s| s.id == id)
            || self.config.carriers.iter().any(|c| c.id == id)
    }
}
