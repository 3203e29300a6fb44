//! The Modbus driver against sim-line's Modbus server over real loopback sockets.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use takt_core::config::LampColour;
use takt_plc_bridge::modbus::driver::{self, DriverConfig, Event, Handle};
use takt_plc_bridge::modbus::profile::{LampState, Profile};
use takt_sim_line::modbus::{Lamp, SimModbus, SimModbusConfig};
use tokio::sync::mpsc::Receiver;
use tokio_modbus::ExceptionCode;

const WAIT: Duration = Duration::from_secs(3);

fn config(sim: &SimModbus, units: &[u8]) -> DriverConfig {
    let profile = Profile::builtin("sim-line").unwrap();
    let units: BTreeMap<u8, Profile> = units.iter().map(|&u| (u, profile.clone())).collect();
    let mut config = DriverConfig::new(sim.local_addr(), units);
    config.poll_interval = Duration::from_millis(10);
    config.debounce_polls = 3;
    config.backoff_min = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(200);
    config
}

async fn start(units: &[u8]) -> (SimModbus, Handle, Receiver<Event>) {
    let sim = SimModbus::bind_with(
        "127.0.0.1:0",
        SimModbusConfig {
            units: vec![1, 2],
            positions: 16,
        },
    )
    .await
    .unwrap();
    let (handle, mut events) = driver::spawn(config(&sim, units));
    assert_eq!(next_event(&mut events).await, Event::Connected);
    (sim, handle, events)
}

async fn next_event(events: &mut Receiver<Event>) -> Event {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("driver running")
}

/// Waits (bounded) until `done` holds; returns how long it took.
async fn wait_until(mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT, "condition not met within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

fn red_12() -> LampState {
    LampState::On {
        colour: LampColour::Red,
        digits: Some(12),
        blink: true,
    }
}

fn green() -> LampState {
    LampState::On {
        colour: LampColour::Green,
        digits: None,
        blink: false,
    }
}

#[tokio::test]
async fn lights_land_in_the_simulator_registers() {
    let (sim, handle, _events) = start(&[1, 2]).await;
    handle.set(1, 3, red_12()).await.unwrap();
    handle.set(2, 0, green()).await.unwrap();
    wait_until(|| {
        sim.panel().lamp(1, 3)
            == Some(Lamp {
                colour: 3,
                digits: 12,
                blink: 1,
            })
    })
    .await;
    wait_until(|| {
        sim.panel().lamp(2, 0)
            == Some(Lamp {
                colour: 1,
                digits: 0,
                blink: 0,
            })
    })
    .await;
    handle.set(1, 3, LampState::Off).await.unwrap();
    wait_until(|| sim.panel().lamp(1, 3) == Some(Lamp::default())).await;
    // Only diffs are written: setting the same state again writes nothing.
    let before = sim.panel().lamp_log().len();
    handle.set(2, 0, green()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sim.panel().lamp_log().len(), before);
}

#[tokio::test]
async fn reconnects_and_reasserts_within_one_second_after_a_device_restart() {
    let (mut sim, handle, mut events) = start(&[1]).await;
    handle.set(1, 5, red_12()).await.unwrap();
    let lit = Some(Lamp {
        colour: 3,
        digits: 12,
        blink: 1,
    });
    wait_until(|| sim.panel().lamp(1, 5) == lit).await;

    sim.stop().await;
    sim.panel().power_cycle_lamps();
    match next_event(&mut events).await {
        Event::Disconnected { cause } => assert!(!cause.is_empty()),
        other => panic!("expected a disconnect, got {other:?}"),
    }
    // Let a few reconnect attempts fail so the backoff is exercised.
    tokio::time::sleep(Duration::from_millis(150)).await;
    sim.restart().await.unwrap();
    let took = wait_until(|| sim.panel().lamp(1, 5) == lit).await;
    assert!(took < Duration::from_secs(1), "re-asserted after {took:?}");
    // Disconnected events for failed reconnects, then Connected.
    loop {
        match next_event(&mut events).await {
            Event::Connected => break,
            Event::Disconnected { cause } => assert!(cause.starts_with("connect"), "{cause}"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_press_is_one_event_and_a_glitch_is_none() {
    let (sim, _handle, mut events) = start(&[1]).await;
    // A glitch shorter than one poll interval is seen by at most one poll (debounce needs 3).
    sim.panel().press(1, 2, Duration::from_millis(3)).await;
    sim.panel().press(1, 7, Duration::from_millis(150)).await;
    assert_eq!(
        next_event(&mut events).await,
        Event::ButtonPressed {
            unit: 1,
            position: 7
        }
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(events.try_recv().is_err(), "exactly one event per press");
}

#[tokio::test]
async fn an_exception_is_reported_and_the_connection_kept() {
    // Unit 9 is not on the simulator: it answers with an exception, the link stays up.
    let (sim, handle, mut events) = start(&[1, 9]).await;
    let mut saw_exception = false;
    handle.set(9, 0, red_12()).await.unwrap();
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(50), events.recv()).await {
            Ok(Some(Event::Exception { unit, code, .. })) => {
                assert_eq!((unit, code), (9, ExceptionCode::GatewayTargetDevice));
                saw_exception = true;
            }
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            Ok(None) => panic!("driver stopped"),
            Err(_) => {}
        }
    }
    assert!(saw_exception);
    // Unit 1 on the same connection still works.
    handle.set(1, 0, red_12()).await.unwrap();
    wait_until(|| {
        sim.panel().lamp(1, 0)
            == Some(Lamp {
                colour: 3,
                digits: 12,
                blink: 1,
            })
    })
    .await;
}

#[tokio::test]
async fn refuses_what_the_profile_cannot_show() {
    let (_sim, handle, _events) = start(&[1]).await;
    assert!(handle.set(3, 0, LampState::Off).await.is_err());
    assert!(handle.set(1, 16, LampState::Off).await.is_err());
}

#[tokio::test]
async fn the_task_stops_when_every_handle_is_dropped() {
    let (_sim, handle, mut events) = start(&[1]).await;
    let clone = handle.clone();
    drop(handle);
    drop(clone);
    let end = tokio::time::timeout(WAIT, async { while events.recv().await.is_some() {} }).await;
    assert!(end.is_ok(), "event channel closes when the task ends");
}

#[tokio::test]
async fn an_unreachable_device_reports_disconnects_and_keeps_taking_commands() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let profile = Profile::builtin("sim-line").unwrap();
    let mut config = DriverConfig::new(port, BTreeMap::from([(1, profile)]));
    config.backoff_min = Duration::from_millis(5);
    config.backoff_max = Duration::from_millis(20);
    let (handle, mut events) = driver::spawn(config);
    for _ in 0..3 {
        assert!(matches!(
            next_event(&mut events).await,
            Event::Disconnected { .. }
        ));
    }
    handle.set(1, 0, red_12()).await.unwrap();
}
