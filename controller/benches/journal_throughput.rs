//! Benchmark harness (not a test): broadcasts through core + journal on SQLite with durable
//! commits. Prints broadcasts/s, commit latency percentiles and memory.
//!
//! Run: `cargo bench -p takt --bench journal_throughput` (add `-- 20000` for a shorter run;
//! name sections, e.g. `-- 50000 flood`, to run only those; `rate=20000` paces at that rate
//! only and `secs=30` paces each rate for 30 s).
//!
//! A broadcast counts as accepted only when its journal transaction has committed (WAL,
//! `synchronous=FULL`). Figures:
//! - *core alone*: the in-memory core, no journal: what the domain logic costs;
//! - *throughput*: every broadcast queued as fast as the writer takes them (group commit);
//! - *latency*: broadcasts offered at steady rates, each timed from hand-over to the writer's
//!   answer after its commit (in a flood it would only measure the queue);
//! - *commit cost by batch size*: one batch staged (the core, and its rows encoded) and
//!   committed at a time, nothing else running: what a group commit of n inputs costs, which is
//!   what bounds the latency;
//! - *the disk alone*: appends fsynced one after another, no SQLite: the floor every durable
//!   commit stands on, and its stalls, which no journal design can hide from a p99;
//! - *outbox A/B*: the flood and one batch's cost with the event outbox stored and without
//!   (the core still numbers its events), interleaved A B A B in one run so that the disk's
//!   mood of the minute falls on both.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mimalloc::MiMalloc;
use takt::runtime::{Journaled, writer};
use takt::store::Store;
use takt_core::SequencingInput;
use takt_core::{Change, ConfigIndex, Core, Input, RawRecord};
use tokio::task::JoinHandle;

/// The allocator the `takt` binary runs with, so the figures are the binary's.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

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
            line.broadcast_points.iter().map(move |point| {
                Input::Sequencing(SequencingInput::Broadcast {
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

/// What the core alone did: broadcasts/s, RSS after each quarter, live vehicles at the end,
/// outbox events by name.
struct CoreRun {
    rate: f64,
    rss: Vec<(u64, f64)>,
    live: usize,
    events: std::collections::BTreeMap<&'static str, u64>,
}

/// The core alone, no journal.
fn core_only(plant: &Arc<ConfigIndex>, total: u64) -> CoreRun {
    let mut core = Core::new(plant.clone());
    let t0 = chrono::Utc::now();
    let mut rss = Vec::new();
    let mut events = std::collections::BTreeMap::new();
    let started = Instant::now();
    for (i, input) in broadcasts(plant, total).enumerate() {
        core.handle(t0 + chrono::TimeDelta::milliseconds(i as i64), &input);
        while core.poll_action().is_some() {}
        for change in core.take_changes() {
            if let Change::Event(e) = change {
                *events.entry(e.event.name()).or_default() += 1;
            }
        }
        let done = i as u64 + 1;
        if done.is_multiple_of((total / 4).max(1)) {
            rss.push((done, rss_mib().0));
        }
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    CoreRun {
        rate,
        rss,
        live: core.vehicles().count(),
        events,
    }
}

/// The disk under the journal without SQLite: 40 KiB appended and fsynced, again and again, for
/// `run`. Latencies in µs, and how many fsyncs took longer than the 10 ms latency target.
fn disk_alone(dir: &Path, run: Duration) -> anyhow::Result<(Histogram<u64>, u64)> {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join("fsync-probe"))?;
    let block = vec![0x5a_u8; 40 * 1024];
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let started = Instant::now();
    while started.elapsed() < run {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        hist.record(t.elapsed().as_micros() as u64)?;
    }
    let over = hist.count_between(10_001, hist.max());
    drop(file);
    std::fs::remove_file(dir.join("fsync-probe"))?;
    Ok((hist, over))
}

/// Whether a run stores the outbox (as `takt run` always does) or only the journal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outbox {
    Stored,
    Dropped,
}

async fn journaled(
    plant: &Arc<ConfigIndex>,
    store: Store,
    snapshot_every: u64,
    outbox: Outbox,
) -> anyhow::Result<Journaled> {
    let (journaled, _) = Journaled::open(plant.clone(), store, snapshot_every).await?;
    Ok(match outbox {
        Outbox::Stored => journaled,
        Outbox::Dropped => journaled.without_stored_outbox(),
    })
}

async fn open(
    plant: &Arc<ConfigIndex>,
    dir: &Path,
    name: &str,
    (batch_max, snapshot_every): (usize, u64),
    outbox: Outbox,
) -> anyhow::Result<(writer::Handle, JoinHandle<Journaled>)> {
    let store = Store::open(&format!("sqlite://{}", dir.join(name).display())).await?;
    let journaled = journaled(plant, store, snapshot_every, outbox).await?;
    Ok(writer::spawn(journaled, batch_max))
}

struct Run {
    rate: f64,
    latency: Histogram<u64>,
    not_accepted: u64,
    rss_samples: Vec<(u64, f64)>,
}

/// Offer `total` broadcasts, at `per_sec` if given, else as fast as the writer takes them; then
/// stop the writer and close its store, so that the close (SQLite checkpoints the whole WAL into
/// the database file when its last connection goes) is not inside the next run's figures.
async fn offer(
    (handle, writer): (writer::Handle, JoinHandle<Journaled>),
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
    // Send in ticks of at least 1 ms (the timer's resolution), as many per tick as the rate asks.
    let tick = per_sec.map(|r| Duration::from_secs_f64((1.0 / r as f64).max(0.001)));
    let per_tick = per_sec.map(|r| (r / 1000).max(1));
    let mut next_tick = tokio::time::Instant::now();
    for (i, input) in inputs.enumerate() {
        let sent = i as u64 + 1;
        if let (Some(tick), Some(n)) = (tick, per_tick)
            && sent.is_multiple_of(n)
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
    let rate = total as f64 / started.elapsed().as_secs_f64();
    drop(handle);
    writer.await?.store().close().await;
    Ok(Run {
        rate,
        latency,
        not_accepted,
        rss_samples,
    })
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// Stage and commit batches of `size` inputs one at a time; mean µs per batch for each step.
async fn commit_cost(
    plant: &Arc<ConfigIndex>,
    dir: &Path,
    size: usize,
    outbox: Outbox,
) -> anyhow::Result<(u128, u128)> {
    let name = match outbox {
        Outbox::Stored => format!("cost{size}.db"),
        Outbox::Dropped => format!("cost{size}-no-outbox.db"),
    };
    let store = Store::open(&format!("sqlite://{}", dir.join(name).display())).await?;
    let mut journaled = journaled(plant, store.clone(), 0, outbox).await?;
    let rounds = (20_000 / size).clamp(20, 200);
    let mut inputs = broadcasts(plant, (rounds * size) as u64);
    let (mut stage_us, mut commit_us) = (0, 0);
    for _ in 0..rounds {
        let now = chrono::Utc::now();
        let batch: Vec<_> = inputs.by_ref().take(size).map(|i| (now, i)).collect();
        let t = Instant::now();
        let mut staged = journaled.stage(batch);
        stage_us += t.elapsed().as_micros();
        let t = Instant::now();
        staged.commit(&store).await?;
        commit_us += t.elapsed().as_micros();
    }
    Ok((stage_us / rounds as u128, commit_us / rounds as u128))
}

/// The parts of the harness; all run unless some are named on the command line.
const SECTIONS: [&str; 6] = ["core", "flood", "paced", "cost", "disk", "outbox"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let total: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let named: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| SECTIONS.contains(a))
        .collect();
    let run = |section: &str| named.is_empty() || named.contains(&section);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/example.toml");
    let cfg = takt::config::load(&example).map_err(|e| anyhow::anyhow!("{e}"))?;
    let batch_max = cfg.controller.batch_max;
    // The writer as `takt run` sets it up from the example configuration.
    let writer = (batch_max, cfg.controller.snapshot_every);
    let plant = Arc::new(cfg.plant);
    let dir = tempfile::tempdir()?;

    println!(
        "## journal_throughput: {total} broadcasts, SQLite WAL, synchronous=FULL, group commit ≤ {batch_max}, snapshot every {} inputs",
        writer.1
    );
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    if run("core") {
        let core = core_only(&plant, total);
        println!(
            "| core alone (no journal) | {:.0} broadcasts/s |",
            core.rate
        );
        for (n, rss) in &core.rss {
            println!("| core alone: RSS after {n} broadcasts | {rss:.1} MiB |");
        }
        println!("| core alone: live vehicles at the end | {} |", core.live);
        for (name, n) in &core.events {
            let per = *n as f64 / total as f64;
            println!("| core alone: `{name}` outbox events per broadcast | {per:.2} |");
        }
    }
    if run("flood") {
        let flood = offer(
            open(&plant, dir.path(), "flood.db", writer, Outbox::Stored).await?,
            broadcasts(&plant, total),
            total,
            None,
        )
        .await?;
        let (_, peak_after_flood) = rss_mib();
        println!(
            "| core + journal, every broadcast queued at once | {:.0} broadcasts/s |",
            flood.rate
        );
        println!(
            "| commit latency in that flood: p50 / p99 (queueing) | {} / {} |",
            ms(flood.latency.value_at_quantile(0.5)),
            ms(flood.latency.value_at_quantile(0.99))
        );
        println!(
            "| accepted / not accepted in the flood | {} / {} |",
            flood.latency.len(),
            flood.not_accepted
        );
        for (n, rss) in &flood.rss_samples {
            println!("| RSS after {n} broadcasts | {rss:.1} MiB |");
        }
        println!("| peak RSS after the flood | {peak_after_flood:.1} MiB |");
    }
    let mut paced = Vec::new();
    if run("paced") {
        // (offered per second, broadcasts): a few seconds each, enough samples for a p99.
        let rates = [
            (100, 2_000),
            (1_000, 10_000),
            (5_000, 25_000),
            (10_000, 50_000),
            (15_000, 60_000),
            // The target's run: 100,000 broadcasts at 20,000/s.
            (20_000, 100_000),
        ];
        // `rate=N` on the command line runs only that rate (for a profiler).
        let only: Vec<u64> = args
            .iter()
            .filter_map(|a| a.strip_prefix("rate=")?.parse().ok())
            .collect();
        // `secs=N` paces every rate for N seconds instead (a longer window for the tail).
        let secs: Option<u64> = args
            .iter()
            .find_map(|a| a.strip_prefix("secs=")?.parse().ok());
        for (rate, n) in rates {
            if !only.is_empty() && !only.contains(&rate) {
                continue;
            }
            let n = secs.map_or(n, |s| rate * s);
            let db = format!("paced{rate}.db");
            let run = offer(
                open(&plant, dir.path(), &db, writer, Outbox::Stored).await?,
                broadcasts(&plant, n),
                n,
                Some(rate),
            )
            .await?;
            paced.push((rate, run, rss_mib().0));
        }
    }
    let mut costs = Vec::new();
    if run("cost") {
        for size in [1, 10, 100, 1_000] {
            let cost = commit_cost(&plant, dir.path(), size, Outbox::Stored).await?;
            costs.push((size, cost));
        }
    }
    let ab = if run("outbox") {
        Some(outbox_ab(&plant, dir.path(), writer, total).await?)
    } else {
        None
    };
    println!("| peak RSS, whole harness | {:.1} MiB |", rss_mib().1);
    if run("disk") {
        let probe_dir = dir.path().to_owned();
        let (disk, disk_stalls) =
            tokio::task::spawn_blocking(move || disk_alone(&probe_dir, Duration::from_secs(20)))
                .await??;
        println!(
            "| disk alone, 40 KiB append + fsync for 20 s: p50 / p99 / max | {} / {} / {} |",
            ms(disk.value_at_quantile(0.5)),
            ms(disk.value_at_quantile(0.99)),
            ms(disk.max())
        );
        println!(
            "| disk alone: fsyncs over 10 ms, of all | {disk_stalls} of {} |",
            disk.len()
        );
    }
    if !paced.is_empty() {
        println!();
        println!("| offered | achieved | p50 | p99 | max | RSS after |");
        println!("|---|---|---|---|---|---|");
        for (rate, run, rss) in &paced {
            println!(
                "| {rate}/s | {:.0}/s | {} | {} | {} | {rss:.1} MiB |",
                run.rate,
                ms(run.latency.value_at_quantile(0.5)),
                ms(run.latency.value_at_quantile(0.99)),
                ms(run.latency.max())
            );
        }
        // The fastest run's memory as it went: flat means finished vehicles are let go.
        if let Some((rate, run, _)) = paced.last() {
            let samples: Vec<String> = run
                .rss_samples
                .iter()
                .map(|(n, rss)| format!("{rss:.1} MiB after {n}"))
                .collect();
            println!();
            println!("RSS during the {rate}/s run: {}", samples.join(", "));
        }
    }
    if !costs.is_empty() {
        println!();
        println!("| batch size | stage (core + encode) | commit (SQL) | per input |");
        println!("|---|---|---|---|");
        for (size, (stage, commit)) in &costs {
            println!(
                "| {size} | {} | {} | {:.0} µs |",
                ms(*stage as u64),
                ms(*commit as u64),
                (*stage + *commit) as f64 / *size as f64
            );
        }
    }
    if let Some(ab) = ab {
        ab.print();
    }
    Ok(())
}

/// The outbox A/B: floods and batch costs of both kinds, interleaved.
struct OutboxAb {
    /// (with outbox, without) flood rates, one pair per round.
    floods: Vec<(f64, f64)>,
    /// (stage, commit) µs of a 100-input batch: with outbox, without.
    cost: ((u128, u128), (u128, u128)),
}

async fn outbox_ab(
    plant: &Arc<ConfigIndex>,
    dir: &Path,
    writer: (usize, u64),
    total: u64,
) -> anyhow::Result<OutboxAb> {
    let mut floods = Vec::new();
    for round in 0..2 {
        let rate = |outbox: Outbox| {
            let name = format!(
                "ab{round}-{}.db",
                if outbox == Outbox::Stored { "a" } else { "b" }
            );
            async move {
                let run = offer(
                    open(plant, dir, &name, writer, outbox).await?,
                    broadcasts(plant, total),
                    total,
                    None,
                )
                .await?;
                anyhow::Ok(run.rate)
            }
        };
        let with = rate(Outbox::Stored).await?;
        let without = rate(Outbox::Dropped).await?;
        floods.push((with, without));
    }
    let cost = (
        commit_cost(plant, dir, 100, Outbox::Stored).await?,
        commit_cost(plant, dir, 100, Outbox::Dropped).await?,
    );
    Ok(OutboxAb { floods, cost })
}

impl OutboxAb {
    fn print(&self) {
        println!();
        println!("| outbox A/B | with outbox | without | outbox costs |");
        println!("|---|---|---|---|");
        for (round, (with, without)) in self.floods.iter().enumerate() {
            println!(
                "| flood, round {} | {with:.0}/s | {without:.0}/s | {:.1} % of the rate |",
                round + 1,
                100.0 * (1.0 - with / without)
            );
        }
        let ((stage_a, commit_a), (stage_b, commit_b)) = self.cost;
        let share = |a: u128, b: u128| 100.0 * (a as f64 - b as f64) / b as f64;
        println!(
            "| batch of 100: stage (core + encode) | {} | {} | +{:.1} % |",
            ms(stage_a as u64),
            ms(stage_b as u64),
            share(stage_a, stage_b)
        );
        println!(
            "| batch of 100: commit (SQL) | {} | {} | +{:.1} % |",
            ms(commit_a as u64),
            ms(commit_b as u64),
            share(commit_a, commit_b)
        );
    }
}
