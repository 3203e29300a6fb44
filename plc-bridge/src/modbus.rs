//! Modbus TCP: addresses, device profiles (register maps as data), the driver task, and the
//! commissioning probe.
pub mod address;
pub mod driver;
pub mod probe;
pub mod profile;
