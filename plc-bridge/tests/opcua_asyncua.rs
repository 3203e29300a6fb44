//! Interop: the OPC UA broadcast source against a Python `asyncua` server (an implementation
//! nobody here wrote) in a node layout unlike sim-line's — its own namespace URI, numeric
//! NodeIds, option codes as a string array, the sequence number as Int32 or as text, an ack
//! echoing the sequence number — in both layouts (`tests/interop/asyncua_line.py`).
//! Needs the venv from `scripts/python-env`; without it the test skips, except under `CI=true`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{PythonPlc, Recorder, WAIT, broadcasts, conditions, vin};
use takt_core::Input;
use takt_core::SequencingInput;
use takt_plc_bridge::opcua::{self, SourceConfig};

/// `tests/interop/asyncua_line.py` in `layout`.
async fn start(layout: &str) -> Option<PythonPlc> {
    PythonPlc::start("asyncua_line.py", &[layout]).await
}

async fn broadcast(plc: &mut PythonPlc, seq: u32, model: &str, options: &[&str]) {
    plc.send(
        json!({ "broadcast": { "seq": seq, "vin": vin(seq), "model": model, "options": options } }),
    )
    .await;
}

fn source(plc: &PythonPlc, layout: &str) -> SourceConfig {
    plc.source(
        "plc/",
        &format!(
            r#"namespace_uri = "urn:example:other-plc:body-shop"
            line_state = {{ running = "i=1010", stop_reason = "i=1011" }}
            {layout}"#
        ),
    )
}

#[tokio::test]
async fn handshake_with_numeric_nodes_acknowledges_only_durable_records() {
    let Some(mut plc) = start("handshake").await else {
        return;
    };
    let cfg = source(
        &plc,
        r#"[layout]
        kind = "handshake"
        trigger = "i=1005"
        ack = "i=1006"
        ack_with = "seq"
        no_handshake = "i=1007"
        record = { seq = "i=1001", vin = "i=1002", model = "i=1003", options = "i=1004" }"#,
    );
    let journal = Arc::new(Recorder::new());
    let source = opcua::spawn(cfg, journal.clone()).expect("source starts");

    for seq in 1..=3 {
        broadcast(&mut plc, seq, "SUV5", &["P7L", "WH2"]).await;
    }
    for seq in 1..=3 {
        assert_eq!(plc.next_event().await, json!({ "acked": seq }));
    }
    let inputs = journal
        .wait_for(WAIT, "three records", |i| broadcasts(i).len() == 3)
        .await;
    assert_eq!(
        broadcasts(&inputs),
        (1..=3)
            .map(|seq| (
                seq,
                vin(seq),
                "SUV5".into(),
                vec!["P7L".into(), "WH2".into()]
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(conditions(&inputs)[0], ("source_disconnected", false));

    // The journal stalls: record 4 is read but not durable, so the PLC hears nothing and, after
    // its timeout, raises "no handshake". Once the journal has it, the ack follows.
    journal.hold();
    broadcast(&mut plc, 4, "SED4", &[]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        broadcasts(&journal.inputs()).len(),
        3,
        "record 4 not durable yet"
    );
    journal.release();
    assert_eq!(plc.next_event().await, json!({ "acked": 4 }));
    let inputs = journal
        .wait_for(WAIT, "no_handshake raised and cleared", |i| {
            let c = conditions(i);
            c.contains(&("no_handshake", true)) && c.last() == Some(&("no_handshake", false))
        })
        .await;
    assert_eq!(broadcasts(&inputs)[3].0, 4);

    plc.send(json!({ "running": false, "reason": "andon at T2" }))
        .await;
    journal
        .wait_for(WAIT, "the line stop", |i| {
            i.iter().any(|i| {
                matches!(i, Input::Sequencing(SequencingInput::LineState { running: false, reason: Some(r), .. }) if r == "andon at T2")
            })
        })
        .await;
    source.stop().await;
}

#[tokio::test]
async fn fifo_oldest_first_with_text_numbers_delivers_each_record_once_in_order() {
    let Some(mut plc) = start("fifo").await else {
        return;
    };
    // Seven records before the source connects: the five-slot FIFO holds 3..=7 only.
    for seq in 1..=7 {
        broadcast(&mut plc, seq, "EST5", &["SR1"]).await;
    }
    let cfg = source(
        &plc,
        r#"[layout]
        kind = "fifo"
        trigger = "i=2100"
        order = "oldest_first"
        slots = [
            { seq = "i=2000", vin = "i=2001", model = "i=2002", options = "i=2003" },
            { seq = "i=2010", vin = "i=2011", model = "i=2012", options = "i=2013" },
            { seq = "i=2020", vin = "i=2021", model = "i=2022", options = "i=2023" },
            { seq = "i=2030", vin = "i=2031", model = "i=2032", options = "i=2033" },
            { seq = "i=2040", vin = "i=2041", model = "i=2042", options = "i=2043" },
        ]"#,
    );
    let journal = Arc::new(Recorder::new());
    let source = opcua::spawn(cfg, journal.clone()).expect("source starts");
    let seqs = |i: &[Input]| broadcasts(i).iter().map(|b| b.0).collect::<Vec<_>>();
    journal
        .wait_for(WAIT, "the FIFO's records", |i| seqs(i) == [3, 4, 5, 6, 7])
        .await;
    // Found by one read, journaled as one delivery: they share a commit rather than each
    // waiting for the commit of the one before.
    let deliveries = journal.deliveries();
    assert_eq!(deliveries.last(), Some(&5), "deliveries: {deliveries:?}");

    broadcast(&mut plc, 8, "EST5", &["SR1"]).await;
    // A correction: number 6 again with another model, as the newest entry.
    plc.send(
        json!({ "broadcast": { "seq": 6, "vin": vin(6), "model": "SUV5", "options": ["SR1"] } }),
    )
    .await;
    let inputs = journal
        .wait_for(WAIT, "record 8 and the correction", |i| seqs(i).len() == 7)
        .await;
    let records = broadcasts(&inputs);
    assert_eq!(seqs(&inputs), [3, 4, 5, 6, 7, 8, 6]);
    assert_eq!(records[6].2, "SUV5", "the corrected payload");

    // The core asks again for 4..=5: the FIFO (5, 6, 7, 8, 6') still has 5, not 4.
    source.backfill(4, 5).await;
    journal
        .wait_for(WAIT, "the backfill", |i| {
            seqs(i) == [3, 4, 5, 6, 7, 8, 6, 5]
        })
        .await;
    // Nothing else was delivered twice while waiting (polls re-read the FIFO every 200 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(seqs(&journal.inputs()).len(), 8);
    source.stop().await;
}
