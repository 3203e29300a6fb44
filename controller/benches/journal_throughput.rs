//! Benchmark harness (not a test): broadcasts through core + journal on SQLite with durable
//! commits. Prints broadcasts/s, commit latency percentiles and memory.
//!
//! Run: `cargo bench -p takt --bench journal_throughput` (add `-- 20000` for a shorter run).
//!
//! A broadcast counts as accepted only when its journal transaction has committed (WAL,
//! `synchronous=FULL`). Three figures:
//! - *core alone*: the in-memory core, no journal: what the domain logic costs;
//! - *throughput*: every broadcast queued as fast as the writer takes them (group commit);
//! - *latency*: broadcasts offered at a steady rate, each timed from hand-over to the writer's
//!   answer after its commit; a flood would only measure the queue.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use takt::runtime::{Journaled, writer};
use takt::store::Store;
use takt_core::{ConfigIndex, Core, Input, RawRecord};

/// xorshift64*: a deterministic option mix without pulling in a RNG crate for a harness.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[(self.next() % from.len() as u64) as usize]
    }
}

/// Each vehicle at every broadcast point of the first line, one value per option key; made one
/// at a time so the harness holds no backlog that would count as the controller's memory.
fn broadcasts(plant: &ConfigIndex, total: u64) -> impl Iterator<Item = Input> + '_ {
    let line = &plant.config.lines[0];
    let models: Vec<&str> = plant
        .config
        .models
        .iter()
        .map(|m| m.code.as_str())
        .collect();
    let options: Vec<(&String, &Vec<String>)> = plant.config.options.iter().collect();
    let mut mix = Mix(0x5EED_7A67);
    (0u64..)
        .flat_map(move |v| {
            let model = (*mix.pick(&models)).to_owned();
            let opts: Vec<String> = options
                .iter()
                .map(|(k, vals)| format!("{k}={}", mix.pick(vals)))
                .collect();
            line.broadcast_points
                .iter()
                .map(move |point| Input::Broadcast {
                    line: line.id.clone(),
                    point: point.id.clone(),
                    record: RawRecord {
                        seq: (v % u64::from(line.modulus)) as u32,
                        vin: format!("WBA{v:014}"),
                        body: format!("{v}"),
                        model: model.clone(),
                        options: opts.clone(),
                    },
                })
        })
        .take(total as usize)
}

/// Resident and peak resident memory of this process, in MiB (Linux).
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn core_only(plant: &Arc<ConfigIndex>, total: u64) -> f64 {
    let mut core = Core::new(plant.clone());
    let t0 = chrono::Utc::now();
    let started = Instant::now();
    for (i, input) in broadcasts(plant, total).enumerate() {
        core.handle(t0 + chrono::TimeDelta::milliseconds(i as i64), input);
        while core.poll_action().is_some() {}
        if i % 512 == 0 {
            drop(core.take_changes());
        }
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn open(plant: &Arc<ConfigIndex>, dir: &Path, name: &str) -> anyhow::Result<writer::Handle> {
    let store = Store::open(&format!("sqlite://{}", dir.join(name).display())).await?;
    let (journaled, _) = Journaled::open(plant.clone(), store, 10_000).await?;
    Ok(writer::spawn(journaled, 512).0)
}

struct Run {
    rate: f64,
    latency: Histogram<u64>,
    not_accepted: u64,
    rss_samples: Vec<(u64, f64)>,
}

/// Offer `total` broadcasts, at `per_sec` if given, else as fast as the writer takes them.
async fn offer(
    handle: writer::Handle,
    inputs: impl Iterator<Item = Input>,
    total: u64,
    per_sec: Option<u64>,
) -> anyhow::Result<Run> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, writer::Pending)>(8_192);
    let collector = tokio::spawn(async move {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        let mut failed = 0u64;
        while let Some((sent, pending)) = rx.recv().await {
            match pending.durable().await {
                Ok(a) if !a.outcome.is_rejected() => {
                    hist.record(sent.elapsed().as_micros() as u64)
                        .expect("in bounds");
                }
                _ => failed += 1,
            }
        }
        (hist, failed)
    });
    let mut rss_samples = Vec::new();
    let started = Instant::now();
    let tick = Duration::from_millis(1);
    let mut next_tick = tokio::time::Instant::now();
    let per_tick = per_sec.map(|r| (r / 1000).max(1));
    for (i, input) in inputs.enumerate() {
        let sent = i as u64 + 1;
        if let Some(n) = per_tick
            && sent % n == 0
        {
            next_tick += tick;
            tokio::time::sleep_until(next_tick).await;
        }
        let pending = handle.enqueue(input).await?;
        tx.send((Instant::now(), pending)).await?;
        if sent.is_multiple_of((total / 4).max(1)) {
            rss_samples.push((sent, rss_mib().0));
        }
    }
    drop(tx);
    let (latency, not_accepted) = collector.await?;
    Ok(Run {
        rate: total as f64 / started.elapsed().as_secs_f64(),
        latency,
        not_accepted,
        rss_samples,
    })
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/example.toml");
    let cfg = takt::config::load(&example).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plant = Arc::new(cfg.plant);
    let dir = tempfile::tempdir()?;

    let core_rate = core_only(&plant, total);
    let flood = offer(
        open(&plant, dir.path(), "flood.db").await?,
        broadcasts(&plant, total),
        total,
        None,
    )
    .await?;
    let paced_rate = 20_000;
    let paced = offer(
        open(&plant, dir.path(), "paced.db").await?,
        broadcasts(&plant, total),
        total,
        Some(paced_rate),
    )
    .await?;
    let (_, peak) = rss_mib();

    println!("## journal_throughput: {total} broadcasts, SQLite WAL, synchronous=FULL");
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| core alone | {core_rate:.0} broadcasts/s |");
    println!(
        "| throughput, core + journal (flood) | {:.0} broadcasts/s |",
        flood.rate
    );
    println!(
        "| commit latency at {paced_rate}/s offered: p50 | {} |",
        ms(paced.latency.value_at_quantile(0.50))
    );
    println!(
        "| commit latency at {paced_rate}/s offered: p99 | {} |",
        ms(paced.latency.value_at_quantile(0.99))
    );
    println!(
        "| commit latency at {paced_rate}/s offered: max | {} |",
        ms(paced.latency.max())
    );
    println!(
        "| achieved rate in the paced run | {:.0} broadcasts/s |",
        paced.rate
    );
    println!(
        "| commit latency in the flood: p99 (queueing) | {} |",
        ms(flood.latency.value_at_quantile(0.99))
    );
    println!(
        "| accepted / not accepted | {} / {} |",
        flood.latency.len() + paced.latency.len(),
        flood.not_accepted + paced.not_accepted
    );
    for (n, rss) in &flood.rss_samples {
        println!("| RSS after {n} broadcasts (flood) | {rss:.1} MiB |");
    }
    println!("| peak RSS | {peak:.1} MiB |");
    Ok(())
}
