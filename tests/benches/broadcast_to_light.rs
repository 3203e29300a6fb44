//! Broadcast-to-light latency: from the moment sim-line's OPC UA server sets a broadcast to the
//! moment the write of its pick light reaches sim-line's Modbus module — through the `takt`
//! binary (subscription, journal commit, core, light router, Modbus write) and, in the same run,
//! through the glue plants write today (`tests/interop/bench_bridge.py`: an asyncua
//! subscription → pymodbus write, no journal), and last the floor under both (a bare OPC UA
//! subscriber's notification, the read after it, one fdatasync). Also the controller's resident
//! memory at idle and after 10,000 vehicles.
//!
//! Run: `cargo bench -p takt-tests --bench broadcast_to_light` (about 6 minutes). Figures go
//! to BENCHMARKS.md.
//!
//! The bench plant has 40 pick stations (on two Modbus gateways), one per model; broadcast n
//! carries model n mod 40, so each station sees every 40th vehicle and simulated operators (pressing at once) have it
//! idle again before its next one: every broadcast lights a pick at once, as on a real line.
//! Both peers read a FIFO layout (the glue cannot acknowledge a handshake) with a 10 ms
//! publishing and sampling interval; broadcasts are set at jittered times (±50 % of the
//! mean interval) so they do not lock onto the publish cycle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use takt_core::SequencingInput;
use takt_core::{PlantConfig, RawRecord};
use takt_sim_line::floor::Floor;
use takt_sim_line::player::Sim;
use takt_sim_line::truth::{Fact, Truth};
use takt_tests::disk::{DiskProbe, fsyncs};
use takt_tests::{Controller, repo_root, rss_kib, venv_python};

const STATIONS: u32 = 40;
/// Stations per light module (Modbus gateway): two gateways, each polled on its own connection.
const PER_MODULE: u32 = 20;
const MODULES: [&str; 2] = ["PTL-A", "PTL-B"];
const RACK: u32 = 4;
const GREEN: u16 = 1;
const WARM_UP: usize = 40;
/// (broadcasts per second, broadcasts measured)
const RATES: [(f64, usize); 2] = [(20.0, 600), (100.0, 3000)];
/// Vehicles through the controller before its memory is read the second time.
const VEHICLES_FOR_RSS: usize = 10_000;
/// How often the controller polls each unit's buttons: Takt's default. Operators hold a button
/// for [`HOLD_MS`], as long as a person's press and long enough for the default debounce.
const BUTTON_POLL_MS: u64 = 20;
const HOLD_MS: u64 = 100;
/// How often the disk probe beside each run appends and syncs.
const DISK_PROBE_EVERY: Duration = Duration::from_millis(10);
/// A light later than this after its broadcast, or never, is lost.
const LOST_AFTER: Duration = Duration::from_secs(1);

fn main() {
    let python = venv_python();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "broadcast-to-light latency, {STATIONS} stations, FIFO layout, 10 ms publishing \
             and sampling, set times jittered ±50 %"
        );
        println!(
            "disk columns: a 4 KiB append + fdatasync every {} ms beside the peer, on the same \
             disk, during that run",
            DISK_PROBE_EVERY.as_millis()
        );
        println!(
            "{:<14} {:>6} {:>6} {:>8} {:>8} {:>8} {:>5} {:>9} {:>9} {:>9}",
            "peer",
            "rate/s",
            "n",
            "p50 ms",
            "p99 ms",
            "max ms",
            "lost",
            "disk p50",
            "disk p99",
            "disk max"
        );
        let rss = takt_runs().await;
        python_runs(&python).await;
        let dir = tempfile::tempdir().unwrap();
        let reads = floor_runs(dir.path()).await;
        println!(
            "opcua floor: Read after the notification, min / p50 / p99: {} ms",
            spread(reads)
        );
        let disk = fsyncs(dir.path(), 2_000);
        println!(
            "disk: 4 KiB append + fdatasync, min / p50 / p99: {} ms",
            spread(disk)
        );
        println!(
            "takt resident memory: idle {:.1} MiB, after {VEHICLES_FOR_RSS} vehicles {:.1} MiB",
            rss.0 as f64 / 1024.0,
            rss.1 as f64 / 1024.0
        );
    });
}

/// The plant: one line, one model and one in-plant family per station.
fn plant_toml() -> String {
    let mut t = String::from(
        "[plant]\nname = \"Bench\"\n\n[controller]\ndata_dir = \"data\"\n\n\
         [options]\nX = [\"A\", \"B\"]\n\n\
         [[lines]]\nid = \"L1\"\nmodulus = 10000\ntakt_ms = 60000\n\
         broadcast_points = [{ id = \"B1\" }]\n\
         install_stations = [{ id = \"I1\", broadcast_point = \"B1\", offset_positions = 60 }]\n",
    );
    for k in 0..STATIONS {
        t += &format!(
            "\n[[models]]\ncode = \"M{k:02}\"\nname = \"model {k}\"\n\n\
             [[families]]\nid = \"f{k:02}\"\nline = \"L1\"\ninstall_station = \"I1\"\n\
             rack_size = {RACK}\nsequencing = \"in-plant\"\nstation = \"S{k:02}\"\n\
             models = [\"M{k:02}\"]\n\
             rules = [{{ options = [\"X=A\"], part = \"P{k:02}A\" }}, {{ part = \"P{k:02}B\" }}]\n\n\
             [[stations]]\nid = \"S{k:02}\"\n\
             bins = [{{ id = \"S{k:02}A\", part = \"P{k:02}A\" }}, {{ id = \"S{k:02}B\", part = \"P{k:02}B\" }}]\n"
        );
    }
    t
}

/// Plant I/O of the controller: sim-line's FIFO at B1 and two Modbus gateways, station k on
/// gateway k / 20, unit k % 20 + 1 (bins at 0 and 1, rack slots from 4).
fn plant_io(sim: &Sim, pki: &Path) -> String {
    let fields = |f: &str| format!("s=L1.B1.Fifo[{{i}}].{f}");
    let mut t = format!(
        "\n[[sources]]\nline = \"L1\"\npoint = \"B1\"\nendpoint = \"opc.tcp://{}/\"\n\
         namespace_uri = \"urn:takt:sim-line\"\npki_dir = \"{}\"\npublishing_interval_ms = 10\n\
         [sources.layout]\nkind = \"fifo\"\ntrigger = \"s=L1.B1.Count\"\nslot_count = 8\n\
         slot_template = {{ seq = \"{}\", vin = \"{}\", model = \"{}\", options = \"{}\" }}\n\n\
         ",
        sim.opcua().local_addr(),
        pki.display(),
        fields("Seq"),
        fields("Vin"),
        fields("Model"),
        fields("Options"),
    );
    for (m, module) in MODULES.iter().enumerate() {
        t += &format!(
            "\n[[devices]]\nid = \"{module}\"\nendpoint = \"{}\"\npoll_ms = {BUTTON_POLL_MS}\nunits = [\n",
            sim.module_addr(module).unwrap()
        );
        for u in 0..PER_MODULE {
            let k = m as u32 * PER_MODULE + u;
            t += &format!(
                "  {{ unit = {}, profile = \"sim-line\", station = \"S{k:02}\", first_bin_position = 0, first_slot_position = 4 }},\n",
                u + 1
            );
        }
        t += "]\n";
    }
    t
}

fn floor(dir: &Path, operators: bool) -> Floor {
    let units: Vec<String> = (1..=PER_MODULE).map(|u| u.to_string()).collect();
    // A 1 ms server tick: a 10 ms publish goes out 10 ms after the last, not at the first 10 ms
    // tick after that (up to 20).
    let mut text =
        "[opcua]\nlisten = \"127.0.0.1:0\"\nlayout = \"fifo\"\nfifo_slots = 8\ntick_ms = 1\n"
            .to_owned();
    for module in MODULES {
        text += &format!(
            "\n[[modules]]\nname = \"{module}\"\nlisten = \"127.0.0.1:0\"\nunits = [{}]\n",
            units.join(", ")
        );
        for u in (1..=PER_MODULE).filter(|_| operators) {
            text += &format!(
                "\n[[operators]]\nmodule = \"{module}\"\nunit = {u}\nbins = {{ first = 0, count = 2 }}\n\
                 slots = {{ first = 4, count = {RACK} }}\npress_after_ms = 0\nhold_ms = {HOLD_MS}\n\
                 retry_after_ms = 2000\n"
            );
        }
    }
    let mut floor = Floor::parse(&text).unwrap();
    floor.opcua.pki_dir = dir.join("sim-pki");
    floor
}

async fn start_sim(dir: &Path, operators: bool) -> Sim {
    let plant: PlantConfig = toml::from_str(&plant_toml()).unwrap();
    Sim::start(
        &floor(dir, operators),
        &plant,
        "L1",
        1.0,
        1,
        Truth::in_memory(),
    )
    .await
    .unwrap()
}

/// One broadcast as set: when (sim-line's clock, and the wall clock in µs), its number, and
/// the (unit, bin position) its pick light must show on.
#[derive(Debug, Clone, Copy)]
struct Sent {
    t_us: u64,
    wall_us: i64,
    seq: u32,
    module: &'static str,
    unit: u8,
    position: u16,
}

/// Broadcasts vehicles `first..first + count` at `rate` per second, jittered.
async fn broadcast(
    sim: &Sim,
    rng: &mut ChaCha8Rng,
    first: usize,
    count: usize,
    rate: f64,
) -> Vec<Sent> {
    let mean = 1.0 / rate;
    let mut sent = Vec::with_capacity(count);
    let mut due = tokio::time::Instant::now();
    for n in first..first + count {
        let k = (n as u32) % STATIONS;
        let a = rng.next_u64().is_multiple_of(2);
        let seq = (n % 10_000) as u32;
        let record = RawRecord {
            seq,
            vin: format!("BENCH{n:012}"),
            body: String::new(),
            model: format!("M{k:02}"),
            options: vec![format!("X={}", if a { "A" } else { "B" })],
        };
        tokio::time::sleep_until(due).await;
        let t_us = sim.truth().t_us(Instant::now());
        let wall_us = chrono::Utc::now().timestamp_micros();
        sim.opcua().broadcast("B1", record);
        sent.push(Sent {
            t_us,
            wall_us,
            seq,
            module: MODULES[(k / PER_MODULE) as usize],
            unit: (k % PER_MODULE + 1) as u8,
            position: u16::from(!a),
        });
        let jitter = 0.5 + (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        due += Duration::from_secs_f64(mean * jitter);
    }
    sent
}

/// Latency of each broadcast (µs), `None` if its light never came or came too late.
fn latencies(truth: &Truth, sent: &[Sent]) -> Vec<Option<u64>> {
    let mut writes: BTreeMap<(String, u8, u16), Vec<u64>> = BTreeMap::new();
    for e in truth.entries() {
        if let Fact::Lamp {
            device,
            unit,
            position,
            colour: GREEN,
            ..
        } = e.fact
        {
            writes
                .entry((device, unit, position))
                .or_default()
                .push(e.t_us);
        }
    }
    for times in writes.values_mut() {
        times.sort_unstable();
    }
    let limit = LOST_AFTER.as_micros() as u64;
    sent.iter()
        .map(|s| {
            let times = writes.get(&(s.module.to_owned(), s.unit, s.position))?;
            let i = times.partition_point(|&t| t <= s.t_us);
            times
                .get(i)
                .map(|&t| t - s.t_us)
                .filter(|&latency| latency <= limit)
        })
        .collect()
}

/// Where Takt's time goes: from the set to the journal's time of the input (subscription,
/// read, queue), and from there to the light (commit, router, Modbus write). p50 / p99 in ms.
async fn breakdown(db: &Path, sent: &[Sent], total: &[Option<u64>]) -> String {
    let store = takt::store::Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let mut journaled: BTreeMap<u32, i64> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store.journal_after(after, 10_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        for e in page {
            if let takt_core::Input::Sequencing(SequencingInput::Broadcast { record, .. }) = e.input
            {
                journaled.insert(record.seq, e.at.timestamp_micros());
            }
        }
    }
    store.close().await;
    let (mut to_journal, mut to_light) = (Vec::new(), Vec::new());
    for (s, total) in sent.iter().zip(total) {
        if let (Some(&at), Some(total)) = (journaled.get(&s.seq), total) {
            let first = u64::try_from(at - s.wall_us).unwrap_or(0);
            to_journal.push(first);
            to_light.push(total.saturating_sub(first));
        }
    }
    let quantiles = |v: &mut Vec<u64>| {
        v.sort_unstable();
        let at = |q: f64| {
            v.get(((v.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .map_or(0.0, |&us| us as f64 / 1000.0)
        };
        format!("{:.2} / {:.2}", at(0.5), at(0.99))
    };
    format!(
        "set → journal {}, journal → light {}",
        quantiles(&mut to_journal),
        quantiles(&mut to_light)
    )
}

fn report(peer: &str, rate: f64, measured: &[Option<u64>], mut disk: Vec<u64>) {
    disk.sort_unstable();
    let mut ok: Vec<u64> = measured.iter().flatten().copied().collect();
    ok.sort_unstable();
    let lost = measured.len() - ok.len();
    let ms = |us: u64| us as f64 / 1000.0;
    let at = |q: f64| ok.get(((ok.len() as f64 * q).ceil() as usize).saturating_sub(1));
    let (p50, p99, max) = (at(0.5), at(0.99), ok.last());
    let show = |v: Option<&u64>| v.map_or("-".to_owned(), |&v| format!("{:.2}", ms(v)));
    let disk_at = |q: f64| disk.get(((disk.len() as f64 * q).ceil() as usize).saturating_sub(1));
    println!(
        "{peer:<14} {rate:>6} {:>6} {:>8} {:>8} {:>8} {lost:>5} {:>9} {:>9} {:>9}",
        measured.len(),
        show(p50),
        show(p99),
        show(max),
        show(disk_at(0.5)),
        show(disk_at(0.99)),
        show(disk.last())
    );
}

/// A warm-up, then each of `rates`, one line each (and where Takt's time went, given its
/// journal); returns the generator and the next vehicle, to go on from there. `arrived` gives
/// each broadcast's latency to what the peer is measured at: its pick light, or for the floor
/// probe its notification.
async fn measure(
    sim: &Sim,
    peer: &str,
    rates: &[(f64, usize)],
    journal: Option<&Path>,
    arrived: impl Fn(&[Sent]) -> Vec<Option<u64>>,
) -> (ChaCha8Rng, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_124);
    broadcast(sim, &mut rng, 0, WARM_UP, 20.0).await;
    let mut next = WARM_UP;
    for &(rate, count) in rates {
        let probe = DiskProbe::start(DISK_PROBE_EVERY);
        let sent = broadcast(sim, &mut rng, next, count, rate).await;
        next += count;
        tokio::time::sleep(LOST_AFTER).await;
        let disk = probe.finish();
        let measured = arrived(&sent);
        report(peer, rate, &measured, disk);
        if let Some(db) = journal {
            println!(
                "  {peer} {rate}/s: {}",
                breakdown(db, &sent, &measured).await
            );
        }
    }
    (rng, next)
}

/// Takt at both rates, then enough vehicles for the memory figure; (idle, after) RSS in KiB.
async fn takt_runs() -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), true).await;
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        plant_toml() + &plant_io(&sim, &dir.path().join("takt-pki")),
    )
    .unwrap();
    let controller = Controller::start(dir.path(), &config).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(controller.pid());
    let (mut rng, next) = measure(
        &sim,
        "takt",
        &RATES,
        Some(&dir.path().join("data/takt.db")),
        |sent| latencies(sim.truth(), sent),
    )
    .await;
    let rest = VEHICLES_FOR_RSS.saturating_sub(next);
    broadcast(&sim, &mut rng, next, rest, 100.0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(controller.pid());
    controller.terminate().await;
    sim.stop().await;
    (idle, after)
}

/// The floor under every peer: an OPC UA client that takes the newest slot's number from its
/// notification and does nothing else (same publishing and sampling interval, Nagle off, the
/// monitored item queueing every value), and after each notification one Read of that node,
/// the round trip a FIFO client pays before it knows the record. Returns the reads' round trips
/// in µs.
async fn floor_runs(dir: &Path) -> Vec<u64> {
    use opcua::client::{ClientBuilder, DataChangeCallback, IdentityToken};
    use opcua::crypto::SecurityPolicy;
    use opcua::types::{
        AttributeId, MessageSecurityMode, MonitoredItemCreateRequest, MonitoringMode,
        MonitoringParameters, NodeId, ReadValueId, TimestampsToReturn, UserTokenPolicy, Variant,
    };
    use std::sync::{Arc, Mutex};
    use takt_sim_line::opcua::{fifo_field, node_name};

    let sim = start_sim(dir, false).await;
    let interval = Duration::from_millis(10);
    let client = ClientBuilder::new()
        .application_name("Takt bench floor probe")
        .application_uri("urn:takt:bench-probe")
        .pki_dir(dir.join("probe-pki"))
        .create_sample_keypair(true)
        .trust_server_certs(true)
        .session_retry_limit(0)
        .min_publish_interval(interval)
        .client()
        .unwrap();
    let url = sim.opcua().endpoint_url();
    let (session, event_loop) = client
        .session_builder()
        .connect_to_endpoint_directly((
            url.as_str(),
            SecurityPolicy::None.to_uri(),
            MessageSecurityMode::None,
            UserTokenPolicy::anonymous(),
        ))
        .unwrap()
        .user_identity_token(IdentityToken::Anonymous)
        .with_connector(takt_plc_bridge::opcua::NoDelay)
        .build(client.certificate_store().clone())
        .unwrap();
    let event_loop = event_loop.spawn();
    assert!(session.wait_for_connection().await, "the probe connects");
    let ns = session
        .get_namespace_index("urn:takt:sim-line")
        .await
        .unwrap();
    let newest = NodeId::new(ns, node_name("L1", Some("B1"), &fifo_field(0, "Seq")));

    // seq → when its notification arrived (the first time).
    let arrivals = Arc::new(Mutex::new(BTreeMap::<u32, Instant>::new()));
    let (nudge, mut nudged) = tokio::sync::mpsc::unbounded_channel();
    let sink = Arc::clone(&arrivals);
    let subscription = session
        .create_subscription(
            interval,
            100,
            10,
            0,
            0,
            true,
            DataChangeCallback::new(move |value, _item| {
                let at = Instant::now();
                if let Some(Variant::UInt32(seq)) = value.value {
                    sink.lock().unwrap().entry(seq).or_insert(at);
                    let _ = nudge.send(());
                }
            }),
        )
        .await
        .unwrap();
    let item = MonitoredItemCreateRequest::new(
        newest.clone().into(),
        MonitoringMode::Reporting,
        MonitoringParameters {
            sampling_interval: interval.as_secs_f64() * 1000.0,
            queue_size: 10,
            ..Default::default()
        },
    );
    session
        .create_monitored_items(subscription, TimestampsToReturn::Both, vec![item])
        .await
        .unwrap();
    let reads_us = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let (session, reads_us) = (Arc::clone(&session), Arc::clone(&reads_us));
        tokio::spawn(async move {
            let read = ReadValueId {
                node_id: newest,
                attribute_id: AttributeId::Value as u32,
                ..Default::default()
            };
            while nudged.recv().await.is_some() {
                let t = Instant::now();
                if session
                    .read(
                        std::slice::from_ref(&read),
                        TimestampsToReturn::Neither,
                        0.0,
                    )
                    .await
                    .is_ok()
                {
                    reads_us
                        .lock()
                        .unwrap()
                        .push(t.elapsed().as_micros() as u64);
                }
            }
        })
    };
    // At 20/s only: at 100/s pushes closer than the 10 ms sampling interval are one sample, which
    // is what a FIFO is for; a bare subscription would measure the coalescing, not the floor.
    measure(&sim, "opcua floor", &RATES[..1], None, |sent| {
        let arrivals = arrivals.lock().unwrap();
        let limit = LOST_AFTER.as_micros() as u64;
        sent.iter()
            .map(|s| {
                let at = sim.truth().t_us(*arrivals.get(&s.seq)?);
                at.checked_sub(s.t_us).filter(|&latency| latency <= limit)
            })
            .collect()
    })
    .await;
    reader.abort();
    let _ = session.disconnect().await;
    event_loop.abort();
    sim.stop().await;
    std::mem::take(&mut *reads_us.lock().unwrap())
}

/// min / p50 / p99 in ms.
fn spread(mut us: Vec<u64>) -> String {
    us.sort_unstable();
    let at = |q: f64| {
        us.get(((us.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |&v| v as f64 / 1000.0)
    };
    format!("{:.2} / {:.2} / {:.2}", at(0.0), at(0.5), at(0.99))
}

async fn python_runs(python: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), false).await;
    let mut bridge = Command::new(python)
        .arg(repo_root().join("tests/interop/bench_bridge.py"))
        .args([
            sim.opcua().endpoint_url(),
            "urn:takt:sim-line".to_owned(),
            "L1".to_owned(),
            "B1".to_owned(),
            PER_MODULE.to_string(),
        ])
        .args(MODULES.map(|m| sim.module_addr(m).unwrap().to_string()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(bridge.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready", "the Python bridge did not start");
    measure(&sim, "python bridge", &RATES, None, |sent| {
        latencies(sim.truth(), sent)
    })
    .await;
    if let Some(mut stdin) = bridge.stdin.take() {
        let _ = stdin.flush();
    }
    let _ = bridge.kill();
    let _ = bridge.wait();
    sim.stop().await;
}
