//! The plant's I/O in the configuration file: `[[sources]]` (OPC UA broadcast sources) and
//! `[[devices]]` (Modbus TCP pick/put-light modules and what each position shows).
//!
//! Source settings are plc-bridge's own type; devices are described here because they tie
//! plc-bridge's register maps to the plant's stations, bins and rack slots.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use takt_core::config::{Blink, LampColour, StationConfig};
use takt_core::model::LightTarget;
use takt_core::{ConfigIssue, PlantConfig};
use takt_plc_bridge::modbus::profile::{LampState, Profile};
use takt_plc_bridge::opcua::SourceConfig;

/// One Modbus TCP connection (a module, a gateway or a bus coupler).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Name in alarms and the status endpoint.
    pub id: String,
    /// `ip:port` of the device or gateway.
    pub endpoint: String,
    /// Button polling interval.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Consecutive polls a press must be seen on.
    #[serde(default = "default_debounce_polls")]
    pub debounce_polls: u32,
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// What the lamps show after a controlled stop of the controller.
    #[serde(default)]
    pub offline_lamps: OfflineLamps,
    pub units: Vec<UnitConfig>,
}

/// What a device's lamps show once the controller has stopped (a controlled stop; a crash
/// leaves them as they are — a profile's watchdog is the answer to that).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OfflineLamps {
    /// Dark: nothing is asked of the operator.
    #[default]
    Off,
    /// As they are.
    Keep,
    /// Every lamp of the device in this colour, steady: "the line side is not sequenced".
    Colour(LampColour),
}

impl OfflineLamps {
    /// The state each lamp is set to at a stop; `None`: leave them.
    #[must_use]
    pub fn state(self) -> Option<LampState> {
        match self {
            OfflineLamps::Off => Some(LampState::Off),
            OfflineLamps::Keep => None,
            OfflineLamps::Colour(colour) => Some(LampState::On {
                colour,
                digits: None,
                blink: Blink::Steady,
            }),
        }
    }
}

impl<'de> Deserialize<'de> for OfflineLamps {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "off" => Ok(OfflineLamps::Off),
            "keep" => Ok(OfflineLamps::Keep),
            colour => LampColour::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(
                colour,
            ))
            .map(OfflineLamps::Colour)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{colour}`: expected `off`, `keep` or a colour (green, blue, red, yellow, \
                     white, cyan, magenta)"
                ))
            }),
        }
    }
}

fn default_poll_ms() -> u64 {
    20
}
fn default_debounce_polls() -> u32 {
    2
}
fn default_request_timeout_ms() -> u64 {
    500
}

/// One unit id on a connection: a light module serving one station.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitConfig {
    pub unit: u8,
    /// A built-in profile (`sim-line`, `banner-ptl110`, `generic-dio`) or a profile file,
    /// relative to this configuration file.
    pub profile: String,
    pub station: String,
    /// The station's bins, in file order, sit at positions from here on.
    #[serde(default)]
    pub first_bin_position: Option<u16>,
    /// Rack slots 1, 2, … sit at positions from here on.
    #[serde(default)]
    pub first_slot_position: Option<u16>,
}

/// The file's I/O tables.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct PlantIoFile {
    #[serde(default)]
    pub(crate) sources: Vec<SourceConfig>,
    #[serde(default)]
    pub(crate) devices: Vec<DeviceConfig>,
}

/// Where a station's light shows: device, unit, position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lamp {
    pub device: String,
    pub unit: u8,
    pub position: u16,
}

/// Both directions between the plant's targets and the devices' positions.
#[derive(Debug, Clone, Default)]
pub struct LampMap {
    to_lamp: BTreeMap<(String, LightTarget), Lamp>,
    to_target: BTreeMap<Lamp, (String, LightTarget)>,
}

impl LampMap {
    pub fn build(devices: &[DeviceConfig], plant: &PlantConfig) -> Self {
        let mut map = Self::default();
        for device in devices {
            for unit in &device.units {
                for (target, position) in unit_targets(unit, plant) {
                    let lamp = Lamp {
                        device: device.id.clone(),
                        unit: unit.unit,
                        position,
                    };
                    let key = (unit.station.clone(), target);
                    map.to_target.insert(lamp.clone(), key.clone());
                    map.to_lamp.insert(key, lamp);
                }
            }
        }
        map
    }

    pub fn lamp(&self, station: &str, target: &LightTarget) -> Option<&Lamp> {
        self.to_lamp.get(&(station.to_owned(), target.clone()))
    }

    pub fn target(&self, lamp: &Lamp) -> Option<&(String, LightTarget)> {
        self.to_target.get(lamp)
    }

    /// Every lamp of a station.
    pub fn station_lamps<'a>(&'a self, station: &'a str) -> impl Iterator<Item = &'a Lamp> + 'a {
        self.to_lamp
            .iter()
            .filter(move |((s, _), _)| s == station)
            .map(|(_, lamp)| lamp)
    }

    /// Every lamp a station uses on one device.
    pub fn device_lamps<'a>(&'a self, device: &'a str) -> impl Iterator<Item = &'a Lamp> + 'a {
        self.to_target
            .keys()
            .filter(move |lamp| lamp.device == device)
    }

    /// Stations with at least one lamp.
    pub fn stations(&self) -> Vec<String> {
        let mut stations: Vec<String> = self.to_lamp.keys().map(|(s, _)| s.clone()).collect();
        stations.dedup();
        stations
    }
}

/// The targets a unit serves, with their positions.
fn unit_targets(unit: &UnitConfig, plant: &PlantConfig) -> Vec<(LightTarget, u16)> {
    let mut targets = Vec::new();
    let Some(station) = plant.stations.iter().find(|s| s.id == unit.station) else {
        return targets;
    };
    if let Some(first) = unit.first_bin_position {
        for (i, bin) in station.bins.iter().enumerate() {
            if let Some(p) = offset(first, i) {
                targets.push((LightTarget::Bin(bin.id.clone()), p));
            }
        }
    }
    if let Some(first) = unit.first_slot_position {
        for slot in 1..=rack_size(plant, &station.id) {
            if let Some(p) = offset(first, slot as usize - 1) {
                targets.push((LightTarget::Slot(slot), p));
            }
        }
    }
    targets
}

fn offset(first: u16, i: usize) -> Option<u16> {
    u16::try_from(i).ok().and_then(|i| first.checked_add(i))
}

/// Slots on a station's put wall: the largest rack of the families sequenced there.
fn rack_size(plant: &PlantConfig, station: &str) -> u32 {
    plant
        .families
        .iter()
        .filter(|f| f.station.as_deref() == Some(station))
        .map(|f| f.rack_size)
        .max()
        .unwrap_or(0)
}

/// The lamp states a station's lights use: pick, put and error, each colour with its pattern.
fn station_lights(station: &StationConfig) -> impl Iterator<Item = LampState> {
    [
        (station.pick_colour, station.pick_blink),
        (station.put_colour, station.put_blink),
        (station.error_colour, station.error_blink),
    ]
    .into_iter()
    .map(|(colour, blink)| LampState::On {
        colour,
        digits: None,
        blink,
    })
}

/// A profile by built-in name or file (relative to the configuration file's folder).
pub fn resolve_profile(name: &str, config_dir: &Path) -> Result<Profile, String> {
    if let Some(profile) = Profile::builtin(name) {
        return Ok(profile);
    }
    if !name.ends_with(".toml") {
        let builtins: Vec<&str> = Profile::builtin_names().collect();
        return Err(format!(
            "unknown profile `{name}`; built-in: {}, or a .toml file",
            builtins.join(", ")
        ));
    }
    let path = config_dir.join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read profile {}: {e}", path.display()))?;
    Profile::from_toml(&text).map_err(|e| format!("profile {}: {e}", path.display()))
}

impl PlantIoFile {
    /// Every problem, with paths in the file (`devices[0].units[1].station`).
    pub(crate) fn validate(&self, plant: &PlantConfig, config_dir: &Path) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut push = |path: String, message: String| issues.push(ConfigIssue { path, message });
        let mut seen_points = BTreeMap::new();
        for (i, source) in self.sources.iter().enumerate() {
            let at = format!("sources[{i}]");
            for issue in source.validate() {
                push(format!("{at}.{}", issue.path), issue.message);
            }
            // What the source's tables turn the line's codes into must be the plant's codes.
            let format = &source.options_format;
            for (path, code) in format.mapped_codes() {
                if let Err(message) = plant.check_option(&code) {
                    push(format!("{at}.options_format.{path}"), message);
                }
            }
            for (path, key) in format.position_keys() {
                if !plant.options.contains_key(key) {
                    push(
                        format!("{at}.options_format.{path}"),
                        format!("unknown option key `{key}`"),
                    );
                }
            }
            match plant.lines.iter().find(|l| l.id == source.line) {
                None => push(
                    format!("{at}.line"),
                    format!("unknown line `{}`", source.line),
                ),
                Some(line) if !line.broadcast_points.iter().any(|p| p.id == source.point) => push(
                    format!("{at}.point"),
                    format!(
                        "line `{}` has no broadcast point `{}`",
                        line.id, source.point
                    ),
                ),
                Some(_) => {}
            }
            if let Some(first) = seen_points.insert((&source.line, &source.point), i) {
                push(
                    format!("{at}.point"),
                    format!(
                        "`{}/{}` is read by sources[{first}] already",
                        source.line, source.point
                    ),
                );
            }
        }
        let mut ids = BTreeMap::new();
        let mut lamps = BTreeMap::new();
        for (d, device) in self.devices.iter().enumerate() {
            let at = format!("devices[{d}]");
            if let Some(first) = ids.insert(&device.id, d) {
                push(
                    format!("{at}.id"),
                    format!("`{}` is devices[{first}] already", device.id),
                );
            }
            if device.endpoint.parse::<SocketAddr>().is_err() {
                push(
                    format!("{at}.endpoint"),
                    format!("`{}` is not ip:port", device.endpoint),
                );
            }
            for (field, value) in [
                ("poll_ms", device.poll_ms),
                ("request_timeout_ms", device.request_timeout_ms),
            ] {
                if value == 0 {
                    push(format!("{at}.{field}"), "must be at least 1".into());
                }
            }
            if device.debounce_polls == 0 {
                push(format!("{at}.debounce_polls"), "must be at least 1".into());
            }
            for (u, unit) in device.units.iter().enumerate() {
                let at = format!("{at}.units[{u}]");
                let profile = resolve_profile(&unit.profile, config_dir)
                    .map_err(|e| push(format!("{at}.profile"), e))
                    .ok();
                let Some(station) = plant.stations.iter().find(|s| s.id == unit.station) else {
                    push(
                        format!("{at}.station"),
                        format!("unknown station `{}`", unit.station),
                    );
                    continue;
                };
                // What the device shows after a stop must be something it can show too.
                if let (Some(profile), Some(state)) = (&profile, device.offline_lamps.state())
                    && let Err(refusal) = profile.encode(0, &state)
                {
                    push(
                        format!("devices[{d}].offline_lamps"),
                        format!("unit {}: {refusal}", unit.unit),
                    );
                }
                // Every light the station can ask for must be one the module can show.
                if let Some(profile) = &profile
                    && let Some(refusal) =
                        station_lights(station).find_map(|state| profile.encode(0, &state).err())
                {
                    push(
                        format!("{at}.profile"),
                        format!("station `{}`: {refusal}", station.id),
                    );
                }
                if unit.first_bin_position.is_none() && unit.first_slot_position.is_none() {
                    push(
                        format!("{at}.first_bin_position"),
                        "give first_bin_position, first_slot_position or both".into(),
                    );
                }
                for (target, position) in unit_targets(unit, plant) {
                    if let Some(profile) = &profile
                        && position >= profile.positions
                    {
                        push(
                            format!("{at}.station"),
                            format!(
                                "{target:?} needs position {position}; profile `{}` has 0..{}",
                                unit.profile, profile.positions
                            ),
                        );
                        break;
                    }
                    if let Some(other) =
                        lamps.insert((&device.id, unit.unit, position), target.clone())
                    {
                        push(
                            format!("{at}.station"),
                            format!(
                                "position {position} of unit {} serves {other:?} already",
                                unit.unit
                            ),
                        );
                        break;
                    }
                }
            }
        }
        issues
    }
}
