//! # takt-core
//!
//! The sans-IO heart of Takt. Broadcast records, button presses and line events go in as
//! [`Input`]s together with the time they happened; sequence calls, rack and task changes,
//! device intents, stream events and alarm changes come out as [`Action`]s and [`Change`]s.
//!
//! Architecture invariant: this crate does no IO and reads no clock. It depends on no async
//! runtime, database, web or protocol crate (`cargo tree -p takt-core -e normal` shows it), and
//! every map is ordered, so the same inputs at the same times always give the same outputs. That
//! is what makes the journal a faithful flight recorder: replaying it rebuilds the state exactly.

pub mod alarm;
pub mod config;
mod engine;
pub mod forecast;
pub mod identity;
pub mod ids;
pub mod io;
pub mod model;
pub mod partners;
pub mod picking;
pub mod record;
pub mod seq;
pub mod sequencing;
pub mod suppliers;
pub mod tracker;
mod variant;
pub mod vin;

pub use alarm::{Alarm, AlarmKey, AlarmKind, AlarmState};
pub use config::{ConfigIndex, ConfigIssue, PlantConfig};
pub use engine::{Core, State};
pub use ids::PointId;
pub use io::{
    Action, AlarmInput, Change, Clock, DeviceIntent, IdentityInput, Input, OutboxEvent, Outcome,
    PickingInput, SequencingInput, StreamEvent, SupplierInput,
};
pub use record::{RawRecord, Record};
pub use seq::SeqNo;
pub use vin::Vin;
