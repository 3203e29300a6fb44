//! # takt-sim-line
//!
//! A plant in a box: the demo, the test fixture and the benchmark load of Takt.
//!
//! - [`scenario`]: what the simulated line does — vehicles with a model and option mix, line
//!   stops and faults — planned deterministically from a seed against the plant configuration.
//! - [`modbus`]: a Modbus TCP server behaving like pick-light modules (shared state, several
//!   unit ids, stop/restart on the same port, a log of every lamp write).
//! - [`opcua`]: an OPC UA server broadcasting vehicles like a line's PLC (handshake or FIFO
//!   layout, secure endpoint, dropped sessions, stop/restart on the same port).
//! - [`floor`]: the floor file — where the servers listen, which modules exist, who operates
//!   them.
//! - [`operators`]: simulated operators pressing what lights up, with wrong picks.
//! - [`player`]: plays a planned scenario on a bound floor, faults included.
//! - [`truth`]: the ground-truth log (JSON lines) a run is checked against.
pub mod floor;
pub mod modbus;
pub mod opcua;
pub mod operators;
pub mod player;
pub mod scenario;
pub mod truth;

/// Locks a simulator's shared state. A panic while it was held leaves plain values behind,
/// still usable, so poisoning is ignored.
fn lock<T>(state: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
