//! OPC UA broadcast sources: a line server's broadcast, read in the plant's own node layout,
//! into the journal.
//!
//! - [`config`]: what the file says — endpoint, security, user, NodeIds, layout.
//! - [`decode`]: OPC UA values to record fields, whatever types the PLC uses.
//! - `nodes`: the layout resolved on a server — what one Read asks for and how its values
//!   become records (slot nodes, field arrays with index ranges, a ring's write index).
//! - `connection`: one session, opened fresh after every loss (see there why).
//! - [`NoDelay`]: the TCP connector every session uses, Nagle's algorithm off.
//! - [`probe`]: the commissioning probe — every configured node read once, against its layout.
//! - [`source`]: the task — handshake and FIFO layouts, acknowledgement after durability,
//!   catch-up after reconnect, conditions for alarms.
pub mod config;
mod connection;
pub mod decode;
mod nodelay;
mod nodes;
pub mod probe;
pub mod source;

pub use config::SourceConfig;
pub use connection::LinkError;
pub use nodelay::{NoDelay, NoDelayConnector};
pub use source::{InputSink, SinkError, SourceHandle, SourceStatus, spawn};
