//! The soak: the acceptance run at length. The demo scenario `TAKT_SOAK_ROUNDS` times in a row
//! (default 10: 3,000 vehicles, 100 faults, 10 line stops) with the controller SIGKILLed three
//! times a round (30), a disk probe beside it all. It checks what the acceptance run checks —
//! every vehicle once, in sequence, one condition per outage, lamps re-asserted after each
//! reboot — and prints how long broadcasts waited for the journal beside the disk's own tail:
//! a journal that freezes longer than the disk stalls shows as a wait beyond the disk's worst.
//!
//! `cargo bench -p takt-tests --bench soak` (release; ~11 min at the default).

use std::time::{Duration, Instant};

use takt_tests::acceptance::{play, repeated_demo};
use takt_tests::disk::{DiskProbe, quantile};

/// Where in each 300-vehicle round the controller is killed: the acceptance run's places,
/// away from the module reboots (130, 200) whose re-assert is measured.
const KILLS_PER_ROUND: [u32; 3] = [55, 145, 235];
const DISK_PROBE_EVERY: Duration = Duration::from_millis(10);

fn main() {
    let rounds: u32 = std::env::var("TAKT_SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let scenario = repeated_demo(rounds);
    let kills: Vec<u32> = (0..rounds)
        .flat_map(|r| KILLS_PER_ROUND.map(|k| k + r * 300))
        .collect();
    println!(
        "soak: {} vehicles, {} faults and {} stops planned, {} SIGKILLs",
        scenario.vehicles,
        scenario.faults.len(),
        scenario.stops.len(),
        kills.len()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let probe = DiskProbe::start(DISK_PROBE_EVERY);
    let run = rt.block_on(play(scenario, &kills));
    let mut disk = probe.finish();
    let took = started.elapsed();
    let tally = run.check();
    let lags = run.lags();

    let mut waits = lags.ms.clone();
    waits.sort_unstable();
    disk.sort_unstable();
    let ms = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{v}"));
    let disk_ms = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{:.1}", v as f64 / 1e3));
    println!(
        "played in {:.1} min: {} journal entries, {} faults acted out, {} kills; every vehicle once, in sequence",
        took.as_secs_f64() / 60.0,
        tally.journal_entries,
        tally.faults,
        run.kills
    );
    println!(
        "broadcast → journal ms: {} measured, p50 {}, p99 {}, p99.9 {}, max {} \
         ({} published while the link was down, {} duplicates held already)",
        waits.len(),
        ms(quantile(&waits, 0.5)),
        ms(quantile(&waits, 0.99)),
        ms(quantile(&waits, 0.999)),
        ms(waits.last().copied()),
        lags.while_down,
        lags.held_already
    );
    println!(
        "disk beside (4 KiB append + fdatasync every {DISK_PROBE_EVERY:?}) ms: {} syncs, p50 {}, p99 {}, p99.9 {}, max {}",
        disk.len(),
        disk_ms(quantile(&disk, 0.5)),
        disk_ms(quantile(&disk, 0.99)),
        disk_ms(quantile(&disk, 0.999)),
        disk_ms(disk.last().copied())
    );
    // A wait is a freeze of Takt's own when it passes the disk's worst stall plus what the
    // path takes anyway (its p99 with the disk well).
    let worst_stall = disk.last().copied().unwrap_or(0) / 1000;
    let path = quantile(&waits, 0.99).unwrap_or(0);
    let beyond = waits.iter().filter(|&&w| w > worst_stall + path).count();
    println!(
        "waits beyond the disk's worst stall ({worst_stall} ms) + the path's p99 ({path} ms): {beyond}"
    );
    println!(
        "conditions: source_disconnected raises {:?} for {} lost sessions + {} kills; \
         device_offline raises {:?} for {} reboots",
        tally.source_raises,
        tally.session_losses,
        run.kills,
        tally.device_raises,
        tally.device_reboots
    );
    println!(
        "wrong picks: {} from {} wrong presses ({} operator retries of unanswered presses)",
        tally.wrong_picks, tally.wrong_presses, tally.repeats
    );
}
