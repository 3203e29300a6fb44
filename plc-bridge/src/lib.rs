//! # takt-plc-bridge
//!
//! Protocol adapters of Takt: they speak domain types to the controller and protocol to the
//! devices.
//!
//! - [`modbus`]: Modbus TCP device drivers — register addresses ([`modbus::address`]), device
//!   profiles as configuration ([`modbus::profile`]) and the connection-owning driver task
//!   ([`modbus::driver`]).
//! - [`opcua`]: OPC UA broadcast sources — handshake and FIFO layouts in the plant's own
//!   NodeIds, acknowledged only after the journal holds the record.
pub mod modbus;
pub mod opcua;
