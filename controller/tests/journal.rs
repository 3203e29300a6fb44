//! The journal-first runtime end to end on a real store, SQLite and PostgreSQL: replay gives
//! identical projections, a restart mid-stream ends where an uninterrupted run ends, and the
//! writer releases actions only after their inputs are durable.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::TestDb;
use takt::runtime::replay::replay_journal;
use takt::runtime::{Journaled, rebuild, writer};
use takt::store::Store;
use takt_core::io::{Action, StreamEvent};
use takt_core::model::{LightTarget, RackStatus, TaskKind};
use takt_core::{AlarmInput, PickingInput, SequencingInput};
use takt_core::{ConfigIndex, Core, Input, RawRecord};

fn fixture_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("core/tests/fixtures/small.toml");
    std::fs::read_to_string(path).unwrap()
}

fn plant(text: &str) -> Arc<ConfigIndex> {
    let cfg = takt::config::parse(Path::new("small.toml"), text).unwrap();
    Arc::new(cfg.plant)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 6, 0, 0).unwrap()
}

fn record(seq: u32, n: usize) -> RawRecord {
    RawRecord {
        seq: seq % 10_000,
        vin: format!("WVWZZZ1JZ{n:08}"),
        body: format!("B{n}"),
        model: if n % 4 == 3 { "M2" } else { "M1" }.into(),
        options: vec![
            if n.is_multiple_of(3) {
                "SEAT=CLTH"
            } else {
                "SEAT=LTHR"
            }
            .into(),
            if n.is_multiple_of(2) {
                "COLOR=RED"
            } else {
                "COLOR=BLUE"
            }
            .into(),
        ],
    }
}

fn broadcast(r: RawRecord) -> Input {
    Input::Sequencing(SequencingInput::Broadcast {
        line: "L".into(),
        point: "B1".into(),
        record: r,
    })
}

/// Steps of a shift: the inputs of step `i` as one batch, decided from the state so far (an
/// operator presses what is lit). The same state gives the same inputs, so two runs that agree
/// so far keep agreeing.
fn shift_step(i: usize, core: &Core) -> Vec<Input> {
    let mut out = Vec::new();
    let seq = |n: usize| 9_990 + n as u32; // crosses 9999 → 0000
    match i {
        // Vehicles arrive with every 7th pair swapped; 40 is never sent (a gap that expires).
        _ if i % 7 == 3 => {
            out.push(broadcast(record(seq(i + 1), i + 1)));
            out.push(broadcast(record(seq(i), i)));
        }
        _ if i % 7 == 4 => {}
        40 => {}
        _ => out.push(broadcast(record(seq(i), i))),
    }
    match i {
        20 => out.push(broadcast(record(seq(19), 19))), // duplicate
        30 => {
            let mut r = record(seq(28), 28);
            r.options[0] = "SEAT=CLTH".into();
            out.push(broadcast(r)); // correction
        }
        42 => out.push(Input::TICK), // the gap's time is up (steps are 30 s apart)
        50 => out.push(Input::Sequencing(SequencingInput::LineState {
            line: "L".into(),
            running: false,
            reason: Some("andon".into()),
        })),
        52 => out.push(Input::Sequencing(SequencingInput::LineState {
            line: "L".into(),
            running: true,
            reason: None,
        })),
        60 => out.push(Input::Sequencing(SequencingInput::Cancel {
            line: "L".into(),
            vin: record(0, 58).vin,
        })),
        70 => out.push(Input::Alarms(AlarmInput::Acknowledge {
            alarm: "wrong_pick:P1".into(),
        })),
        _ => {}
    }
    if i.is_multiple_of(5) {
        out.push(Input::Picking(PickingInput::Press {
            station: "P1".into(),
            button: LightTarget::Bin("A2".into()),
        }));
    }
    if let Some(task) = core.task("P1") {
        let button = match &task.kind {
            TaskKind::Pick { bin } => LightTarget::Bin(bin.clone()),
            TaskKind::Put { slot, .. } => LightTarget::Slot(*slot),
        };
        out.push(Input::Picking(PickingInput::Press {
            station: "P1".into(),
            button,
        }));
    }
    for rack in core.racks().filter(|r| r.status == RackStatus::Closed) {
        out.push(Input::Picking(PickingInput::RackMoved {
            rack: rack.id.clone(),
            to: RackStatus::Delivered,
        }));
    }
    out
}

const STEPS: usize = 80;

async fn run_steps(j: &mut Journaled, steps: std::ops::Range<usize>) {
    for i in steps {
        let at = t0() + TimeDelta::seconds(30 * i as i64);
        let batch: Vec<_> = shift_step(i, j.core())
            .into_iter()
            .map(|input| (at, input))
            .collect();
        j.apply(batch).await.unwrap();
    }
}

async fn dump(store: &Store) -> BTreeMap<String, Vec<serde_json::Value>> {
    store.dump_projections().await.unwrap()
}

mod bodies {
    use super::*;

    pub(super) async fn replay_gives_identical_projections(db: TestDb) {
        let cfg = plant(&fixture_text());
        let store = db.open().await;
        let (mut j, _) = Journaled::open(cfg.clone(), store.clone(), 0)
            .await
            .unwrap();
        run_steps(&mut j, 0..STEPS).await;
        let live = dump(&store).await;
        assert!(
            live["calls"].len() > 100,
            "the shift made calls: {}",
            live["calls"].len()
        );
        assert!(!live["alarms"].is_empty());

        let dir = tempfile::tempdir().unwrap();
        let fresh = Store::open(&format!("sqlite://{}", dir.path().join("r.db").display()))
            .await
            .unwrap();
        let summary = replay_journal(cfg.clone(), &store, &fresh).await.unwrap();
        assert_eq!(summary.entries as i64, j.last_id());
        assert_eq!(dump(&fresh).await, live, "replayed projections differ");

        let (core, stats) = rebuild(cfg, &store).await.unwrap();
        assert_eq!(stats.replayed as i64, j.last_id());
        assert_eq!(core.state(), j.core().state());
    }

    pub(super) async fn a_restart_mid_stream_ends_like_an_uninterrupted_run(db: TestDb) {
        let cfg = plant(&fixture_text());
        let dir = tempfile::tempdir().unwrap();
        let whole_store = Store::open(&format!("sqlite://{}", dir.path().join("w.db").display()))
            .await
            .unwrap();
        let (mut whole, _) = Journaled::open(cfg.clone(), whole_store.clone(), 0)
            .await
            .unwrap();
        run_steps(&mut whole, 0..STEPS).await;

        // Stopped twice without a goodbye (as after a kill), with snapshots now and then.
        let store = db.open().await;
        let mut done = 0;
        for stop in [23, 61, STEPS] {
            let (mut j, stats) = Journaled::open(cfg.clone(), store.clone(), 17)
                .await
                .unwrap();
            assert_eq!(stats.last_id > 0, done > 0);
            if done > 0 {
                assert!(
                    stats.snapshot_id.is_some(),
                    "restart at step {done} used no snapshot"
                );
            }
            run_steps(&mut j, done..stop).await;
            done = stop;
        }
        let (after, _) = rebuild(cfg, &store).await.unwrap();
        assert_eq!(after.state(), whole.core().state());
        assert_eq!(dump(&store).await, dump(&whole_store).await);
    }

    pub(super) async fn actions_follow_the_commit(db: TestDb) {
        // A short gap timeout so the writer's own timer has to fire within the test.
        let text =
            fixture_text().replace("gap_fill_timeout_ms = 5000", "gap_fill_timeout_ms = 200");
        let cfg = plant(&text);
        let store = db.open().await;
        let (j, _) = Journaled::open(cfg, store.clone(), 0).await.unwrap();
        let (handle, task) = writer::spawn(j, 64);
        let mut actions = handle.subscribe();

        let applied = handle.submit(broadcast(record(1, 1))).await.unwrap();
        assert_eq!(applied.id, 1);
        let created = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Action::Stream(StreamEvent::CallCreated(c)) = actions.recv().await.unwrap() {
                    break c;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(created.seq.value(), 1);
        let journal = store.journal_after(0, 10).await.unwrap();
        assert_eq!(
            journal.len(),
            1,
            "the action was released before its input was durable"
        );

        // Many submitters at once: group commit, every answer distinct and durable.
        let mut pending = Vec::new();
        for n in 2..40 {
            pending.push(
                handle
                    .enqueue(broadcast(record(n, n as usize)))
                    .await
                    .unwrap(),
            );
        }
        let mut ids = Vec::new();
        for p in pending {
            ids.push(p.durable().await.unwrap().id);
        }
        assert_eq!(ids, (2..40).collect::<Vec<i64>>());

        // A gap: 41 is held; the writer's timer gives up on 40 after 200 ms.
        handle.submit(broadcast(record(41, 41))).await.unwrap();
        let mut ticked = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let j = store.journal_after(40, 10).await.unwrap();
            if j.iter().any(|e| e.input == Input::TICK) {
                ticked = true;
                break;
            }
        }
        assert!(ticked, "the writer never fired the gap timer");
        drop(handle);
        let j = task.await.unwrap();
        assert_eq!(
            j.core()
                .expected_seq("L", "B1")
                .map(takt_core::SeqNo::value),
            Some(42)
        );
    }

    pub(super) async fn the_writer_saves_snapshots_beside_its_commits(db: TestDb) {
        let cfg = plant(&fixture_text());
        let store = db.open().await;
        let (j, _) = Journaled::open(cfg.clone(), store.clone(), 10)
            .await
            .unwrap();
        let (handle, task) = writer::spawn(j, 4);
        for n in 1..=60 {
            handle
                .submit(broadcast(record(n, n as usize)))
                .await
                .unwrap();
        }
        drop(handle);
        // The writer waits for a snapshot still being saved before it hands the runtime back.
        let j = task.await.unwrap();
        let ids = store.snapshot_ids().await.unwrap();
        assert!(!ids.is_empty(), "the writer saved no snapshot");
        assert!(ids.iter().all(|id| (10..=60).contains(id)), "{ids:?}");
        // A restart starts from the newest and replays only what came after it.
        let (core, stats) = rebuild(cfg, &store).await.unwrap();
        let newest = *ids.last().unwrap();
        assert_eq!(stats.snapshot_id, Some(newest));
        assert_eq!(stats.replayed as i64, 60 - newest);
        assert_eq!(core.state(), j.core().state());
    }
}

common::on_both_backends!(
    replay_gives_identical_projections,
    a_restart_mid_stream_ends_like_an_uninterrupted_run,
    actions_follow_the_commit,
    the_writer_saves_snapshots_beside_its_commits,
);
