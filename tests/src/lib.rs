//! # takt-tests
//!
//! End-to-end tests across the crates: the controller and sim-line over real sockets, checked
//! against sim-line's ground truth. They live in `tests/tests/` once the controller is wired to
//! its protocol adapters (issue 3); per-crate tests live beside their crates.
