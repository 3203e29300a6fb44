//! Operator commands under load: 200 API clients, each with its own token, sending commands
//! back to back over real HTTP for 10 s, each answered only after its journal commit. Beside
//! them, in the same run: a probe submitting straight to the journal writer (no HTTP: the
//! journal commit as a submitter sees it) and a disk probe (4 KiB append + fdatasync every
//! 10 ms). The target compares the commands' p99 with the journal's.
//!
//! Run: `cargo bench -p takt-tests --bench command_latency` (add a client count to change it,
//! e.g. `-- 50`). Figures go to BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use takt_core::Input;
use takt_tests::InProcess;
use takt_tests::disk::{DiskProbe, quantile};
use takt_tests::driving::{plant_only_config, seed_operator_tokens};

/// The allocator the `takt` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLIENTS: usize = 200;
const RUN: Duration = Duration::from_secs(10);
/// Each client waits this long after an answer before its next command: 40 a second at most,
/// under the per-token limit of 50.
const THINK: Duration = Duration::from_millis(25);
const PROBE_EVERY: Duration = Duration::from_millis(10);

fn main() {
    let clients = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(CLIENTS);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(clients));
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

async fn run(clients: usize) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = plant_only_config(dir.path());
    let stations: Vec<String> = cfg
        .plant
        .config
        .stations
        .iter()
        .map(|s| s.id.clone())
        .collect();
    let tokens = seed_operator_tokens(&cfg, "HMI", clients).await;
    let takt = InProcess::start(cfg).await;
    let base = format!("http://{}", takt.addr);
    let http = reqwest::Client::new();

    let disk = DiskProbe::start(PROBE_EVERY);
    let deadline = Instant::now() + RUN;
    let journal = {
        let writer = takt.writer.clone();
        tokio::spawn(async move {
            let mut latency = histogram();
            while Instant::now() < deadline {
                let t = Instant::now();
                writer.submit(Input::TICK).await.unwrap();
                latency.saturating_record(t.elapsed().as_micros() as u64);
                tokio::time::sleep(PROBE_EVERY).await;
            }
            latency
        })
    };
    let mut tasks = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let http = http.clone();
        let url = format!(
            "{base}/api/v1/stations/{}/reset",
            stations[i % stations.len()]
        );
        tasks.push(tokio::spawn(async move {
            let (mut latency, mut failed) = (histogram(), 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                let answer = http.post(&url).bearer_auth(&token).send().await;
                match answer {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latency.saturating_record(t.elapsed().as_micros() as u64);
                    }
                    _ => failed += 1,
                }
                tokio::time::sleep(THINK).await;
            }
            (latency, failed)
        }));
    }
    let (mut commands, mut failed) = (histogram(), 0);
    for task in tasks {
        let (latency, f) = task.await.unwrap();
        commands.add(&latency).unwrap();
        failed += f;
    }
    let journal = journal.await.unwrap();
    let mut disk = disk.finish();
    disk.sort_unstable();
    drop(http);
    takt.stop().await;

    let q = |h: &Histogram<u64>, q| ms(h.value_at_quantile(q));
    println!(
        "## command_latency: {clients} API clients, {} s, one POST /stations/{{id}}/reset each after another (+{} ms)",
        RUN.as_secs(),
        THINK.as_millis()
    );
    println!();
    println!("| figure | p50 | p99 | max | count |");
    println!("|---|---|---|---|---|");
    println!(
        "| command, request → answer after its commit | {} | {} | {} | {} ok, {failed} failed |",
        q(&commands, 0.5),
        q(&commands, 0.99),
        ms(commands.max()),
        commands.len()
    );
    println!(
        "| journal submit beside them (no HTTP) | {} | {} | {} | {} |",
        q(&journal, 0.5),
        q(&journal, 0.99),
        ms(journal.max()),
        journal.len()
    );
    println!(
        "| disk probe, 4 KiB + fdatasync every 10 ms | {} | {} | {} | {} |",
        ms(quantile(&disk, 0.5).unwrap_or(0)),
        ms(quantile(&disk, 0.99).unwrap_or(0)),
        ms(disk.last().copied().unwrap_or(0)),
        disk.len()
    );
    let margin = commands.value_at_quantile(0.99) as f64 / 1000.0
        - journal.value_at_quantile(0.99) as f64 / 1000.0;
    println!();
    println!(
        "commands/s: {:.0}; command p99 − journal p99 = {margin:.1} ms (target ≤ 5 ms)",
        commands.len() as f64 / RUN.as_secs_f64()
    );
}
