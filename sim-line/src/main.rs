//! `sim-line`: the plant in a box, from the command line.
//!
//! `sim-line run` binds the floor's servers, plays the scenario against the plant's
//! configuration and writes the ground truth; faults can be typed on standard input while it
//! runs. Running it again with the same ground-truth file picks the scenario up where it
//! stopped.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use takt_core::PlantConfig;
use takt_sim_line::floor::Floor;
use takt_sim_line::player::{Command, Sim, resume_point};
use takt_sim_line::scenario::{Fault, Scenario};
use takt_sim_line::truth::{self, Truth};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// sim-line: a simulated assembly line and its line-side devices, for demos and tests.
#[derive(Debug, Parser)]
#[command(name = "sim-line", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, clap::Args)]
struct Inputs {
    /// The plant's configuration (the controller's TOML file; only the plant part is read).
    #[arg(long)]
    plant: PathBuf,
    /// Scenario: vehicles, mix, line stops, faults.
    #[arg(long)]
    scenario: PathBuf,
    /// Override the scenario's number of vehicles.
    #[arg(long)]
    vehicles: Option<u32>,
    /// Override the scenario's acceleration (60: a 60 s takt lasts one second).
    #[arg(long)]
    acceleration: Option<f64>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the floor and play the scenario. Type faults on standard input while it runs:
    /// drop_sessions, restart_server, restart_device NAME [DOWN_MS], duplicate, correction,
    /// stop_line REASON, run_line.
    Run {
        #[command(flatten)]
        inputs: Inputs,
        /// Servers and operators.
        #[arg(long)]
        floor: PathBuf,
        /// Ground-truth log (JSON lines), appended to; an existing one is resumed from.
        #[arg(long, default_value = "data/sim-line/truth.jsonl")]
        truth: PathBuf,
        /// Start the scenario from the beginning even if the ground truth shows a previous run.
        #[arg(long)]
        fresh: bool,
        /// Exit once the scenario has been played instead of serving until Ctrl-C.
        #[arg(long)]
        exit_when_done: bool,
    },
    /// Print the scenario's timeline as JSON lines, without serving anything.
    Plan {
        #[command(flatten)]
        inputs: Inputs,
    },
}

/// Without `RUST_LOG`: our own information, and only warnings from the OPC UA stack, which
/// narrates every connection at info level.
const DEFAULT_LOG: &str =
    "info,opcua_client=warn,opcua_server=warn,opcua_core=warn,opcua_crypto=warn";

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match tokio::runtime::Runtime::new() {
        Ok(rt) => {
            let result = rt.block_on(async {
                match cli.command {
                    Cmd::Run {
                        inputs,
                        floor,
                        truth,
                        fresh,
                        exit_when_done,
                    } => run(&inputs, &floor, &truth, fresh, exit_when_done).await,
                    Cmd::Plan { inputs } => plan(&inputs),
                }
            });
            // The standard-input reader blocks in a thread of its own until input ends; do not
            // wait for it.
            rt.shutdown_background();
            result
        }
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(inputs: &Inputs) -> anyhow::Result<(PlantConfig, Scenario)> {
    let plant = read_plant(&inputs.plant)?;
    let text = std::fs::read_to_string(&inputs.scenario)
        .with_context(|| format!("reading {}", inputs.scenario.display()))?;
    let mut scenario =
        Scenario::parse(&text).with_context(|| inputs.scenario.display().to_string())?;
    if let Some(v) = inputs.vehicles {
        scenario.vehicles = v;
    }
    if let Some(a) = inputs.acceleration {
        scenario.acceleration = a;
    }
    Ok((plant, scenario))
}

fn read_plant(path: &Path) -> anyhow::Result<PlantConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let plant: PlantConfig = toml::from_str(&text).with_context(|| path.display().to_string())?;
    if let Some(issue) = plant.validate().first() {
        bail!(
            "{}: {}: {} (`takt check-config` lists every problem)",
            path.display(),
            issue.path,
            issue.message
        );
    }
    Ok(plant)
}

fn plan(inputs: &Inputs) -> anyhow::Result<()> {
    let (plant, scenario) = load(inputs)?;
    for step in scenario.plan(&plant)? {
        println!("{}", serde_json::to_string(&step)?);
    }
    Ok(())
}

async fn run(
    inputs: &Inputs,
    floor_path: &Path,
    truth_path: &Path,
    fresh: bool,
    exit_when_done: bool,
) -> anyhow::Result<()> {
    let (plant, scenario) = load(inputs)?;
    let floor = Floor::load(floor_path)?;
    let steps = scenario.plan(&plant)?;
    let line = scenario
        .line
        .clone()
        .or_else(|| plant.lines.first().map(|l| l.id.clone()))
        .context("the plant has no line")?;
    let from = if fresh {
        0
    } else {
        resume_point(&steps, &truth::read(truth_path)?)
    };
    let truth = Truth::append_to(truth_path)
        .with_context(|| format!("opening {}", truth_path.display()))?;
    let mut sim = Sim::start(
        &floor,
        &plant,
        &line,
        scenario.acceleration,
        scenario.seed,
        truth,
    )
    .await?;
    tracing::info!(
        opcua = %sim.opcua().endpoint_url(),
        modules = ?floor.modules.iter().map(|m| format!("{}@{}", m.name, m.listen)).collect::<Vec<_>>(),
        vehicles = scenario.vehicles,
        acceleration = scenario.acceleration,
        resumed_at_step = from,
        truth = %truth_path.display(),
        "sim-line serving"
    );
    let (tx, mut commands) = mpsc::channel(16);
    tokio::spawn(read_commands(tx));
    let stop = shutdown_signal()?;
    tokio::pin!(stop);
    tokio::select! {
        played = sim.play(&steps, from, &mut commands) => {
            played?;
            tracing::info!("scenario played to the end");
            if !exit_when_done {
                tracing::info!("serving until Ctrl-C");
                loop {
                    tokio::select! {
                        () = &mut stop => break,
                        Some(command) = commands.recv() => {
                            if let Err(e) = sim.command(command).await {
                                tracing::warn!(error = %e, "command refused");
                            }
                        }
                    }
                }
            }
        }
        () = &mut stop => {}
    }
    sim.stop().await;
    tracing::info!("sim-line stopped");
    Ok(())
}

/// Faults typed on standard input, one per line.
async fn read_commands(tx: mpsc::Sender<Command>) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match parse_command(&line) {
            Ok(Some(command)) => {
                if tx.send(command).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(input = %line.trim(), "{e}"),
        }
    }
}

fn parse_command(line: &str) -> Result<Option<Command>, String> {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else {
        return Ok(None);
    };
    let rest: Vec<&str> = words.collect();
    let fault = |f| Ok(Some(Command::Fault(f)));
    match (verb, rest.as_slice()) {
        ("drop_sessions", []) => fault(Fault::DropSessions),
        ("restart_server", []) => fault(Fault::RestartServer),
        ("restart_device", [device]) => fault(Fault::RestartDevice {
            device: (*device).to_owned(),
            down_ms: 0,
        }),
        ("restart_device", [device, down]) => fault(Fault::RestartDevice {
            device: (*device).to_owned(),
            down_ms: down
                .parse()
                .map_err(|_| format!("`{down}` is not a number of milliseconds"))?,
        }),
        ("duplicate", []) => fault(Fault::Duplicate),
        ("correction", []) => fault(Fault::Correction),
        ("stop_line", reason) => Ok(Some(Command::StopLine(reason.join(" ")))),
        ("run_line", []) => Ok(Some(Command::RunLine)),
        _ => Err(
            "unknown command; one of: drop_sessions, restart_server, restart_device NAME \
             [DOWN_MS], duplicate, correction, stop_line REASON, run_line"
                .to_owned(),
        ),
    }
}

/// Ctrl-C or SIGTERM.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_commands_parse_and_mistakes_are_named() {
        assert_eq!(parse_command("  "), Ok(None));
        assert_eq!(
            parse_command("restart_device PTL-DOORS 300"),
            Ok(Some(Command::Fault(Fault::RestartDevice {
                device: "PTL-DOORS".into(),
                down_ms: 300
            })))
        );
        assert_eq!(
            parse_command("stop_line andon T3-12"),
            Ok(Some(Command::StopLine("andon T3-12".into())))
        );
        assert_eq!(
            parse_command("duplicate"),
            Ok(Some(Command::Fault(Fault::Duplicate)))
        );
        let bad = parse_command("restart_device PTL-DOORS soon").expect_err("not a number");
        assert!(bad.contains("`soon`"), "{bad}");
        let unknown = parse_command("explode").expect_err("unknown");
        assert!(unknown.contains("drop_sessions"), "{unknown}");
        assert!(
            parse_command("gap 3").is_err(),
            "gaps come from the scenario only"
        );
    }
}
