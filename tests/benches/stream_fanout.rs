//! Event stream fan-out: many SSE clients on the controller while broadcasts arrive at 100
//! vehicles/s. Per number of clients: the latency from an event's journal time (when its input
//! was staged; its commit follows) to its arrival at a client, p50/p99/max; events per second
//! delivered; events lost (an id skipped) and clients closed as too slow; and the controller's
//! memory per idle client.
//!
//! Run: `cargo bench -p takt-tests --bench stream_fanout` (add client counts to choose them,
//! e.g. `-- 100 2000`; default 1, 100, 250, 2000). Figures go to BENCHMARKS.md.
//!
//! The controller runs in this process (the `App` `takt run` serves, with its allocator); the
//! clients run in a second process (this binary again, `clients` mode), so the controller's
//! memory is its own. Clients are minimal: one HTTP/1.0 request each (no chunked framing to
//! undo), reading the stream and noting each message's id and `at`. Both processes share the
//! machine's two cores, as a controller and its screens would not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use hdrhistogram::Histogram;
use takt_tests::driving::{broadcast_vehicles, plant_only_config, seed_operator_tokens};
use takt_tests::{InProcess, rss_kib};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The allocator the `takt` binary runs with, so the memory figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const VEHICLES_PER_S: u64 = 100;
/// How long each client count is measured under load.
const MEASURE: Duration = Duration::from_secs(10);
/// Clients per token: the per-token rate limit (50/s) lets this many connect at once.
const PER_TOKEN: usize = 40;
const DEFAULT_COUNTS: [usize; 4] = [1, 100, 250, 2_000];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if args.first().map(String::as_str) == Some("clients") {
        rt.block_on(clients(&args[1], &args[2]));
        return;
    }
    let counts: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() {
        DEFAULT_COUNTS.to_vec()
    } else {
        counts
    };
    rt.block_on(controller(&counts));
}

async fn controller(counts: &[usize]) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = plant_only_config(dir.path());
    let plant = cfg.plant.config.clone();
    let most = counts.iter().copied().max().unwrap_or(1);
    let tokens = seed_operator_tokens(&cfg, "screen", most.div_ceil(PER_TOKEN)).await;
    let token_file = dir.path().join("tokens");
    std::fs::write(&token_file, tokens.join("\n")).unwrap();
    let takt = InProcess::start(cfg).await;
    let base = takt.addr.to_string();

    println!(
        "## stream_fanout: SSE clients while broadcasts arrive at {VEHICLES_PER_S} vehicles/s, {} s each",
        MEASURE.as_secs()
    );
    println!();
    println!(
        "| clients | connected | idle RSS per client | events/s to each | delivered/s, all | p50 | p99 | max | lost | closed as too slow |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut vehicle = 1;
    for &n in counts {
        // Let the previous clients' connections go before measuring memory again.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_before = rss_kib(std::process::id());
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("clients")
            .arg(&base)
            .arg(&token_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("FANOUT_CLIENTS", n.to_string())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let connected: usize = tokio::task::block_in_place(|| lines.next())
            .expect("the clients report")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle_per_client =
            rss_kib(std::process::id()).saturating_sub(rss_before) as f64 / connected.max(1) as f64;
        let started = std::time::Instant::now();
        let count = VEHICLES_PER_S * MEASURE.as_secs();
        vehicle =
            broadcast_vehicles(&takt.writer, &plant, vehicle, count, Some(VEHICLES_PER_S)).await;
        let took = started.elapsed().as_secs_f64();
        // Let the last events reach everyone, then ask for the figures.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "stop").unwrap();
        drop(stdin);
        let report = tokio::task::block_in_place(|| lines.next())
            .expect("the clients' figures")
            .unwrap();
        child.wait().unwrap();
        let r: serde_json::Value = serde_json::from_str(&report).unwrap();
        let events = r["events"].as_u64().unwrap();
        println!(
            "| {n} | {connected} | {idle_per_client:.1} KiB | {:.0} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} |",
            events as f64 / connected.max(1) as f64 / took,
            events as f64 / took,
            r["p50_us"].as_f64().unwrap() / 1000.0,
            r["p99_us"].as_f64().unwrap() / 1000.0,
            r["max_us"].as_f64().unwrap() / 1000.0,
            r["lost"],
            r["closed"],
        );
    }
    takt.stop().await;
}

/// What one client saw.
struct Seen {
    latency: Histogram<u64>,
    events: u64,
    lost: u64,
    closed: bool,
}

/// `clients` mode: `FANOUT_CLIENTS` streams, live from now; prints how many connected, then,
/// when a line arrives on stdin, the merged figures as one JSON line.
async fn clients(base: &str, token_file: &str) {
    let n: usize = std::env::var("FANOUT_CLIENTS").unwrap().parse().unwrap();
    let tokens: Vec<String> = std::fs::read_to_string(token_file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let (up, mut ups) = tokio::sync::mpsc::channel::<bool>(n);
    let mut tasks = Vec::new();
    for i in 0..n {
        let token = tokens[i / PER_TOKEN].clone();
        let base = base.to_owned();
        let up = up.clone();
        let stopping = stopping.clone();
        tasks.push(tokio::spawn(async move {
            client(&base, &token, up, stopping).await
        }));
        // Each token's burst, then the next token: no client waits on the rate limit.
        if (i + 1) % PER_TOKEN == 0 {
            tokio::task::yield_now().await;
        }
    }
    drop(up);
    let mut connected = 0;
    for _ in 0..n {
        if ups.recv().await == Some(true) {
            connected += 1;
        }
    }
    println!("{connected}");
    std::io::stdout().flush().unwrap();
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await
    .unwrap();
    stop.send_replace(true);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
    let (mut events, mut lost, mut closed) = (0, 0, 0);
    for task in tasks {
        let seen = task.await.unwrap();
        latency.add(&seen.latency).unwrap();
        events += seen.events;
        lost += seen.lost;
        closed += u64::from(seen.closed);
    }
    println!(
        "{}",
        serde_json::json!({
            "events": events, "lost": lost, "closed": closed,
            "p50_us": latency.value_at_quantile(0.5), "p99_us": latency.value_at_quantile(0.99),
            "max_us": latency.max(),
        })
    );
}

/// One SSE client: HTTP/1.0, so the body is the stream itself, ended by the server's close.
async fn client(
    base: &str,
    token: &str,
    up: tokio::sync::mpsc::Sender<bool>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen {
        latency: Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap(),
        events: 0,
        lost: 0,
        closed: false,
    };
    // A connect storm meets the controller's limit on requests in flight (503): retry, as a
    // client does.
    let mut attempts = 0;
    let (mut stream, mut buffer) = loop {
        attempts += 1;
        match open(base, token).await {
            Some(opened) => break opened,
            None if attempts < 20 => tokio::time::sleep(Duration::from_millis(100)).await,
            None => {
                let _ = up.send(false).await;
                return seen;
            }
        }
    };
    let _ = up.send(true).await;
    let mut chunk = [0u8; 8 * 1024];
    let mut last_id: Option<u64> = None;
    loop {
        let read = tokio::select! {
            read = stream.read(&mut chunk) => read,
            _ = stopping.changed() => break,
        };
        let Ok(got) = read else { break };
        if got == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..got]);
        while let Some(end) = find(&buffer, b"\n\n") {
            let arrived = chrono::Utc::now();
            let message = std::str::from_utf8(&buffer[..end]).unwrap_or("");
            if message
                .lines()
                .any(|l| l.replace(' ', "") == "event:closed")
            {
                seen.closed = true;
            }
            if let Some((id, at)) = id_and_time(message) {
                if let Some(last) = last_id
                    && id > last + 1
                {
                    seen.lost += id - last - 1;
                }
                last_id = Some(id);
                seen.events += 1;
                let us = (arrived - at).num_microseconds().unwrap_or(0).max(1) as u64;
                seen.latency.saturating_record(us);
            }
            buffer.drain(..end + 2);
        }
    }
    seen
}

/// One stream request; the connection and what came after the headers, if it was a 200.
async fn open(base: &str, token: &str) -> Option<(tokio::net::TcpStream, Vec<u8>)> {
    let mut stream = tokio::net::TcpStream::connect(base).await.ok()?;
    let request = format!(
        "GET /api/v1/events HTTP/1.0\r\nHost: {base}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buffer: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut chunk = [0u8; 4 * 1024];
    loop {
        let got = stream.read(&mut chunk).await.ok()?;
        if got == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..got]);
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            let ok = buffer.starts_with(b"HTTP/1.1 200") || buffer.starts_with(b"HTTP/1.0 200");
            buffer.drain(..end + 4);
            return ok.then_some((stream, buffer));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The message's id and its event's journal time.
fn id_and_time(message: &str) -> Option<(u64, chrono::DateTime<chrono::Utc>)> {
    let id = message
        .lines()
        .find_map(|l| l.strip_prefix("id:"))?
        .trim()
        .parse()
        .ok()?;
    let after = message.split_once("\"at\":\"")?.1;
    let at = after.split_once('"')?.0;
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?.to_utc();
    Some((id, at))
}
