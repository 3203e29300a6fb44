//! The commissioning probe against servers and devices nobody here wrote: Python asyncua PLCs
//! (`tests/interop/asyncua_plc.py`) and pymodbus modules (`tests/interop/pymodbus_server.py`),
//! configured with the mistakes a plant engineer makes — a strobe read as a counter, a NodeId
//! with the wrong case, arrays shorter than the layout reads, a profile wider than the module.
//! Each is named at its field; everything else is reported as fitting. Needs the venv from
//! `scripts/python-env`; without it the tests skip, except under `CI=true`.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{NAMESPACE, Pymodbus, PythonPlc, s7_arrays_source};
use takt_plc_bridge::modbus::{self, profile::Profile};
use takt_plc_bridge::opcua::probe::{Finding, probe};

fn verdicts(findings: &[Finding]) -> BTreeMap<&str, Option<&str>> {
    findings
        .iter()
        .map(|f| (f.field.as_str(), f.mismatch.as_deref()))
        .collect()
}

#[tokio::test]
async fn a_strobe_configured_as_a_counter_and_a_misspelt_node_are_named() {
    let Some(plc) = PythonPlc::start("asyncua_plc.py", &["strobe", "plc"]).await else {
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
            ack_with = "flag"
            ack_clear = "plc"
            no_handshake = "s=Bcast.Timeout"
            record = {{ seq = "s=Bcast.SeqNo", vin = "s=Bcast.Vin", model = "s=Bcast.Model", options = "s=Bcast.Options" }}
            "#
        ),
    );
    let findings = probe(&cfg).await.expect("the server answers");
    let v = verdicts(&findings);
    assert!(
        v["layout.trigger"].is_some_and(|why| why.contains("Boolean")),
        "{findings:#?}"
    );
    assert!(
        v["layout.record.vin"].is_some_and(|why| why.contains("BadNodeIdUnknown")),
        "{findings:#?}"
    );
    for fine in [
        "layout.ack",
        "layout.no_handshake",
        "layout.record.seq",
        "layout.record.model",
        "layout.record.options",
    ] {
        assert_eq!(v[fine], None, "{fine}: {findings:#?}");
    }
    let trigger = findings
        .iter()
        .find(|f| f.field == "layout.trigger")
        .unwrap();
    assert!(trigger.found.contains("Boolean"), "{trigger:?}");
    assert_eq!(
        findings.len(),
        7,
        "every configured node, once: {findings:#?}"
    );
}

#[tokio::test]
async fn field_arrays_shorter_than_the_layout_reads_are_named_with_their_length() {
    let Some(plc) = PythonPlc::start("asyncua_plc.py", &["arrays", "oldest"]).await else {
        return;
    };
    let cfg = plc.source("plant-b/", &s7_arrays_source("oldest_first", 32));
    let findings = probe(&cfg).await.expect("the server answers");
    let v = verdicts(&findings);
    assert_eq!(v["layout.trigger"], None, "{findings:#?}");
    for field in ["seq", "vin", "model", "options"] {
        let why = v[format!("layout.arrays.{field}").as_str()];
        assert!(
            why.is_some_and(|w| w.contains("20 elements, the layout reads 32 from element 0")),
            "{field}: {findings:#?}"
        );
    }
    let seq = findings
        .iter()
        .find(|f| f.field == "layout.arrays.seq")
        .unwrap();
    assert!(seq.found.contains("[20]"), "type and length shown: {seq:?}");
}

#[tokio::test]
async fn a_one_based_ring_the_source_reads_fits() {
    // TwinCAT-style ARRAY[1..16] served as 16 elements, numbered from 1 in the configuration:
    // what the source reads without a mismatch, the probe passes too.
    let Some(plc) = PythonPlc::start("asyncua_plc.py", &["ring"]).await else {
        return;
    };
    let cfg = plc.source(
        "plant-b/",
        &format!(
            r#"{NAMESPACE}
            [options_format.codes]
            P7L = "SEAT=LTHR-BLK"
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
    let findings = probe(&cfg).await.expect("the server answers");
    assert!(
        findings.iter().all(|f| f.mismatch.is_none()),
        "{findings:#?}"
    );
    assert_eq!(
        findings.len(),
        6,
        "trigger, write index, four arrays: {findings:#?}"
    );
}

#[tokio::test]
async fn a_profile_wider_than_the_module_is_named_at_the_first_position_it_lacks() {
    let Some(server) = Pymodbus::start() else {
        return;
    };
    let port = server.addr;
    // Unit 6 has 32 coils, 4 per position: 8 positions; this profile says 10.
    let wide =
        include_str!("../profiles/generic-dio.toml").replace("positions = 8", "positions = 10");
    // Unit 5's 128 holding registers: the watchdog at the last one is there.
    let with_watchdog = format!(
        "{}\n[watchdog]\naddress = \"hr:127\"\nperiod_ms = 500\n",
        include_str!("../profiles/banner-ptl110.toml")
    );
    let units = BTreeMap::from([
        (5, Profile::from_toml(&with_watchdog).unwrap()),
        (6, Profile::from_toml(&wide).unwrap()),
    ]);
    // The server may still be starting: the probe is retried for a few seconds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let findings = loop {
        match modbus::probe::probe(port, &units, Duration::from_millis(500)).await {
            Ok(findings) => break findings,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let of = |unit, part| {
        findings
            .iter()
            .find(|f| f.unit == unit && f.part == part)
            .unwrap_or_else(|| panic!("unit {unit} {part}: {findings:#?}"))
    };
    let lamps = of(6, "lamps");
    assert!(
        lamps.read.contains("position 8") && lamps.mismatch.is_some(),
        "{lamps:?}"
    );
    assert_eq!(of(5, "lamps").mismatch, None, "{findings:#?}");
    let buttons = of(5, "buttons");
    assert_eq!(buttons.mismatch, None, "{findings:#?}");
    assert!(
        buttons.found.contains("1 pressed"),
        "position 1 is held: {buttons:?}"
    );
    assert_eq!(findings.len(), 5);
}
