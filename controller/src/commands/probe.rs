//! `takt probe`: the check a plant engineer runs before go-live. Every source and device of the
//! configuration is connected once; each configured node and register is read once and shown
//! against what its layout or profile expects, each line starting with the configuration line
//! it comes from, so a mismatch points at the line to change. Nothing is written to the PLC or
//! the modules, nothing journaled.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use takt::config::plant_io::resolve_profile;
use takt::config::{self, Config};
use takt_core::PointId;
use takt_plc_bridge::{modbus, opcua};

/// One line of the report.
struct Reported {
    path: String,
    text: String,
    mismatch: bool,
}

impl Reported {
    /// What was found, with the verdict: `ok`, or `MISMATCH` and why.
    fn new(path: String, found: String, mismatch: Option<&str>) -> Self {
        let mut text = found;
        match mismatch {
            None => text.push_str(": ok"),
            Some(why) => {
                let _ = write!(text, ": MISMATCH: {why}");
            }
        }
        Self {
            path,
            text,
            mismatch: mismatch.is_some(),
        }
    }
}

pub(crate) async fn probe(config_path: &Path) -> Result<(), ExitCode> {
    let cfg = super::load(config_path)?;
    let text = std::fs::read_to_string(config_path).unwrap_or_default();
    let mut report = Vec::new();
    for (i, source) in cfg.sources.iter().enumerate() {
        probe_source(i, source, &mut report).await;
    }
    for d in 0..cfg.devices.len() {
        probe_device(&cfg, d, &mut report).await;
    }
    let file = config_path.display();
    let numbers = config::lines_of(&text, report.iter().map(|r| r.path.as_str()));
    let mut lines: Vec<(usize, &Reported)> = numbers.into_iter().zip(&report).collect();
    // In file order, as a person reads the file; stable, so one line's nodes keep theirs.
    lines.sort_by_key(|(line, _)| *line);
    let mut mismatches = 0;
    for (line, r) in lines {
        mismatches += usize::from(r.mismatch);
        println!("{file}:{line}: {}: {}", r.path, r.text);
    }
    println!(
        "probe: {} source(s), {} device(s), {} check(s), {mismatches} mismatch(es)",
        cfg.sources.len(),
        cfg.devices.len(),
        report.len()
    );
    if mismatches == 0 {
        Ok(())
    } else {
        Err(ExitCode::FAILURE)
    }
}

async fn probe_source(i: usize, source: &opcua::SourceConfig, report: &mut Vec<Reported>) {
    let name = PointId::new(&source.line, &source.point).to_string();
    match opcua::probe::probe(source).await {
        Ok(findings) => {
            for f in findings {
                let found = format!("{name} {}: {}, expects {}", f.node, f.found, f.expected);
                report.push(Reported::new(
                    format!("sources[{i}].{}", f.field),
                    found,
                    f.mismatch.as_deref(),
                ));
            }
        }
        Err(e) => report.push(Reported {
            path: format!("sources[{i}].endpoint"),
            text: format!("{name} {}: UNREACHABLE: {e}", source.endpoint),
            mismatch: true,
        }),
    }
}

async fn probe_device(cfg: &Config, d: usize, report: &mut Vec<Reported>) {
    let device = &cfg.devices[d];
    let dir = cfg.path.parent().unwrap_or(Path::new("."));
    let unreachable = |e: String| Reported {
        path: format!("devices[{d}].endpoint"),
        text: format!("{} {}: UNREACHABLE: {e}", device.id, device.endpoint),
        mismatch: true,
    };
    let endpoint: SocketAddr = match device.endpoint.parse() {
        Ok(endpoint) => endpoint,
        Err(e) => return report.push(unreachable(format!("not ip:port: {e}"))),
    };
    let mut units = BTreeMap::new();
    let mut index = BTreeMap::new();
    for (u, unit) in device.units.iter().enumerate() {
        match resolve_profile(&unit.profile, dir) {
            Ok(profile) => {
                units.insert(unit.unit, profile);
                index.insert(unit.unit, u);
            }
            Err(e) => report.push(Reported {
                path: format!("devices[{d}].units[{u}].profile"),
                text: format!("{} unit {}: {e}", device.id, unit.unit),
                mismatch: true,
            }),
        }
    }
    let timeout = Duration::from_millis(device.request_timeout_ms);
    match modbus::probe::probe(endpoint, &units, timeout).await {
        Ok(findings) => {
            for f in findings {
                let found = format!(
                    "{} unit {} {} {}: {}",
                    device.id, f.unit, f.part, f.read, f.found
                );
                report.push(Reported::new(
                    format!("devices[{d}].units[{}].profile", index[&f.unit]),
                    found,
                    f.mismatch.as_deref(),
                ));
            }
        }
        Err(e) => report.push(unreachable(e)),
    }
}
