//! sim-line's Modbus server through tokio-modbus's client over loopback.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use takt_sim_line::modbus::{Lamp, SimModbus};
use tokio_modbus::client::{Reader, Writer, tcp};
use tokio_modbus::{ExceptionCode, Slave};

#[tokio::test]
async fn state_is_shared_across_connections_and_logged() {
    let sim = SimModbus::bind("127.0.0.1:0").await.unwrap();
    let mut a = tcp::connect_slave(sim.local_addr(), Slave(1))
        .await
        .unwrap();
    let mut b = tcp::connect_slave(sim.local_addr(), Slave(1))
        .await
        .unwrap();
    a.write_multiple_registers(4, &[2, 7, 1])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        b.read_holding_registers(4, 3).await.unwrap().unwrap(),
        vec![2, 7, 1]
    );
    assert_eq!(
        sim.panel().lamp(1, 1),
        Some(Lamp {
            colour: 2,
            digits: 7,
            blink: 1
        })
    );
    let log = sim.panel().lamp_log();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].unit, log[0].position), (1, 1));
}

#[tokio::test]
async fn unknown_unit_address_and_function_are_exceptions() {
    let sim = SimModbus::bind("127.0.0.1:0").await.unwrap();
    let mut unknown_unit = tcp::connect_slave(sim.local_addr(), Slave(77))
        .await
        .unwrap();
    assert_eq!(
        unknown_unit.read_holding_registers(0, 1).await.unwrap(),
        Err(ExceptionCode::GatewayTargetDevice)
    );
    let mut ctx = tcp::connect_slave(sim.local_addr(), Slave(1))
        .await
        .unwrap();
    assert_eq!(
        ctx.read_holding_registers(63, 2).await.unwrap(),
        Err(ExceptionCode::IllegalDataAddress)
    );
    assert_eq!(
        ctx.read_discrete_inputs(16, 1).await.unwrap(),
        Err(ExceptionCode::IllegalDataAddress)
    );
    assert_eq!(
        ctx.read_coils(0, 1).await.unwrap(),
        Err(ExceptionCode::IllegalFunction)
    );
    // The connection survives exceptions.
    assert_eq!(ctx.read_holding_registers(0, 1).await.unwrap(), Ok(vec![0]));
}

#[tokio::test]
async fn buttons_and_restart_on_the_same_port() {
    let mut sim = SimModbus::bind("127.0.0.1:0").await.unwrap();
    let addr = sim.local_addr();
    sim.panel().set_button(2, 3, true);
    let mut ctx = tcp::connect_slave(addr, Slave(2)).await.unwrap();
    let bits = ctx.read_discrete_inputs(0, 16).await.unwrap().unwrap();
    assert!(bits[3] && !bits[2]);
    sim.stop().await;
    assert!(
        ctx.read_discrete_inputs(0, 1).await.is_err(),
        "connection dropped"
    );
    sim.restart().await.unwrap();
    assert_eq!(sim.local_addr(), addr);
    let mut ctx = tcp::connect_slave(addr, Slave(2)).await.unwrap();
    sim.panel().press(2, 3, Duration::from_millis(1)).await;
    let bits = ctx.read_discrete_inputs(0, 16).await.unwrap().unwrap();
    assert!(!bits[3], "released after the press");
}
