//! `takt`: the controller's command line. Thin: parse, set up logging, hand over to a command.

mod commands;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// See controller/Cargo.toml: glibc's malloc cost the writer half its time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Takt: line-side sequencing and yard automation controller.
#[derive(Debug, Parser)]
#[command(name = "takt", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller: rebuild state from the journal, then take inputs until Ctrl-C/SIGTERM.
    Run {
        /// Plant configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a configuration file and report every error with file, line and field.
    CheckConfig {
        /// Plant configuration (TOML).
        file: PathBuf,
    },
    /// Commissioning check: connect to every configured source and device, read each configured
    /// node and register once, and report what is there against what the layout expects, every
    /// mismatch with its configuration line. Exit code 1 when anything does not fit.
    Probe {
        /// Plant configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Rebuild the state from the journal, compare it with the stored projections and print a summary.
    Replay {
        /// Plant configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Replace the stored projections with the rebuilt ones.
        #[arg(long)]
        rewrite: bool,
    },
    /// API tokens: make the first admin token, list them, revoke one. Create and revoke journal
    /// and need the controller stopped (while it runs, use POST /api/v1/tokens).
    Token {
        /// Plant configuration (TOML).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: commands::TokenCommand,
    },
}

/// Without `RUST_LOG`: our own information, and only errors from the OPC UA client, which
/// narrates every connection at info level and warns about what is an expected event on a
/// plant network (a line server restarting: "Failed to close session" once per lost link).
/// Its transport and session loop are silent. Each outage is one `OPC UA source down` warning
/// of ours with the cause. `RUST_LOG` brings them back (`RUST_LOG=info,opcua_client=debug`).
const DEFAULT_LOG: &str = "info,opcua_client=error,opcua_client::transport=off,\
     opcua_client::session::event_loop=off,opcua_server=warn,opcua_core=error,opcua_crypto=warn";

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        // Colour for a person at a terminal; plain text for journald and log files.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::CheckConfig { file } => commands::check_config(&file),
        Command::Run { config } => commands::block_on(commands::run(&config)),
        Command::Probe { config } => commands::block_on(commands::probe(&config)),
        Command::Replay { config, rewrite } => {
            commands::block_on(commands::replay(&config, rewrite))
        }
        Command::Token { config, action } => {
            let Some(config) = config else {
                eprintln!("error: --config FILE is required");
                return ExitCode::from(2);
            };
            commands::block_on(commands::token(&config, action))
        }
    }
}
