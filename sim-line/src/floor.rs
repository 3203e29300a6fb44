//! The floor file: what sim-line serves and who works at it.
//!
//! The scenario says what the line *does*; the floor says what it *is*: where the line's
//! OPC UA server listens and in which layout, which Modbus light modules exist, and the
//! simulated operators at their stations. A controller's configuration describes the same
//! plant from the other side (its `[[sources]]` and `[[devices]]`); `sim-line/floor.toml`
//! matches `config/example.toml`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::opcua::{Layout, SimOpcUaConfig};

/// A floor file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Floor {
    pub opcua: OpcUaFloor,
    #[serde(default)]
    pub modules: Vec<ModuleFloor>,
    #[serde(default)]
    pub operators: Vec<OperatorFloor>,
}

/// The line's OPC UA server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpcUaFloor {
    /// `ip:port`; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Server certificate and trusted client certificates (relative: to the floor file).
    #[serde(default = "default_pki_dir")]
    pub pki_dir: PathBuf,
    #[serde(default)]
    pub layout: LayoutKind,
    /// Handshake: `NoHandshake` goes true after this long without an acknowledgement.
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
    /// FIFO: records kept per broadcast point.
    #[serde(default = "default_fifo_slots")]
    pub fifo_slots: usize,
    #[serde(default = "default_namespace_uri")]
    pub namespace_uri: String,
    /// Username/password pairs.
    #[serde(default)]
    pub users: Vec<User>,
    /// Accept any client certificate on the secure endpoint.
    #[serde(default = "yes")]
    pub trust_client_certs: bool,
    /// The server's subscription tick, which is also the shortest publishing and sampling
    /// interval it grants. A publish waits for the first tick after its interval has passed,
    /// so a tick of 1 ms keeps a 10 ms subscription at 10 ms instead of up to 20.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutKind {
    #[default]
    Handshake,
    Fifo,
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Passwords stay out of logs.
        f.debug_struct("User").field("user", &self.user).finish()
    }
}

/// One Modbus TCP server holding one or more light modules (unit ids).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleFloor {
    /// Name used by operators and by `restart_device` faults.
    pub name: String,
    pub listen: SocketAddr,
    pub units: Vec<u8>,
    #[serde(default = "default_positions")]
    pub positions: u16,
}

/// A simulated operator at one unit of a module: presses the lit position's button.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorFloor {
    pub module: String,
    pub unit: u8,
    /// Positions of the pick bins (a wrong pick presses another of these).
    #[serde(default)]
    pub bins: Option<Positions>,
    /// Positions of the rack-slot put lights.
    #[serde(default)]
    pub slots: Option<Positions>,
    /// Plant time from a light coming on to the press (scaled by the acceleration).
    #[serde(default = "default_press_after_ms")]
    pub press_after_ms: u64,
    /// Plant time after which a press that changed nothing is repeated (a press the
    /// controller never saw, because it or the module was down).
    #[serde(default = "default_retry_after_ms")]
    pub retry_after_ms: u64,
    /// Wall-clock time a button is held: long enough for the controller's debounce.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
    /// Share of picks that first press a wrong bin, 0..=1.
    #[serde(default)]
    pub wrong_pick_rate: f64,
}

/// `count` consecutive positions from `first` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Positions {
    pub first: u16,
    pub count: u16,
}

impl Positions {
    #[must_use]
    pub fn contains(&self, position: u16) -> bool {
        position >= self.first && position - self.first < self.count
    }

    fn end(&self) -> u32 {
        u32::from(self.first) + u32::from(self.count)
    }
}

fn default_pki_dir() -> PathBuf {
    PathBuf::from("pki")
}
fn default_ack_timeout_ms() -> u64 {
    2000
}
fn default_fifo_slots() -> usize {
    10
}
fn default_namespace_uri() -> String {
    "urn:takt:sim-line".to_owned()
}
fn default_tick_ms() -> u64 {
    10
}
fn yes() -> bool {
    true
}
fn default_positions() -> u16 {
    16
}
fn default_press_after_ms() -> u64 {
    5000
}
fn default_retry_after_ms() -> u64 {
    30_000
}
fn default_hold_ms() -> u64 {
    60
}

/// A floor file that could not be used, with the file and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct FloorError {
    pub file: String,
    pub message: String,
}

impl Floor {
    /// Reads and checks the floor file at `path`; relative paths in it are made relative to
    /// the file's directory.
    ///
    /// # Errors
    /// When the file cannot be read, is not valid TOML of this shape, or names things that do
    /// not exist (the message names the field; TOML errors also the line).
    pub fn load(path: &Path) -> Result<Self, FloorError> {
        let error = |message: String| FloorError {
            file: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
        let mut floor = Self::parse(&text).map_err(error)?;
        if floor.opcua.pki_dir.is_relative()
            && let Some(dir) = path.parent()
        {
            floor.opcua.pki_dir = dir.join(&floor.opcua.pki_dir);
        }
        Ok(floor)
    }

    /// Parses and checks floor `text`.
    ///
    /// # Errors
    /// As [`load`](Self::load), without the file name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let floor: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        floor.validate()?;
        Ok(floor)
    }

    fn validate(&self) -> Result<(), String> {
        let mut names = BTreeSet::new();
        for (i, m) in self.modules.iter().enumerate() {
            if !names.insert(m.name.as_str()) {
                return Err(format!("modules[{i}].name: `{}` used twice", m.name));
            }
            if m.units.is_empty() {
                return Err(format!("modules[{i}].units: at least one unit id"));
            }
        }
        for (i, o) in self.operators.iter().enumerate() {
            let Some(module) = self.module(&o.module) else {
                return Err(format!("operators[{i}].module: no module `{}`", o.module));
            };
            if !module.units.contains(&o.unit) {
                return Err(format!(
                    "operators[{i}].unit: module `{}` has no unit {}",
                    o.module, o.unit
                ));
            }
            if o.bins.is_none() && o.slots.is_none() {
                return Err(format!("operators[{i}]: give `bins`, `slots` or both"));
            }
            for (field, p) in [("bins", o.bins), ("slots", o.slots)] {
                if let Some(p) = p
                    && (p.count == 0 || p.end() > u32::from(module.positions))
                {
                    return Err(format!(
                        "operators[{i}].{field}: must be 1 or more positions within the \
                         module's {}",
                        module.positions
                    ));
                }
            }
            if !(0.0..=1.0).contains(&o.wrong_pick_rate) {
                return Err(format!(
                    "operators[{i}].wrong_pick_rate: must be between 0 and 1"
                ));
            }
        }
        Ok(())
    }

    /// The module called `name`.
    #[must_use]
    pub fn module(&self, name: &str) -> Option<&ModuleFloor> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// The OPC UA server configuration for `line` with broadcast `points`.
    #[must_use]
    pub fn opcua_config(&self, line: &str, points: &[&str]) -> SimOpcUaConfig {
        let o = &self.opcua;
        let mut cfg = SimOpcUaConfig::new(line, points, o.pki_dir.clone());
        cfg.layout = match o.layout {
            LayoutKind::Handshake => Layout::Handshake {
                ack_timeout: Duration::from_millis(o.ack_timeout_ms),
            },
            LayoutKind::Fifo => Layout::Fifo {
                slots: o.fifo_slots,
            },
        };
        cfg.namespace_uri.clone_from(&o.namespace_uri);
        cfg.users = o
            .users
            .iter()
            .map(|u| (u.user.clone(), u.password.clone()))
            .collect();
        cfg.trust_client_certs = o.trust_client_certs;
        cfg.poll_interval_ms = o.tick_ms;
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOOR: &str = r#"
[opcua]
listen = "127.0.0.1:0"

[[modules]]
name = "PTL-1"
listen = "127.0.0.1:0"
units = [1, 2]

[[operators]]
module = "PTL-1"
unit = 1
bins = { first = 0, count = 6 }
slots = { first = 8, count = 8 }
wrong_pick_rate = 0.02
"#;

    #[test]
    fn a_floor_parses_with_defaults() {
        let floor = Floor::parse(FLOOR).expect("floor");
        assert_eq!(floor.opcua.layout, LayoutKind::Handshake);
        assert_eq!(floor.modules[0].positions, 16);
        assert_eq!(floor.operators[0].press_after_ms, 5000);
        let bins = floor.operators[0].bins.expect("bins");
        assert!(bins.contains(5));
        assert!(!bins.contains(6));
    }

    #[test]
    fn bad_floors_name_the_field() {
        let cases = [
            (
                "module = \"PTL-1\"",
                "module = \"PTL-9\"",
                "operators[0].module",
            ),
            ("unit = 1", "unit = 3", "operators[0].unit"),
            ("count = 8", "count = 9", "operators[0].slots"),
            (
                "wrong_pick_rate = 0.02",
                "wrong_pick_rate = 2.0",
                "wrong_pick_rate",
            ),
            ("units = [1, 2]", "units = []", "modules[0].units"),
            (
                "listen = \"127.0.0.1:0\"\n\n[[modules]]",
                "listen = \"nowhere\"\n\n[[modules]]",
                "listen",
            ),
            ("wrong_pick_rate", "wrong_pik_rate", "wrong_pik_rate"),
            (
                "bins = { first = 0, count = 6 }\nslots = { first = 8, count = 8 }",
                "",
                "operators[0]",
            ),
        ];
        for (from, to, field) in cases {
            let text = FLOOR.replacen(from, to, 1);
            assert_ne!(text, FLOOR, "case {to} changed nothing");
            let error = Floor::parse(&text).expect_err(to);
            assert!(error.contains(field), "{to}: {error}");
        }
    }
}
