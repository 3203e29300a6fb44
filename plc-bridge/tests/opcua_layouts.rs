//! Interop: the OPC UA broadcast source against Python asyncua PLCs in the layouts other plants
//! use (`tests/interop/asyncua_plc.py`): Siemens-style field arrays in both orders, a
//! TwinCAT-style ring with a 1-based write index, DataReady strobe handshakes that present
//! a record again after their timeout, one clearing the acknowledgement itself and one waiting
//! for Takt to clear it, and a counter handshake that presents the same record again with the
//! same counter value. Options arrive as `KEY:VALUE` strings and as bare codes mapped through
//! a table. Each run is compared with the PLC's own log: every record journaled exactly once,
//! in order, and no handshake left waiting.
//! Needs the venv from `scripts/python-env`; without it the tests skip, except under `CI=true`.

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use support::{
    NAMESPACE, PythonPlc, Recorder, WAIT, broadcasts, conditions, s7_arrays_source, vin,
};
use takt_core::Input;
use takt_core::{AlarmInput, SequencingInput};
use takt_plc_bridge::opcua;

fn seqs(inputs: &[Input]) -> Vec<u32> {
    broadcasts(inputs).iter().map(|b| b.0).collect()
}

/// The records a handshake presented, in order: a record presented again is journaled again
/// (the core sees the duplicate and ignores it), so consecutive copies of one record count as
/// one presentation — as long as they are the same record.
fn presentations(inputs: &[Input]) -> Vec<u32> {
    let mut out: Vec<Input> = Vec::new();
    for input in inputs
        .iter()
        .filter(|i| matches!(i, Input::Sequencing(SequencingInput::Broadcast { .. })))
    {
        if out.last() != Some(input) {
            out.push(input.clone());
        }
    }
    seqs(&out)
}

/// A Siemens-style option string for record `seq`.
fn colon_options(seq: u32) -> String {
    let seat = if seq.is_multiple_of(2) {
        "LTHR-BLK"
    } else {
        "CLTH-GRY"
    };
    format!("SEAT:{seat};DRIVE:LHD")
}

/// Field arrays in `order`: records with a gap (6 never sent), a duplicate (8 pushed twice),
/// and a server restart in the middle. The journal holds each record once, in order, with
/// its options turned into `KEY=VALUE`.
async fn field_arrays(order: &str, variant: &str) {
    let Some(mut plc) = PythonPlc::start("asyncua_plc.py", &["arrays", variant]).await else {
        return;
    };
    let cfg = plc.source("plant-b/", &s7_arrays_source(order, 20));
    let journal = Arc::new(Recorder::new());
    let source = opcua::spawn(cfg, journal.clone()).expect("source starts");
    let push = |seq: u32| json!({ "broadcast": { "seq": seq, "vin": vin(seq), "model": "SUV5", "options": colon_options(seq) } });

    for seq in [1, 2, 3, 4, 5, 7, 8, 8] {
        plc.send(push(seq)).await;
    }
    journal
        .wait_for(WAIT, "the first records", |i| seqs(i).ends_with(&[8]))
        .await;
    plc.send(json!({ "restart": true })).await;
    plc.until(|e| e.get("restarted").is_some()).await;
    // Records pushed while the source may still be reconnecting: the read after the connect
    // finds them in the FIFO.
    for seq in 9..=12 {
        plc.send(push(seq)).await;
    }
    let inputs = journal
        .wait_for(WAIT, "the records after the restart", |i| {
            seqs(i).ends_with(&[12])
        })
        .await;
    plc.until(|e| *e == json!({ "pushed": 12 })).await;
    let pushed: Vec<u32> = plc
        .log
        .iter()
        .filter_map(|e| e.get("pushed").and_then(Value::as_u64))
        .map(|s| u32::try_from(s).expect("small"))
        .collect();
    let mut once = pushed.clone();
    once.dedup();
    assert_eq!(
        seqs(&inputs),
        once,
        "journaled once each, in the PLC's order"
    );
    assert_eq!(once, [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]);
    for (seq, _, model, options) in broadcasts(&inputs) {
        assert_eq!(model, "SUV5");
        let seat = colon_options(seq).replace(':', "=");
        let expected: Vec<String> = seat.split(';').map(str::to_owned).collect();
        assert_eq!(options, expected, "record {seq}");
    }
    let outages = conditions(&inputs)
        .iter()
        .filter(|c| **c == ("source_disconnected", true))
        .count();
    assert_eq!(outages, 1, "one condition for the one restart");
    source.stop().await;
}

#[tokio::test]
async fn field_arrays_newest_first_deliver_each_record_once_in_order() {
    field_arrays("newest_first", "newest").await;
}

#[tokio::test]
async fn field_arrays_oldest_first_deliver_each_record_once_in_order() {
    field_arrays("oldest_first", "oldest").await;
}

#[tokio::test]
async fn a_ring_with_a_one_based_write_index_and_bare_codes_wraps_without_loss() {
    let Some(mut plc) = PythonPlc::start("asyncua_plc.py", &["ring"]).await else {
        return;
    };
    let cfg = plc.source(
        "plant-b/",
        &format!(
            r#"{NAMESPACE}
            [options_format.codes]
            P7L = "SEAT=LTHR-BLK"
            P7C = "SEAT=CLTH-GRY"
            WH2 = "WHEEL=18-ALLOY"
            [layout]
            kind = "fifo"
            order = "ring"
            trigger = "s=MAIN.nCount"
            write_index = "s=MAIN.nWriteIdx"
            first_index = 1
            slot_count = 16
            arrays = {{ seq = "s=MAIN.aSeq", vin = "s=MAIN.aVin", model = "s=MAIN.aModel", options = "s=MAIN.aOptions" }}
            "#
        ),
    );
    let journal = Arc::new(Recorder::new());
    let source = opcua::spawn(cfg, journal.clone()).expect("source starts");
    // Forty records: the sixteen-slot ring wraps twice and a half.
    for seq in 1..=40u32 {
        let seat = if seq % 3 == 0 { "P7C" } else { "P7L" };
        plc.send(json!({ "broadcast": { "seq": seq, "vin": vin(seq), "model": "EST5", "options": format!("{seat} WH2") } }))
            .await;
        plc.until(|e| e.get("pushed").is_some()).await;
        // Each record waits for the journal to hold the one before, as a PLC's slower takt
        // would: the ring holds sixteen, and the test is about the wrap, not about overrun.
        journal
            .wait_for(WAIT, "the record", |i| seqs(i).last() == Some(&seq))
            .await;
    }
    let inputs = journal.inputs();
    assert_eq!(seqs(&inputs), (1..=40).collect::<Vec<_>>());
    for (seq, _, _, options) in broadcasts(&inputs) {
        let seat = if seq % 3 == 0 {
            "SEAT=CLTH-GRY"
        } else {
            "SEAT=LTHR-BLK"
        };
        assert_eq!(options, [seat, "WHEEL=18-ALLOY"], "record {seq}");
    }
    source.stop().await;
}

/// A handshake whose PLC presents a record again after every timeout: the journal is held
/// shut long enough for several presentations of record 1, then opened; and the next two
/// acknowledgements come, as the PLC sees it, too late, so it takes them back and presents
/// the record again. Every record is journaled once and acknowledged; nothing waits.
async fn presented_again(args: &[&str], layout: &str) {
    let Some(mut plc) = PythonPlc::start("asyncua_plc.py", args).await else {
        return;
    };
    let cfg = plc.source(
        "plant-b/",
        &format!(
            r#"{NAMESPACE}
            [layout]
            kind = "handshake"
            no_handshake = "s=Bcast.Timeout"
            record = {{ seq = "s=Bcast.SeqNo", vin = "s=Bcast.VIN", model = "s=Bcast.Model", options = "s=Bcast.Options" }}
            {layout}
            "#
        ),
    );
    let journal = Arc::new(Recorder::new());
    journal.hold();
    let source = opcua::spawn(cfg, journal.clone()).expect("source starts");
    plc.send(json!({ "late_acks": 2 })).await;
    for seq in 1..=5u32 {
        plc.send(json!({ "broadcast": { "seq": seq, "vin": vin(seq), "model": "SED4", "options": ["SEAT=LTHR-TAN"] } }))
            .await;
    }
    // The PLC gives up on record 1 and presents it again, three times, while the journal
    // has not answered.
    plc.until(|e| *e == json!({ "presented": 1, "attempt": 3 }))
        .await;
    journal.release();
    for seq in 1..=5 {
        plc.until(|e| *e == json!({ "acked": seq })).await;
    }
    let inputs = journal
        .wait_for(WAIT, "five records", |i| presentations(i).len() >= 5)
        .await;
    assert_eq!(
        presentations(&inputs),
        [1, 2, 3, 4, 5],
        "each record journaled in order, a copy only right after itself: {:?}",
        seqs(&inputs)
    );
    let late = plc
        .log
        .iter()
        .filter(|e| e.get("late_ack").is_some())
        .count();
    assert_eq!(late, 2, "the PLC took two acknowledgements back");
    let no_handshake = conditions(&inputs);
    assert!(
        no_handshake.contains(&("no_handshake", true))
            && no_handshake.last() == Some(&("no_handshake", false)),
        "the PLC's timeout raised and then cleared: {no_handshake:?}"
    );
    source.stop().await;
}

async fn strobe(clear: &str) {
    presented_again(
        &["strobe", clear],
        &format!(
            r#"trigger = "s=Bcast.DataReady"
            trigger_kind = "strobe"
            ack = "s=Bcast.Ack"
            ack_with = "flag"
            ack_clear = "{clear}""#
        ),
    )
    .await;
}

#[tokio::test]
async fn a_counter_presented_again_with_the_same_value_is_acknowledged_again() {
    presented_again(
        &["counter"],
        r#"trigger = "s=Bcast.Counter"
        ack = "s=Bcast.AckSeq"
        ack_with = "seq""#,
    )
    .await;
}

#[tokio::test]
async fn a_strobe_presented_again_after_its_timeout_is_acknowledged_again_plc_clears() {
    strobe("plc").await;
}

#[tokio::test]
async fn a_strobe_presented_again_after_its_timeout_is_acknowledged_again_takt_clears() {
    strobe("takt").await;
}

#[tokio::test]
async fn a_strobe_read_as_a_counter_is_one_layout_alarm_and_no_reconnect_storm() {
    let Some(mut plc) = PythonPlc::start("asyncua_plc.py", &["strobe", "plc"]).await else {
        return;
    };
    let cfg = plc.source(
        "plant-b/",
        &format!(
            r#"{NAMESPACE}
            [layout]
            kind = "handshake"
            trigger = "s=Bcast.DataReady"
            ack = "s=Bcast.Ack"
            ack_with = "seq"
            record = {{ seq = "s=Bcast.SeqNo", vin = "s=Bcast.VIN", model = "s=Bcast.Model", options = "s=Bcast.Options" }}
            "#
        ),
    );
    let journal = Arc::new(Recorder::new());
    let source = opcua::spawn(cfg, journal.clone()).expect("source starts");
    plc.send(json!({ "broadcast": { "seq": 1, "vin": vin(1), "model": "SED4", "options": [] } }))
        .await;
    // Four presentations mean four trigger changes and several polls, each a failed read.
    plc.until(|e| *e == json!({ "presented": 1, "attempt": 4 }))
        .await;
    let inputs = journal.inputs();
    let mismatches: Vec<&Input> = inputs
        .iter()
        .filter(|i| matches!(i, Input::Alarms(AlarmInput::Condition { alarm, .. }) if alarm.name() == "source_layout_mismatch"))
        .collect();
    assert_eq!(mismatches.len(), 1, "one condition: {inputs:#?}");
    let Input::Alarms(AlarmInput::Condition {
        active, message, ..
    }) = mismatches[0]
    else {
        unreachable!("filtered to conditions");
    };
    assert!(*active);
    assert!(message.contains("trigger_kind"), "{message}");
    assert_eq!(seqs(&inputs), Vec::<u32>::new());
    let status = source.status();
    assert_eq!(status.connects, 1, "the session stays: {status:?}");
    assert!(status.connected);
    source.stop().await;
}
