//! The controller against a plant nobody here wrote: a Python `asyncua` PLC (its own namespace,
//! numeric NodeIds, options as a string array, an Int32 sequence number echoed as the ack) and
//! a `pymodbus` gateway with a Banner PTL110-style module (unit 5: colour, animation, digits
//! 16 registers apart; the touch button a bit of an input register) for the door station's
//! bins and a generic digital-I/O module (unit 6, coils) for its rack slots.
//!
//! The gateway holds bin D02's button down from the start: a press with nothing lit, so a
//! wrong pick — red, flashing, on the Banner registers. Then the PLC broadcasts: every record is
//! journaled and acknowledged, and the pick lights green on the Banner registers of the bin the
//! variant rules chose.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use takt_core::model::TaskKind;
use takt_tests::{InProcess, example_plant_only, repo_root, venv_python};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_modbus::client::Reader;
use tokio_modbus::prelude::{Slave, SlaveContext};

const WAIT: Duration = Duration::from_secs(20);
/// Banner PTL110 map (`plc-bridge/profiles/banner-ptl110.toml`): colour codes and stride.
const BANNER_GREEN: u16 = 1;
const BANNER_RED: u16 = 2;
const BANNER_STRIDE: u16 = 16;
/// A complete, legal option set of the example plant; left-hand drive with leather and RGB
/// door trim selects door panel `DP-L-LTHR-RGB`, bin D03 (position 2).
const OPTIONS: &[&str] = &[
    "DRIVE=LHD",
    "SEAT=LTHR-BLK",
    "SEATHEAT=FRONT",
    "COCKPIT=NAV",
    "TRIM=LUX",
    "PAINT=BLK",
    "WHEEL=19-ALLOY",
    "TYRE=SUMMER",
    "BUMPER=STD",
    "PDC=REAR",
    "DOORPANEL=LTHR",
    "AMBIENT=RGB",
    "ROOFRAIL=ALU",
    "HITCH=NONE",
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Reads `expected.len()` holding registers from `address` every 20 ms until they hold
/// `expected` and `also()` is true, at most `WAIT`.
async fn wait_for_registers(
    module: &mut tokio_modbus::client::Context,
    what: &str,
    address: u16,
    expected: &[u16],
    also: impl Fn() -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let count = u16::try_from(expected.len()).expect("a few registers");
        let read = module.read_holding_registers(address, count).await;
        if also() && matches!(&read, Ok(Ok(values)) if values == expected) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: {what}; last read {read:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_plc_and_foreign_light_modules_drive_the_right_registers() {
    let python = venv_python();
    let dir = tempfile::tempdir().expect("temp dir");
    let (opc_port, modbus_port) = (free_port(), free_port());
    let mut plc = Command::new(&python)
        .arg(repo_root().join("tests/interop/asyncua_line.py"))
        .args([opc_port.to_string(), "handshake".to_owned()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the asyncua PLC starts");
    let mut plc_in = plc.stdin.take().expect("stdin");
    let mut plc_out = BufReader::new(plc.stdout.take().expect("stdout")).lines();
    let mut next_event = async || -> Value {
        let line = tokio::time::timeout(WAIT, plc_out.next_line())
            .await
            .expect("an event from the PLC in time")
            .expect("PLC output")
            .expect("PLC still running");
        serde_json::from_str(&line).expect("JSON event")
    };
    assert_eq!(next_event().await, json!({ "listening": opc_port }));
    let _gateway = Command::new(&python)
        .arg(repo_root().join("tests/interop/pymodbus_server.py"))
        .arg(modbus_port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the pymodbus gateway starts");

    let io = format!(
        r#"
[[sources]]
line = "A1"
point = "B1"
endpoint = "opc.tcp://127.0.0.1:{opc_port}/plc/"
namespace_uri = "urn:example:other-plc:body-shop"
publishing_interval_ms = 10
pki_dir = "{pki}"
line_state = {{ running = "i=1010", stop_reason = "i=1011" }}
[sources.layout]
kind = "handshake"
trigger = "i=1005"
ack = "i=1006"
ack_with = "seq"
no_handshake = "i=1007"
record = {{ seq = "i=1001", vin = "i=1002", model = "i=1003", options = "i=1004" }}

[[devices]]
id = "GATEWAY"
endpoint = "127.0.0.1:{modbus_port}"
poll_ms = 10
units = [
    {{ unit = 5, profile = "banner-ptl110", station = "PS-DOORS", first_bin_position = 0 }},
    {{ unit = 6, profile = "generic-dio", station = "PS-DOORS", first_slot_position = 0 }},
]
"#,
        pki = dir.path().join("pki").display(),
    );
    let mut cfg = takt::config::parse(
        &dir.path().join("plant.toml"),
        &format!("{}{io}", example_plant_only()),
    )
    .expect("configuration");
    cfg.controller.data_dir = dir.path().join("data");
    let takt = InProcess::start(cfg).await;
    let handle = takt.writer.clone();

    let deadline = tokio::time::Instant::now() + WAIT;
    let mut banner = loop {
        match tokio_modbus::client::tcp::connect(([127, 0, 0, 1], modbus_port).into()).await {
            Ok(context) => break context,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "gateway: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    banner.set_slave(Slave(5));
    // Bin D02 (position 1), held down at the gateway: a wrong pick, shown red and flashing.
    let wrong_pick = || {
        handle
            .status()
            .alarms
            .iter()
            .any(|a| a.key.kind.name() == "wrong_pick")
    };
    wait_for_registers(
        &mut banner,
        "the wrong pick's red light on the Banner registers",
        BANNER_STRIDE,
        &[BANNER_RED, 1],
        wrong_pick,
    )
    .await;

    for seq in 1..=3 {
        let record = json!({ "seq": seq, "vin": format!("WVWZZZ1JZ3W{seq:06}"), "model": "SUV5", "options": OPTIONS });
        let command = format!("{}\n", json!({ "broadcast": record }));
        plc_in.write_all(command.as_bytes()).await.expect("command");
    }
    for seq in 1..=3 {
        assert_eq!(
            next_event().await,
            json!({ "acked": seq }),
            "acknowledged in order"
        );
    }
    let status = handle.status();
    assert_eq!(
        status.lines[0].expected_seq["B1"],
        Some(4),
        "all three records journaled"
    );
    let pick = status
        .open_tasks
        .iter()
        .find(|t| t.station == "PS-DOORS")
        .expect("a pick at the door station");
    assert_eq!(pick.kind, TaskKind::Pick { bin: "D03".into() });
    // D03 is position 2: colour, animation, digits (quantity 1) at 32, 33, 34.
    wait_for_registers(
        &mut banner,
        "the pick's green light on the Banner registers",
        2 * BANNER_STRIDE,
        &[BANNER_GREEN, 0, 1],
        || true,
    )
    .await;

    drop(handle);
    takt.stop().await;
}
