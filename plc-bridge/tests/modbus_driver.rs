//! The Modbus driver against sim-line's Modbus server over real loopback sockets.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use takt_core::config::{Blink, LampColour};
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
    start_with(units, SimModbusConfig::default()).await
}

/// Starts a driver for `units` of a simulator of `modules`; returns once it is connected and
/// every unit the simulator has has answered once.
async fn start_with(
    units: &[u8],
    modules: SimModbusConfig,
) -> (SimModbus, Handle, Receiver<Event>) {
    let sim = SimModbus::bind_with("127.0.0.1:0", modules.clone())
        .await
        .unwrap();
    let (handle, mut events) = driver::spawn(config(&sim, units));
    assert_eq!(next_event(&mut events).await, Event::Connected);
    let mut answering: Vec<u8> = Vec::new();
    let mut expected: Vec<u8> = units
        .iter()
        .copied()
        .filter(|u| modules.units.contains(u))
        .collect();
    expected.sort_unstable();
    while answering != expected {
        match next_event(&mut events).await {
            Event::UnitAnswering { unit } => {
                answering.push(unit);
                answering.sort_unstable();
            }
            other => panic!("unexpected {other:?} before every unit answered"),
        }
    }
    (sim, handle, events)
}

/// Every event within `window`.
async fn events_within(events: &mut Receiver<Event>, window: Duration) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + window;
    let mut seen = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        seen.push(event);
    }
    seen
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
        blink: Blink::Fast,
    }
}

fn green() -> LampState {
    LampState::On {
        colour: LampColour::Green,
        digits: None,
        blink: Blink::Steady,
    }
}

#[tokio::test]
async fn lights_land_in_the_simulator_registers() {
    let (sim, handle, _events) = start(&[1, 2]).await;
    handle.set(1, 3, red_12()).unwrap();
    handle.set(2, 0, green()).unwrap();
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
    handle.set(1, 3, LampState::Off).unwrap();
    wait_until(|| sim.panel().lamp(1, 3) == Some(Lamp::default())).await;
    // Only diffs are written: setting the same state again writes nothing.
    let before = sim.panel().lamp_log().len();
    handle.set(2, 0, green()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sim.panel().lamp_log().len(), before);
}

#[tokio::test]
async fn written_answers_once_the_states_set_before_it_are_on_the_device() {
    let (sim, handle, _events) = start(&[1]).await;
    handle.set(1, 4, red_12()).unwrap();
    handle.set(1, 5, green()).unwrap();
    assert!(handle.written().await);
    // No waiting: the registers hold both states the moment `written` answers.
    assert_eq!(
        (
            sim.panel().lamp(1, 4),
            sim.panel().lamp(1, 5).map(|l| l.colour)
        ),
        (
            Some(Lamp {
                colour: 3,
                digits: 12,
                blink: 1,
            }),
            Some(1)
        )
    );
}

#[tokio::test]
async fn a_watchdog_register_counts_up_while_the_driver_runs_and_stops_when_it_goes() {
    let sim = SimModbus::bind("127.0.0.1:0").await.unwrap();
    // The module's 16th position stands in for its watchdog register (hr:60); the profile
    // drives the other 15.
    let text = include_str!("../profiles/sim-line.toml")
        .replace("positions = 16", "positions = 15")
        + "\n[watchdog]\naddress = \"hr:60\"\nperiod_ms = 20\n";
    let profile = Profile::from_toml(&text).unwrap();
    let mut cfg = config(&sim, &[]);
    cfg.units = BTreeMap::from([(1, profile)]);
    let (handle, _events) = driver::spawn(cfg);
    let beat = || sim.panel().lamp(1, 15).map_or(0, |l| l.colour);
    wait_until(|| beat() >= 3).await;
    let seen = beat();
    wait_until(|| beat() > seen).await;
    // Gone: the heartbeat stops, so the module's own timeout would blank it.
    drop(handle);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let last = beat();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(beat(), last, "no heartbeat once the driver has stopped");
}

#[tokio::test]
async fn reconnects_and_reasserts_within_one_second_after_a_device_restart() {
    let (mut sim, handle, mut events) = start(&[1]).await;
    handle.set(1, 5, red_12()).unwrap();
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
async fn a_refusing_unit_is_reported_once_per_request_and_the_connection_kept() {
    // Unit 9 is not on the simulator: it answers every request with an exception, the link
    // stays up. Its button read is refused at every poll (10 ms) and its lamp write once.
    let sim = SimModbus::bind("127.0.0.1:0").await.unwrap();
    let (handle, mut events) = driver::spawn(config(&sim, &[1, 9]));
    handle.set(9, 0, red_12()).unwrap();
    let seen = events_within(&mut events, Duration::from_millis(400)).await;
    let refusals: Vec<(u8, bool, ExceptionCode)> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Exception {
                unit,
                request,
                code,
            } => Some((*unit, request.starts_with("write"), *code)),
            _ => None,
        })
        .collect();
    let gateway = ExceptionCode::GatewayTargetDevice;
    let mut sorted = refusals.clone();
    sorted.sort_by_key(|r| r.1);
    assert_eq!(
        sorted,
        vec![(9, false, gateway), (9, true, gateway)],
        "one report per refused request, not one per poll: {seen:?}"
    );
    assert_eq!(
        seen.iter()
            .filter(|e| matches!(e, Event::UnitAnswering { .. }))
            .collect::<Vec<_>>(),
        vec![&Event::UnitAnswering { unit: 1 }],
        "unit 1 answers, unit 9 never does"
    );
    assert!(!seen.iter().any(|e| matches!(e, Event::Disconnected { .. })));
    // Unit 1 on the same connection still works.
    handle.set(1, 0, red_12()).unwrap();
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
async fn a_profile_wider_than_the_module_shows_as_a_refusing_unit_while_its_lamps_still_light() {
    // The profile has 16 positions, the module 8: the button read runs past its registers.
    let modules = SimModbusConfig {
        units: vec![1],
        positions: 8,
    };
    let sim = SimModbus::bind_with("127.0.0.1:0", modules).await.unwrap();
    let (handle, mut events) = driver::spawn(config(&sim, &[1]));
    handle.set(1, 2, green()).unwrap();
    wait_until(|| {
        sim.panel().lamp(1, 2)
            == Some(Lamp {
                colour: 1,
                digits: 0,
                blink: 0,
            })
    })
    .await;
    let seen = events_within(&mut events, Duration::from_millis(300)).await;
    let refusals: Vec<&Event> = seen
        .iter()
        .filter(|e| matches!(e, Event::Exception { .. }))
        .collect();
    assert_eq!(refusals.len(), 1, "{seen:?}");
    assert!(
        matches!(refusals[0], Event::Exception { unit: 1, request, code: ExceptionCode::IllegalDataAddress } if request.starts_with("read")),
        "{refusals:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::UnitAnswering { .. })),
        "a unit whose button read is refused is not answering: {seen:?}"
    );
}

#[tokio::test]
async fn refuses_what_the_profile_cannot_show() {
    let (_sim, handle, _events) = start(&[1]).await;
    assert!(handle.set(3, 0, LampState::Off).is_err());
    assert!(handle.set(1, 16, LampState::Off).is_err());
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
    handle.set(1, 0, red_12()).unwrap();
}

/// A device that takes the connection and never answers: every request hangs until its timeout.
async fn stuck_device() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    (addr, held)
}

#[tokio::test]
async fn a_stuck_device_holds_up_nobody_who_sets_its_lamps() {
    let (sim, good, _events) = start(&[1]).await;
    let (stuck_addr, _held) = stuck_device().await;
    let mut stuck_config = config(&sim, &[1]);
    stuck_config.endpoint = stuck_addr;
    // Its first write hangs for the whole test, and its queue holds one caller.
    stuck_config.request_timeout = Duration::from_secs(3600);
    stuck_config.command_capacity = 1;
    let (stuck, mut stuck_events) = driver::spawn(stuck_config);
    assert_eq!(next_event(&mut stuck_events).await, Event::Connected);
    // Far more sets than any queue of the stuck device holds, over and over the same lamps:
    // each returns at once, and only the latest state per lamp waits.
    for round in 0..500u16 {
        for position in 0..8 {
            let state = if round % 2 == 0 { green() } else { red_12() };
            stuck.set(1, position, state).unwrap();
        }
    }
    good.set(1, 2, green()).unwrap();
    wait_until(|| {
        sim.panel().lamp(1, 2)
            == Some(Lamp {
                colour: 1,
                digits: 0,
                blink: 0,
            })
    })
    .await;
}
