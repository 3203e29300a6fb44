//! The `takt` subcommands. Exit codes: 0 done, 1 failed while running, 2 bad configuration.

mod probe;
mod replay;
mod run;
mod token;

use std::path::Path;
use std::process::ExitCode;

pub(crate) use probe::probe;
pub(crate) use replay::replay;
pub(crate) use run::run;
use takt::config::{self, Config};
pub(crate) use token::{TokenCommand, token};

/// Exit code for a configuration that does not load.
const EXIT_BAD_CONFIG: u8 = 2;

pub(crate) fn check_config(file: &Path) -> ExitCode {
    match config::load(file) {
        Ok(cfg) => {
            let c = &cfg.plant.config;
            println!(
                "{}: ok ({} line(s), {} famil{}, {} station(s), {} model(s))",
                file.display(),
                c.lines.len(),
                c.families.len(),
                if c.families.len() == 1 { "y" } else { "ies" },
                c.stations.len(),
                c.models.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(EXIT_BAD_CONFIG)
        }
    }
}

/// Load the configuration or say why not (every error, with file and line).
fn load(file: &Path) -> Result<Config, ExitCode> {
    let mut cfg = config::load(file).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(EXIT_BAD_CONFIG)
    })?;
    apply_env(&mut cfg);
    Ok(cfg)
}

/// Environment variable that overrides the configured database.
const DATABASE_ENV: &str = "TAKT_DATABASE_URL";
/// Environment variable that overrides the configured HTTP address (`127.0.0.1:0` in tests).
const HTTP_ENV: &str = "TAKT_HTTP_ADDR";

/// The environment's overrides, applied over the file (file first, then environment): the
/// database (`TAKT_DATABASE_URL`) and the HTTP address (`TAKT_HTTP_ADDR`).
fn apply_env(cfg: &mut Config) {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(url) = set(DATABASE_ENV) {
        cfg.controller.database_url = Some(url);
    }
    if let Some(addr) = set(HTTP_ENV) {
        cfg.controller.http_addr = addr;
    }
}

pub(crate) fn block_on(fut: impl Future<Output = Result<(), ExitCode>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// Print an error with its chain of causes and give exit code 1.
fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}
