//! # takt-sim-line
//!
//! A plant in a box: the demo, the test fixture and the benchmark load of Takt.
//!
//! - [`scenario`]: what the simulated line does — vehicles with a model and option mix, line
//!   stops and faults — planned deterministically from a seed against the plant configuration.
//! - [`modbus`]: a Modbus TCP server behaving like pick-light modules (shared state, several
//!   unit ids, stop/restart on the same port, a log of every lamp write).
pub mod modbus;
pub mod scenario;
