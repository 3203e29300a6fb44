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
pub mod modbus;
pub mod opcua;
pub mod scenario;

/// Locks a simulator's shared state. A panic while it was held leaves plain values behind,
/// still usable, so poisoning is ignored.
fn lock<T>(state: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
