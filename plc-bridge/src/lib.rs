//! # takt-plc-bridge
//!
//! Protocol adapters of Takt: they speak domain types to the controller and protocol to the
//! devices.
//!
//! - [`modbus`]: Modbus TCP device drivers — register addresses ([`modbus::address`]), device
//!   profiles as configuration ([`modbus::profile`]) and the connection-owning driver task
//!   ([`modbus::driver`]).
pub mod modbus;
