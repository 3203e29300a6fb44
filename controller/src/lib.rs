pub mod alarm_log;
pub mod bridge;
pub mod config;
pub mod http;
pub mod progress;
pub mod runtime;
pub mod status;
pub mod store;
