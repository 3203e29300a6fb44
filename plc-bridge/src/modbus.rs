//! Modbus TCP: addresses, device profiles (register maps as data) and the driver task.
pub mod address;
pub mod driver;
pub mod profile;
