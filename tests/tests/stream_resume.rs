//! The event stream under load: a client reading it while broadcasts arrive at 100 vehicles/s
//! is cut for 30 s, reconnects with its last id, and ends with every event of the outbox once,
//! in order (the same through SIGKILLs of the controller: the acceptance run's follower); and a
//! client that stops reading is closed with a reason while another keeps up, unslowed.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use takt::api::events::EventView;
use takt::store::{EventReader, Store};
use takt_core::identity::{Role, Scope};
use takt_tests::driving::{broadcast_vehicles, plant_only_config, seed_tokens};
use takt_tests::follower::Follower;
use takt_tests::{InProcess, eventually};

/// Vehicles per second, as the issue asks, each broadcast at every point of the line.
const VEHICLES_PER_S: u64 = 100;
/// The client reads this long, is away for [`CUT`], then reads again until the end.
const BEFORE_CUT: Duration = Duration::from_secs(5);
const CUT: Duration = Duration::from_secs(30);
const AFTER_CUT: Duration = Duration::from_secs(5);

/// A supervisor's token, journaled before the controller starts.
async fn token(cfg: &takt::config::Config) -> String {
    let supervisor = Scope::Role {
        role: Role::Supervisor,
    };
    seed_tokens(cfg, &[(supervisor, "stream client")])
        .await
        .remove(0)
}

/// A controller on the example plant without plant connections, and a supervisor's token.
struct Running {
    dir: tempfile::TempDir,
    /// Its store, to read the outbox from.
    url: String,
    plant: takt_core::PlantConfig,
    token: String,
    takt: InProcess,
    /// `http://host:port`.
    base: String,
}

async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let cfg = plant_only_config(dir.path());
    let url = cfg.controller.database().url().to_owned();
    let plant = cfg.plant.config.clone();
    let token = token(&cfg).await;
    let takt = InProcess::start(cfg).await;
    let base = format!("http://{}", takt.addr);
    Running {
        dir,
        url,
        plant,
        token,
        takt,
        base,
    }
}

/// Vehicles from `first` at [`VEHICLES_PER_S`] for `run`; the next vehicle.
async fn broadcast_for(
    takt: &InProcess,
    plant: &takt_core::PlantConfig,
    first: u64,
    run: Duration,
) -> u64 {
    let count = VEHICLES_PER_S * run.as_secs();
    broadcast_vehicles(&takt.writer, plant, first, count, Some(VEHICLES_PER_S)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cut_for_30_s_at_100_vehicles_per_s_resumes_with_every_event_once_in_order() {
    let Running {
        dir: _dir,
        url,
        plant,
        token,
        takt,
        base,
    } = start().await;

    let follower = Follower::start(&base, &token);
    let next = broadcast_for(&takt, &plant, 1, BEFORE_CUT).await;
    // Cut: the client goes away with what it has; the line does not wait for it.
    let (before, _) = follower.stop().await;
    assert!(!before.is_empty(), "nothing read before the cut");
    let before_cut = before.len();
    let next = broadcast_for(&takt, &plant, next, CUT).await;
    let follower = Follower::resume(&base, &token, before);
    broadcast_for(&takt, &plant, next, AFTER_CUT).await;

    let store = Store::open(&url).await.unwrap();
    let outbox: Vec<EventView> = {
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |e: &EventView| e.id);
            let page: Vec<EventView> = store
                .events_after(&EventReader::Plant, after, 5_000)
                .await
                .unwrap();
            if page.is_empty() {
                break all;
            }
            all.extend(page);
        }
    };
    let newest = outbox.last().unwrap().id;
    eventually(Duration::from_secs(60), "the client to catch up", || {
        (follower.last_id() >= newest).then_some(())
    })
    .await;
    let (received, connects) = follower.stop().await;
    eprintln!(
        "{} events in the outbox, {} received; {} before the cut",
        outbox.len(),
        received.len(),
        before_cut
    );
    assert_eq!(connects, 1, "one reconnect after the cut, no other drop");
    let ids: Vec<i64> = received.iter().map(|r| r.0).collect();
    let expected: Vec<i64> = outbox.iter().map(|e| e.id).collect();
    assert_eq!(
        ids.len(),
        expected.len(),
        "events received against the outbox"
    );
    assert_eq!(ids, expected, "every event once, in order");
    for ((id, kind, data), row) in received.iter().zip(&outbox) {
        assert_eq!(
            (kind, &data["payload"]),
            (&row.kind, &row.payload),
            "event {id}"
        );
    }
    let vehicles = VEHICLES_PER_S * (BEFORE_CUT + CUT + AFTER_CUT).as_secs();
    assert!(
        outbox.len() as u64 > vehicles,
        "{} events for {vehicles} vehicles",
        outbox.len()
    );
    store.close().await;
    takt.stop().await;
}

/// A stream client that connects and then reads nothing, with a small receive buffer: its
/// connection fills in a few thousand events, as a hung screen's would.
async fn stalled_client(addr: std::net::SocketAddr, token: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET /api/v1/events HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Everything the server sends until it closes the connection, as text.
async fn read_to_end(mut stream: tokio::net::TcpStream) -> String {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut all))
        .await
        .expect("the server ends the stalled stream")
        .unwrap();
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_with_a_reason_and_slows_nobody() {
    let Running {
        dir: _dir,
        url,
        plant,
        token,
        takt,
        base,
    } = start().await;

    let reading = Follower::start(&base, &token);
    eventually(Duration::from_secs(10), "the reader's first event", || {
        (reading.last_id() > 0).then_some(())
    })
    .await;
    let stalled = stalled_client(takt.addr, &token).await;
    // ~21 events a vehicle: far more than a stalled connection and a client's live buffer
    // (4,096 events) hold.
    broadcast_for(&takt, &plant, 1, Duration::from_secs(10)).await;

    // The stalled client gets what fitted, in order, then why it was closed.
    let text = read_to_end(stalled).await;
    let ids: Vec<i64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .map(|id| id.trim().parse().unwrap())
        .collect();
    assert!(!ids.is_empty(), "the stalled client got nothing at all");
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "a gap before the close"
    );
    let closing = text
        .split("\n\n")
        .find(|m| m.lines().any(|l| l.replace(' ', "") == "event:closed"))
        .unwrap_or_else(|| panic!("no closing message after id {}", ids[ids.len() - 1]));
    assert!(closing.contains("too slow"), "{closing}");

    // Resuming from its last id, it gets the rest; the reader was never held up nor cut.
    let store = Store::open(&url).await.unwrap();
    let newest = store
        .events_after::<EventView>(&EventReader::Plant, 0, u32::MAX)
        .await
        .unwrap()
        .last()
        .unwrap()
        .id;
    let last = *ids.last().unwrap();
    assert!(
        last < newest,
        "the stalled client was closed before the end"
    );
    let resumed = Follower::resume(
        &base,
        &token,
        vec![(last, String::new(), serde_json::Value::Null)],
    );
    eventually(
        Duration::from_secs(60),
        "the resumed client to catch up",
        || (resumed.last_id() >= newest).then_some(()),
    )
    .await;
    let (rest, _) = resumed.stop().await;
    let rest: Vec<i64> = rest.iter().skip(1).map(|r| r.0).collect();
    assert_eq!(rest, ((last + 1)..=newest).collect::<Vec<_>>());
    eventually(
        Duration::from_secs(60),
        "the reader to reach the end",
        || (reading.last_id() >= newest).then_some(()),
    )
    .await;
    let (read, connects) = reading.stop().await;
    assert_eq!(connects, 1, "the reader was closed and had to reconnect");
    assert!(
        read.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "the reader saw a gap"
    );
    store.close().await;
    takt.stop().await;
}
