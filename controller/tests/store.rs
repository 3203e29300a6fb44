//! The store against real databases: every test body in `bodies` runs once on a SQLite file in a
//! temporary directory and once on a fresh PostgreSQL database.
//!
//! PostgreSQL: `TAKT_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) is
//! the admin database; each test creates `takt_test_<pid>_<n>` there and drops it afterwards. If
//! the server is unreachable the PostgreSQL variants are skipped with a note, except under
//! `CI=true`, where they fail: CI must not go green without having run them.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use common::{TestDb, on_postgres};
use sqlx::Connection;
use takt::store::{
    EventReader, JournalEntry, Origin, PageQuery, SNAPSHOTS_KEPT, Store, StoreError,
    TenantProjection, journal_time,
};
use takt_core::alarm::{Alarm, AlarmKey, AlarmKind, AlarmState};
use takt_core::config::Priority;
use takt_core::model::{
    Call, CallId, CallStatus, Coverage, LightTarget, LineStatus, Rack, RackStatus, Task, TaskId,
    TaskKind, TaskStatus, Vehicle, VehicleId, VehicleStatus,
};
use takt_core::{AlarmInput, PickingInput, SequencingInput};
use takt_core::{Change, Input, OutboxEvent, Outcome, RawRecord, SeqNo, StreamEvent, Vin};

// ---------------------------------------------------------------------------------------------
// Test data, built from the core's own types.

/// A time `secs` seconds (and `micros` microseconds) into the test shift.
fn at(secs: i64, micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros((1_750_000_000 + secs) * 1_000_000 + micros)
        .expect("test times are in range")
}

fn vin(n: u32) -> Vin {
    Vin::parse(&format!("WVWZZZ1KZ{n:08}")).expect("17 legal characters")
}

fn seq(n: u32) -> SeqNo {
    SeqNo::new(n % 10_000, 10_000).expect("within the modulus")
}

fn vehicle(id: u64, status: VehicleStatus) -> Vehicle {
    Vehicle {
        id: VehicleId(id),
        line: "L1".to_owned(),
        point: "B1".to_owned(),
        pos: 9_990 + id,
        seq: seq(9_990 + id as u32),
        vin: vin(id as u32),
        body: format!("BODY{id:04}"),
        model: "GOLF".to_owned(),
        options: vec!["DRIVE=LHD".to_owned(), "SEAT=LTHR-BLK".to_owned()],
        broadcast_at: at(id as i64 * 60, 250_000),
        status,
        stopped_ms_at_broadcast: 1_500,
        calls: [
            ("seats".to_owned(), CallId(id)),
            ("wheels".to_owned(), CallId(100 + id)),
        ]
        .into_iter()
        .collect(),
    }
}

fn call(id: u64, status: CallStatus, rack: Option<(&str, u32)>) -> Call {
    Call {
        id: CallId(id),
        vehicle: VehicleId(id),
        line: "L1".to_owned(),
        family: "seats".to_owned(),
        seq: seq(9_990 + id as u32),
        pos: 9_990 + id,
        vin: vin(id as u32),
        part: id.is_multiple_of(2).then(|| format!("SEAT-{id:03}")),
        status,
        rack: rack.map(|(r, _)| r.to_owned()),
        slot: rack.map(|(_, s)| s),
        // Nanoseconds on purpose: projections keep microseconds on both backends.
        due_at: at(id as i64 * 60 + 1_800, 0) + chrono::Duration::nanoseconds(123_456_789),
        corrections: 0,
        created_at: at(id as i64 * 60, 250_000),
        changed_at: at(id as i64 * 60 + 30, 0),
        supplier: id.is_multiple_of(3).then(|| "seatco".to_owned()),
        received_at: id
            .is_multiple_of(3)
            .then(|| at(id as i64 * 60 + 5, 500_000)),
        built_at: None,
        shipped_at: None,
        delivered_at: None,
        short_shipped: None,
    }
}

fn rack(number: u64, filled: &[u64], status: RackStatus) -> Rack {
    let mut slots = vec![None; 6];
    for (slot, call) in slots.iter_mut().zip(filled) {
        *slot = Some(CallId(*call));
    }
    Rack {
        id: format!("seats-{number:06}"),
        family: "seats".to_owned(),
        number,
        size: 6,
        slots,
        status,
        opened_at: at(0, 0),
        changed_at: at(number as i64, 1),
    }
}

fn task(id: u64, kind: TaskKind, status: TaskStatus) -> Task {
    Task {
        id: TaskId(id),
        station: "PS1".to_owned(),
        call: CallId(id),
        kind,
        status,
        created_at: at(id as i64, 0),
        changed_at: at(id as i64 + 5, 0),
    }
}

fn alarm(subject: &str, state: AlarmState, occurrences: u64) -> Alarm {
    Alarm {
        key: AlarmKey::new(AlarmKind::SequenceGap, subject),
        priority: Priority::Medium,
        state,
        message: format!("gap at {subject}"),
        shelved_until: (state == AlarmState::ActiveAcknowledged).then(|| at(3_600, 0)),
        raised_at: at(10, 0),
        changed_at: at(20, occurrences as i64),
        occurrences,
    }
}

fn line(running: bool) -> LineStatus {
    LineStatus {
        line: "L1".to_owned(),
        running,
        reason: (!running).then(|| "andon".to_owned()),
        since: (!running).then(|| at(120, 0)),
        stopped_ms_total: if running { 0 } else { 60_000 },
        takt_ms: 58_000,
    }
}

fn coverage(family: &str, vehicles: u64, minutes: f64) -> Coverage {
    Coverage {
        family: family.to_owned(),
        line: "L1".to_owned(),
        vehicles,
        minutes,
    }
}

fn broadcast(n: u32) -> Input {
    Input::Sequencing(SequencingInput::Broadcast {
        line: "L1".to_owned(),
        point: "B1".to_owned(),
        record: RawRecord {
            seq: 9_990 + n,
            vin: vin(n).to_string(),
            body: format!("BODY{n:04}"),
            model: "GOLF".to_owned(),
            options: vec!["SEAT=LTHR-BLK".to_owned(), "DRIVE=LHD".to_owned()],
        },
    })
}

fn entry(id: i64, input: Input, outcome: Outcome) -> JournalEntry {
    JournalEntry {
        id,
        at: at(id * 7, id * 1_001),
        input,
        outcome,
        origin: Origin::default(),
    }
}

/// A small shift: broadcasts, a pick, a line stop, alarms, as batches of (entries, changes).
fn shift() -> Vec<(Vec<JournalEntry>, Vec<Change>)> {
    vec![
        (
            vec![
                entry(1, broadcast(1), Outcome::Applied),
                entry(2, broadcast(2), Outcome::Applied),
            ],
            vec![
                Change::Vehicle(vehicle(1, VehicleStatus::Live)),
                Change::Call(call(1, CallStatus::Created, None)),
                Change::Vehicle(vehicle(2, VehicleStatus::Live)),
                Change::Call(call(2, CallStatus::Created, None)),
                Change::Rack(rack(1, &[], RackStatus::Open)),
                Change::Task(task(
                    1,
                    TaskKind::Pick {
                        bin: "B-07".to_owned(),
                    },
                    TaskStatus::Open,
                )),
                Change::Line(line(true)),
                Change::Coverage(coverage("seats", 0, 0.0)),
            ],
        ),
        (
            vec![entry(
                3,
                Input::Picking(PickingInput::Press {
                    station: "PS1".to_owned(),
                    button: LightTarget::Bin("B-07".to_owned()),
                }),
                Outcome::Applied,
            )],
            vec![
                Change::Call(call(1, CallStatus::Picked, None)),
                Change::Task(task(
                    1,
                    TaskKind::Pick {
                        bin: "B-07".to_owned(),
                    },
                    TaskStatus::Done,
                )),
                Change::Task(task(
                    2,
                    TaskKind::Put {
                        rack: "seats-000001".to_owned(),
                        slot: 1,
                    },
                    TaskStatus::Open,
                )),
            ],
        ),
        (
            vec![
                entry(
                    4,
                    Input::Sequencing(SequencingInput::LineState {
                        line: "L1".to_owned(),
                        running: false,
                        reason: Some("andon".to_owned()),
                    }),
                    Outcome::Applied,
                ),
                entry(
                    5,
                    broadcast(2),
                    Outcome::Ignored("duplicate of 9992".to_owned()),
                ),
                entry(
                    6,
                    Input::Alarms(AlarmInput::Shelve {
                        alarm: "sequence_gap:L1/B1".to_owned(),
                        until: Some(at(3_600, 0)),
                    }),
                    Outcome::Rejected("no alarm `sequence_gap:L1/B1`".to_owned()),
                ),
                entry(7, Input::TICK, Outcome::Applied),
            ],
            vec![
                Change::Line(line(false)),
                Change::Alarm(alarm("L1/B1", AlarmState::ActiveUnacknowledged, 1)),
                Change::Alarm(alarm("L1/B2", AlarmState::ClearedUnacknowledged, 2)),
                Change::Coverage(coverage("seats", 1, 0.97)),
                Change::Coverage(coverage("wheels", 0, f64::NAN)),
            ],
        ),
    ]
}

async fn commit_shift(store: &Store) -> Vec<JournalEntry> {
    let mut all = Vec::new();
    for (entries, changes) in shift() {
        store
            .commit(&entries, &changes)
            .await
            .expect("the shift commits");
        all.extend(entries);
    }
    all
}

async fn dump(store: &Store) -> BTreeMap<String, Vec<serde_json::Value>> {
    store.dump_projections().await.expect("dump projections")
}

async fn journal(store: &Store) -> Vec<JournalEntry> {
    store
        .journal_after(0, 1_000_000)
        .await
        .expect("read journal")
}

common::on_both_backends!(
    empty_store,
    journal_round_trip_and_paging,
    upsert_keeps_the_latest_version,
    dump_gives_typed_json,
    duplicate_journal_id_rolls_back_everything,
    journal_ids_must_grow,
    sub_microsecond_journal_times_are_refused,
    large_batches_commit_whole_and_atomic,
    snapshots_latest_and_pruned,
    reset_keeps_the_journal,
    reopen_keeps_everything,
    nul_characters_never_block_the_journal,
    old_events_are_pruned_in_chunks_keeping_the_newest,
    a_tenant_reads_its_own_calls_and_events_only,
    rows_keyed_by_a_time_stay_apart_in_one_commit,
);

mod bodies {
    use super::*;

    pub(super) async fn empty_store(db: TestDb) {
        let store = db.open().await;
        assert_eq!(store.last_journal_id().await.expect("last id"), 0);
        assert!(journal(&store).await.is_empty());
        assert_eq!(store.latest_snapshot().await.expect("snapshot"), None);
        let tables = dump(&store).await;
        let names: Vec<_> = tables.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "alarms",
                "api_tokens",
                "calls",
                "coverage",
                "events",
                "forecast_demand",
                "lines",
                "racks",
                "shipments",
                "tasks",
                "vehicles"
            ]
        );
        assert!(tables.values().all(Vec::is_empty));
        // Nothing to do is not an error.
        store.commit(&[], &[]).await.expect("empty commit");
        store.close().await;
    }

    pub(super) async fn journal_round_trip_and_paging(db: TestDb) {
        let store = db.open().await;
        let entries = commit_shift(&store).await;
        assert_eq!(store.last_journal_id().await.expect("last id"), 7);
        // Ids, order, times (to the microsecond), inputs and outcomes come back as committed.
        assert_eq!(journal(&store).await, entries);
        let page = store.journal_after(2, 3).await.expect("page");
        assert_eq!(page, entries[2..5]);
        let tail = store.journal_after(5, 10).await.expect("tail");
        assert_eq!(tail, entries[5..]);
        assert!(store.journal_after(7, 10).await.expect("end").is_empty());
        assert!(store.journal_after(0, 0).await.expect("no rows").is_empty());
        store.close().await;
    }

    pub(super) async fn upsert_keeps_the_latest_version(db: TestDb) {
        let store = db.open().await;
        // Two versions of call 1 and of the line in one commit: the last one wins.
        store
            .commit(
                &[entry(1, broadcast(1), Outcome::Applied)],
                &[
                    Change::Call(call(1, CallStatus::Created, None)),
                    Change::Line(line(true)),
                    Change::Call(call(1, CallStatus::Picked, None)),
                    Change::Call(call(2, CallStatus::Created, None)),
                    Change::Line(line(false)),
                ],
            )
            .await
            .expect("commit with repeated entities");
        let tables = dump(&store).await;
        let statuses: Vec<_> = tables["calls"]
            .iter()
            .map(|c| (c["id"].clone(), c["status"].clone()))
            .collect();
        assert_eq!(
            statuses,
            [(1.into(), "picked".into()), (2.into(), "created".into())]
        );
        assert_eq!(tables["lines"].len(), 1);
        assert_eq!(tables["lines"][0]["running"], false);

        // Across commits: the later commit replaces the row, every column of it.
        store
            .commit(
                &[entry(2, Input::TICK, Outcome::Applied)],
                &[
                    Change::Call(call(1, CallStatus::Put, Some(("seats-000001", 1)))),
                    Change::Line(line(true)),
                ],
            )
            .await
            .expect("second commit");
        let tables = dump(&store).await;
        let first = &tables["calls"][0];
        assert_eq!(first["status"], "put");
        assert_eq!(first["rack"], "seats-000001");
        assert_eq!(first["slot"], 1);
        assert_eq!(tables["calls"].len(), 2);
        assert_eq!(tables["lines"][0]["running"], true);
        assert_eq!(tables["lines"][0]["reason"], serde_json::Value::Null);
        store.close().await;
    }

    pub(super) async fn dump_gives_typed_json(db: TestDb) {
        let store = db.open().await;
        commit_shift(&store).await;
        let tables = dump(&store).await;
        assert_eq!(
            tables["calls"][1],
            serde_json::json!({
                "id": 2, "vehicle": 2, "line": "L1", "family": "seats", "seq": 9992,
                "pos": 9992, "vin": "WVWZZZ1KZ00000002", "part": "SEAT-002",
                "status": "created", "rack": null, "slot": null,
                // Truncated to microseconds from …00.123456789.
                "due_at": "2025-06-15T15:38:40.123456Z",
                "corrections": 0,
                "created_at": "2025-06-15T15:08:40.250Z",
                "changed_at": "2025-06-15T15:09:10Z",
                "supplier": null, "received_at": null, "built_at": null,
                "shipped_at": null, "delivered_at": null, "short_shipped": null,
            })
        );
        assert_eq!(
            tables["vehicles"][0]["options"],
            serde_json::json!(["DRIVE=LHD", "SEAT=LTHR-BLK"])
        );
        assert_eq!(
            tables["vehicles"][0]["calls"],
            serde_json::json!({"seats": 1, "wheels": 101})
        );
        assert_eq!(
            tables["racks"][0]["slots"],
            serde_json::json!([null, null, null, null, null, null])
        );
        let tasks: Vec<_> = tables["tasks"]
            .iter()
            .map(|t| {
                (
                    t["kind"].clone(),
                    t["bin"].clone(),
                    t["rack"].clone(),
                    t["slot"].clone(),
                )
            })
            .collect();
        assert_eq!(
            tasks,
            [
                ("pick".into(), "B-07".into(), ().into(), ().into()),
                ("put".into(), ().into(), "seats-000001".into(), 1.into())
            ]
        );
        assert_eq!(
            tables["alarms"][0],
            serde_json::json!({
                "id": "sequence_gap:L1/B1", "kind": "sequence_gap", "subject": "L1/B1",
                "priority": "medium", "state": "active_unacknowledged",
                "message": "gap at L1/B1", "shelved_until": null,
                "raised_at": "2025-06-15T15:06:50Z",
                "changed_at": "2025-06-15T15:07:00.000001Z", "occurrences": 1,
            })
        );
        assert_eq!(
            tables["lines"][0],
            serde_json::json!({
                "line": "L1", "running": false, "reason": "andon",
                "since": "2025-06-15T15:08:40Z", "stopped_ms_total": 60000, "takt_ms": 58000,
            })
        );
        // Non-finite coverage is NULL on both backends.
        assert_eq!(
            tables["coverage"],
            [
                serde_json::json!({"line": "L1", "family": "seats", "vehicles": 1, "minutes": 0.97}),
                serde_json::json!({"line": "L1", "family": "wheels", "vehicles": 0, "minutes": null}),
            ]
        );
        store.close().await;
    }

    pub(super) async fn duplicate_journal_id_rolls_back_everything(db: TestDb) {
        let store = db.open().await;
        let entries = commit_shift(&store).await;
        let before = dump(&store).await;
        // Entry 8 is fine, 7 is taken: the projection rows are written before the journal rows
        // in the transaction, so this proves that already-executed statements roll back.
        let err = store
            .commit(
                &[
                    entry(7, Input::TICK, Outcome::Applied),
                    entry(8, broadcast(3), Outcome::Applied),
                ],
                &[
                    Change::Vehicle(vehicle(3, VehicleStatus::Live)),
                    Change::Call(call(1, CallStatus::Cancelled, None)),
                    Change::Alarm(alarm("L1/B1", AlarmState::ActiveAcknowledged, 1)),
                ],
            )
            .await
            .expect_err("journal id 7 is taken");
        assert!(
            matches!(err, StoreError::Commit { .. }),
            "unexpected error {err:?}"
        );
        assert!(
            err.to_string().contains("journal entries 7..=8"),
            "the message names the batch: {err}"
        );
        assert_eq!(journal(&store).await, entries);
        assert_eq!(dump(&store).await, before);
        // The store is still usable afterwards.
        store
            .commit(&[entry(8, broadcast(3), Outcome::Applied)], &[])
            .await
            .expect("a correct commit after a failed one");
        assert_eq!(store.last_journal_id().await.expect("last id"), 8);
        store.close().await;
    }

    pub(super) async fn journal_ids_must_grow(db: TestDb) {
        let store = db.open().await;
        store
            .commit(&[entry(10, Input::TICK, Outcome::Applied)], &[])
            .await
            .expect("first commit");
        // Not increasing within the batch: refused before touching the database.
        let err = store
            .commit(
                &[
                    entry(12, Input::TICK, Outcome::Applied),
                    entry(11, Input::TICK, Outcome::Applied),
                ],
                &[Change::Line(line(true))],
            )
            .await
            .expect_err("12 then 11");
        assert!(
            matches!(
                err,
                StoreError::JournalOrder {
                    id: 11,
                    previous: 12
                }
            ),
            "unexpected error {err:?}"
        );
        // Free ids below the last one: a reader at cursor 10 would never see them.
        let err = store
            .commit(
                &[
                    entry(4, Input::TICK, Outcome::Applied),
                    entry(5, Input::TICK, Outcome::Applied),
                ],
                &[Change::Line(line(true))],
            )
            .await
            .expect_err("4 and 5 after 10");
        assert!(
            matches!(
                err,
                StoreError::JournalOrder {
                    id: 4,
                    previous: 10
                }
            ),
            "unexpected error {err:?}"
        );
        assert_eq!(
            journal(&store).await,
            [entry(10, Input::TICK, Outcome::Applied)]
        );
        assert!(dump(&store).await["lines"].is_empty());
        store.close().await;
    }

    pub(super) async fn sub_microsecond_journal_times_are_refused(db: TestDb) {
        let store = db.open().await;
        let mut fine = entry(1, Input::TICK, Outcome::Applied);
        let mut late = entry(2, Input::TICK, Outcome::Applied);
        late.at += chrono::Duration::nanoseconds(1);
        let err = store
            .commit(&[fine.clone(), late.clone()], &[Change::Line(line(true))])
            .await
            .expect_err("nanoseconds");
        assert!(
            matches!(err, StoreError::TimePrecision { id: 2, .. }),
            "unexpected error {err:?}"
        );
        assert!(journal(&store).await.is_empty());
        late.at = journal_time(late.at);
        fine.at = journal_time(fine.at);
        store
            .commit(&[fine.clone(), late.clone()], &[])
            .await
            .expect("truncated times");
        assert_eq!(journal(&store).await, [fine, late]);
        store.close().await;
    }

    pub(super) async fn large_batches_commit_whole_and_atomic(db: TestDb) {
        let store = db.open().await;
        // More rows than one statement could bind value by value on either backend (SQLite:
        // 32766 / 6 journal columns = 5461 rows; PostgreSQL: 65535 / 15 call columns = 4369).
        let entries: Vec<_> = (1..=12_000)
            .map(|id| entry(id, broadcast(id as u32 % 9_000), Outcome::Applied))
            .collect();
        let changes: Vec<_> = (1..=9_000)
            .map(|id| Change::Call(call(id, CallStatus::Created, None)))
            .collect();
        store
            .commit(&entries, &changes)
            .await
            .expect("large commit");
        assert_eq!(store.last_journal_id().await.expect("last id"), 12_000);
        let mut read = Vec::new();
        let mut cursor = 0;
        loop {
            let page = store.journal_after(cursor, 5_000).await.expect("page");
            let Some(last) = page.last() else { break };
            cursor = last.id;
            read.extend(page);
        }
        assert_eq!(read, entries);
        assert_eq!(dump(&store).await["calls"].len(), 9_000);

        // The last row of a big batch is a duplicate: every row before it rolls back.
        let before = dump(&store).await;
        store
            .commit(&[entry(20_000, Input::TICK, Outcome::Applied)], &[])
            .await
            .expect("entry 20000");
        let entries: Vec<_> = (12_001..=20_000)
            .map(|id| entry(id, Input::TICK, Outcome::Applied))
            .collect();
        let changes: Vec<_> = (1..=9_000)
            .map(|id| Change::Call(call(id, CallStatus::Cancelled, None)))
            .collect();
        store
            .commit(&entries, &changes)
            .await
            .expect_err("20000 is taken");
        assert_eq!(store.last_journal_id().await.expect("last id"), 20_000);
        assert_eq!(
            store
                .journal_after(12_000, 10)
                .await
                .expect("after 12000")
                .len(),
            1
        );
        assert_eq!(dump(&store).await, before);
        store.close().await;
    }

    pub(super) async fn old_events_are_pruned_in_chunks_keeping_the_newest(db: TestDb) {
        let store = db.open().await;
        assert_eq!(store.oldest_event_id().await.expect("oldest"), None);
        assert_eq!(store.prune_events(at(1_000, 0)).await.expect("prune"), 0);
        // 4,500 events: more than two prune chunks older than the cut-off at 101 s, with
        // fractions of every length around it (whole seconds, milli-, microseconds), but for
        // event 3,000, stamped at 102 s (the events after it were stamped earlier, as after a
        // clock step back); then younger ones, the first exactly at the cut-off.
        let old_micros = [0, 500_000, 250_001, 999_999, 100];
        let event = |id: u64, at: DateTime<Utc>| {
            Change::Event(OutboxEvent {
                id,
                at,
                tenant: None,
                event: StreamEvent::Coverage(coverage("SEATS", id, 1.0)),
            })
        };
        let mut changes: Vec<Change> = (1..=4_000)
            .map(|id| match id {
                3_000 => event(id, at(102, 0)),
                _ => event(id, at(100, old_micros[id as usize % old_micros.len()])),
            })
            .collect();
        changes.extend((4_001..=4_500).map(|id| event(id, at(101, (id as i64 - 4_001) * 10))));
        store.commit(&[], &changes).await.expect("commit events");
        assert_eq!(store.oldest_event_id().await.expect("oldest"), Some(1));

        // Only the run of ids before the first one at or after the cut-off goes: nothing is
        // cut out of the middle, so the oldest id kept says what a cursor has lost.
        assert_eq!(store.prune_events(at(101, 0)).await.expect("prune"), 2_999);
        assert_eq!(store.oldest_event_id().await.expect("oldest"), Some(3_000));
        assert_eq!(
            store.prune_events(at(101, 500_000)).await.expect("prune"),
            0
        );
        // Everything old goes but the newest, which says where the outbox stands.
        assert_eq!(
            store.prune_events(at(10_000, 0)).await.expect("prune"),
            1_500
        );
        assert_eq!(store.oldest_event_id().await.expect("oldest"), Some(4_500));
        assert_eq!(store.prune_events(at(10_000, 0)).await.expect("prune"), 0);
        store.close().await;
    }

    pub(super) async fn a_tenant_reads_its_own_calls_and_events_only(db: TestDb) {
        let store = db.open().await;
        // Calls 3, 6, 9 and 12 are seatco's (see `call`); the rest the plant's own.
        let mut changes: Vec<Change> = (1..=12)
            .map(|id| Change::Call(call(id, CallStatus::Created, None)))
            .collect();
        changes.extend((1..=12).map(|id| {
            let c = call(id, CallStatus::Created, None);
            Change::Event(OutboxEvent {
                id,
                at: at(id as i64, 0),
                tenant: c.supplier.clone(),
                event: StreamEvent::CallCreated(c),
            })
        }));
        store.commit(&[], &changes).await.expect("commit");
        let page = |after: Option<&str>, limit| PageQuery {
            after: after.map(str::to_owned),
            limit,
        };
        let ids = |rows: Vec<serde_json::Value>| -> Vec<i64> {
            rows.iter()
                .map(|r| r["id"].as_i64().expect("an id"))
                .collect()
        };
        let own: Vec<serde_json::Value> = store
            .tenant_page(TenantProjection::Calls, "seatco", &page(None, 3))
            .await
            .expect("page");
        assert_eq!(ids(own), [3, 6, 9]);
        let rest: Vec<serde_json::Value> = store
            .tenant_page(TenantProjection::Calls, "seatco", &page(Some("9"), 3))
            .await
            .expect("next page");
        assert_eq!(ids(rest), [12]);
        for other in ["dashline", "", "%", "seatco' OR '1'='1"] {
            let none: Vec<serde_json::Value> = store
                .tenant_page(TenantProjection::Calls, other, &page(None, 100))
                .await
                .expect("page");
            assert!(none.is_empty(), "{other:?} read {none:?}");
        }
        let one: Option<serde_json::Value> = store
            .tenant_row(TenantProjection::Calls, "seatco", "6")
            .await
            .expect("row");
        assert_eq!(one.map(|c| c["supplier"].clone()), Some("seatco".into()));
        for (tenant, id) in [("seatco", "4"), ("dashline", "6"), ("seatco", "99")] {
            let none: Option<serde_json::Value> = store
                .tenant_row(TenantProjection::Calls, tenant, id)
                .await
                .expect("row");
            assert_eq!(none, None, "{tenant} {id}");
        }
        let events: Vec<serde_json::Value> = store
            .events_after(&EventReader::Tenant("seatco".into()), 0, 100)
            .await
            .expect("events");
        assert_eq!(ids(events), [3, 6, 9, 12]);
        let events: Vec<serde_json::Value> = store
            .events_after(&EventReader::Tenant("dashline".into()), 0, 100)
            .await
            .expect("events");
        assert!(events.is_empty());
        store.close().await;
    }

    /// The forecast's rows differ only in their hour: one commit must keep every one of them.
    pub(super) async fn rows_keyed_by_a_time_stay_apart_in_one_commit(db: TestDb) {
        let store = db.open().await;
        let demand = |hour: i64, quantity: u32| {
            Change::Demand(takt_core::forecast::Demand {
                supplier: "seatco".into(),
                line: "L1".into(),
                family: "seats".into(),
                part: "ST-1".into(),
                hour: at(hour * 3_600, 0),
                quantity,
                planned_at: at(0, 0),
            })
        };
        // Hour 2 twice: the later row wins, as for any entity changed twice in a batch.
        let changes = [demand(1, 3), demand(2, 4), demand(3, 5), demand(2, 6)];
        store.commit(&[], &changes).await.expect("commit");
        let rows: Vec<serde_json::Value> = store
            .tenant_demand("seatco", at(0, 0), at(10 * 3_600, 0))
            .await
            .expect("read");
        let got: Vec<i64> = rows
            .iter()
            .map(|r| r["quantity"].as_i64().expect("a quantity"))
            .collect();
        assert_eq!(got, [3, 6, 5], "{rows:?}");
        store.close().await;
    }

    pub(super) async fn snapshots_latest_and_pruned(db: TestDb) {
        let store = db.open().await;
        let state = |n: i64| {
            serde_json::json!({
                "n": n, "ratio": 0.1, "big": u64::MAX, "neg": -5,
                "nested": {"b": [1, 2, {"c": null}], "a": "x"},
            })
        };
        for id in [10, 20, 30, 40, 50] {
            store
                .save_snapshot(id, state(id).to_string())
                .await
                .expect("save snapshot");
        }
        assert_eq!(
            store.latest_snapshot().await.expect("latest"),
            Some((50, state(50)))
        );
        let kept = store.snapshot_ids().await.expect("ids");
        assert_eq!(kept.len() as i64, SNAPSHOTS_KEPT);
        assert_eq!(kept, [30, 40, 50]);
        // Saving again at the same id replaces it.
        store
            .save_snapshot(50, state(51).to_string())
            .await
            .expect("replace snapshot");
        assert_eq!(
            store.latest_snapshot().await.expect("latest"),
            Some((50, state(51)))
        );
        // An older snapshot saved late is pruned at once, the newest stays.
        store
            .save_snapshot(5, state(5).to_string())
            .await
            .expect("old snapshot");
        assert_eq!(store.snapshot_ids().await.expect("ids"), [30, 40, 50]);
        store.close().await;
    }

    pub(super) async fn reset_keeps_the_journal(db: TestDb) {
        let store = db.open().await;
        let entries = commit_shift(&store).await;
        store
            .save_snapshot(7, serde_json::json!({"state": 1}).to_string())
            .await
            .expect("snapshot");
        let full = dump(&store).await;
        store.reset_projections().await.expect("reset");
        assert!(dump(&store).await.values().all(Vec::is_empty));
        assert_eq!(store.latest_snapshot().await.expect("latest"), None);
        assert_eq!(journal(&store).await, entries);
        // Rebuilding: the same changes give the same projections.
        for (_, changes) in shift() {
            store.commit(&[], &changes).await.expect("rebuild");
        }
        assert_eq!(dump(&store).await, full);
        store.close().await;
    }

    /// PLC strings are often NUL-padded and PostgreSQL's TEXT and JSONB cannot hold U+0000: the
    /// journal and snapshots must still keep the input exactly; projections and outcome reasons
    /// get U+FFFD, the same on both backends.
    pub(super) async fn nul_characters_never_block_the_journal(db: TestDb) {
        let store = db.open().await;
        let Input::Sequencing(SequencingInput::Broadcast {
            line,
            point,
            mut record,
        }) = broadcast(1)
        else {
            unreachable!("broadcast() builds a broadcast")
        };
        record.body = "BODY0001\0\0\0\0".to_owned();
        let input = Input::Sequencing(SequencingInput::Broadcast {
            line,
            point,
            record,
        });
        let entries = [entry(1, input, Outcome::Rejected("bad \0 body".to_owned()))];
        let mut v = vehicle(1, VehicleStatus::Live);
        v.body = "BODY0001\0".to_owned();
        v.calls.insert("seats\0".to_owned(), CallId(1));
        let mut a = alarm("L1/B1", AlarmState::ActiveUnacknowledged, 1);
        a.message = "record rejected: body `BODY0001\0`".to_owned();
        store
            .commit(&entries, &[Change::Vehicle(v), Change::Alarm(a)])
            .await
            .expect("NUL characters commit");
        let read = journal(&store).await;
        assert_eq!(read[0].input, entries[0].input);
        assert_eq!(
            read[0].outcome,
            Outcome::Rejected("bad \u{FFFD} body".to_owned())
        );
        let tables = dump(&store).await;
        assert_eq!(tables["vehicles"][0]["body"], "BODY0001\u{FFFD}");
        assert_eq!(tables["vehicles"][0]["calls"]["seats\u{FFFD}"], 1);
        assert_eq!(
            tables["alarms"][0]["message"],
            "record rejected: body `BODY0001\u{FFFD}`"
        );
        let state = serde_json::json!({"raw": "A\0B"});
        store
            .save_snapshot(1, state.to_string())
            .await
            .expect("snapshot with NUL");
        assert_eq!(
            store.latest_snapshot().await.expect("latest"),
            Some((1, state))
        );
        store.close().await;
    }

    pub(super) async fn reopen_keeps_everything(db: TestDb) {
        let store = db.open().await;
        let entries = commit_shift(&store).await;
        store
            .save_snapshot(7, serde_json::json!({"seq": 9992}).to_string())
            .await
            .expect("snapshot");
        let tables = dump(&store).await;
        store.close().await;

        // Opening again runs the (already applied) migrations again: a no-op.
        let store = db.open().await;
        assert_eq!(store.last_journal_id().await.expect("last id"), 7);
        assert_eq!(journal(&store).await, entries);
        assert_eq!(dump(&store).await, tables);
        assert_eq!(
            store.latest_snapshot().await.expect("latest"),
            Some((7, serde_json::json!({"seq": 9992})))
        );
        store
            .commit(&[entry(8, Input::TICK, Outcome::Applied)], &[])
            .await
            .expect("commit after reopen");
        store.close().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Across backends and SQLite specifics.

#[tokio::test]
async fn dump_and_journal_are_identical_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let sqlite = Store::open(&dir.path().join("takt.db").display().to_string())
        .await
        .expect("open sqlite");
    let sqlite_entries = commit_shift(&sqlite).await;
    let sqlite_dump = dump(&sqlite).await;
    let sqlite_journal = journal(&sqlite).await;
    assert_eq!(sqlite_journal, sqlite_entries);
    sqlite.close().await;

    on_postgres(move |db| async move {
        let pg = db.open().await;
        assert_eq!(pg.backend(), "postgres");
        commit_shift(&pg).await;
        let pg_dump = dump(&pg).await;
        assert_eq!(
            serde_json::to_string_pretty(&pg_dump).expect("json"),
            serde_json::to_string_pretty(&sqlite_dump).expect("json"),
        );
        assert_eq!(journal(&pg).await, sqlite_journal);
        pg.close().await;
    })
    .await;
}

#[tokio::test]
async fn sqlite_open_creates_directories_and_runs_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("a").join("b").join("takt.db");
    // A plain path, as in the default configuration.
    let store = Store::open(&path.display().to_string())
        .await
        .expect("open by path");
    assert_eq!(store.backend(), "sqlite");
    commit_shift(&store).await;
    store.close().await;
    assert!(path.exists());

    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("raw connection");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("journal mode");
    assert_eq!(mode, "wal");
    conn.close().await.expect("close");

    // The `sqlite:` URL forms reach the same file.
    for url in [
        format!("sqlite://{}", path.display()),
        format!("sqlite:{}", path.display()),
    ] {
        let store = Store::open(&url).await.expect("open by URL");
        assert_eq!(store.last_journal_id().await.expect("last id"), 7);
        store.close().await;
    }
}

/// In memory, commits go through sqlx's connection (the database lives in it); to a file, through
/// the store's own SQLite writer thread. Both must leave the same journal and projections.
#[tokio::test]
async fn sqlite_in_memory_works_for_quick_runs_and_matches_a_file() {
    let store = Store::open("sqlite::memory:").await.expect("in memory");
    let entries = commit_shift(&store).await;
    assert_eq!(journal(&store).await, entries);
    let in_memory = dump(&store).await;
    store.close().await;

    let dir = tempfile::tempdir().expect("temporary directory");
    let file = Store::open(&dir.path().join("takt.db").display().to_string())
        .await
        .expect("open sqlite file");
    assert_eq!(commit_shift(&file).await, entries);
    assert_eq!(journal(&file).await, entries);
    assert_eq!(
        serde_json::to_string_pretty(&dump(&file).await).expect("json"),
        serde_json::to_string_pretty(&in_memory).expect("json"),
    );
    file.close().await;
}

#[tokio::test]
async fn unknown_url_schemes_are_refused() {
    let err = Store::open("mysql://root:hunter2@db/takt")
        .await
        .expect_err("mysql is not a backend");
    let message = err.to_string();
    assert!(message.contains("mysql://root:***@db/takt"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}
