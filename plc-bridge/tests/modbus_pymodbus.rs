//! Interop: the Modbus driver against pymodbus (an implementation nobody here wrote), with a
//! register map unlike sim-line's (`tests/interop/pymodbus_server.py`: a Banner-style module on
//! unit 5, generic digital I/O on unit 6). Needs the venv from `scripts/python-env`; without it
//! the test skips, except under `CI=true`, where it fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::Pymodbus;
use takt_core::config::{Blink, LampColour};
use takt_plc_bridge::modbus::driver::{self, DriverConfig, Event};
use takt_plc_bridge::modbus::profile::{LampState, Profile};
use tokio_modbus::Slave;
use tokio_modbus::client::{Reader, tcp};

#[tokio::test]
async fn drives_a_pymodbus_server_with_its_own_register_map() {
    let Some(server) = Pymodbus::start() else {
        return;
    };
    let port = server.addr;

    let units = BTreeMap::from([
        (5, Profile::builtin("banner-ptl110").unwrap()),
        (6, Profile::builtin("generic-dio").unwrap()),
    ]);
    let mut config = DriverConfig::new(port, units);
    config.backoff_min = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(100);
    let (handle, mut events) = driver::spawn(config);
    let green = LampState::On {
        colour: LampColour::Green,
        digits: Some(42),
        blink: Blink::Fast,
    };
    handle.set(5, 1, green).unwrap();
    let yellow = LampState::On {
        colour: LampColour::Yellow,
        digits: None,
        blink: Blink::Steady,
    };
    handle.set(6, 2, yellow).unwrap();

    // Connected (after any refused connects while Python starts), then position 1's held button.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut pressed = false;
    let mut answering = Vec::new();
    while !pressed {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv())
            .await
            .expect("events in time")
        {
            Some(Event::ButtonPressed {
                unit: 5,
                position: 1,
            }) => pressed = true,
            Some(Event::Connected | Event::Disconnected { .. }) => {}
            Some(Event::UnitAnswering { unit }) => answering.push(unit),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Each unit is reported answering once, after its first clean poll: unit 5's came before
    // its press.
    assert!(answering.contains(&5), "{answering:?}");
    assert!(answering.iter().all(|u| [5, 6].contains(u)) && answering.len() <= 2);

    // Read the registers back through an independent connection.
    let mut banner = tcp::connect_slave(port, Slave(5)).await.unwrap();
    let mut dio = tcp::connect_slave(port, Slave(6)).await.unwrap();
    loop {
        let colour_blink_digits = banner.read_holding_registers(16, 3).await.unwrap().unwrap();
        let coils = dio.read_coils(8, 4).await.unwrap().unwrap();
        if colour_blink_digits == [1, 1, 42] && coils[..4] == [false, false, true, false] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "registers {colour_blink_digits:?}, coils {coils:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Only position 1 and 2 were touched.
    assert_eq!(
        banner.read_holding_registers(0, 3).await.unwrap().unwrap(),
        [0, 0, 0]
    );
    assert_eq!(
        dio.read_coils(0, 8).await.unwrap().unwrap()[..8],
        [false; 8]
    );
}
