//! The controller's side of plc-bridge: starts the configured OPC UA sources and Modbus
//! drivers and wires them to the journal.
//!
//! Every input from the plant goes through the journal before anything acts on it:
//! - broadcasts, line state and source conditions: the source waits for durability (and only
//!   then acknowledges to the PLC) — [`JournalSink`];
//! - button presses and device health: journaled as `Press` / `Condition` inputs — [`devices`];
//! - device intents and backfill requests come out of the writer *after* their commit and are
//!   turned into lamp states and source requests — [`lights`].

mod devices;
pub mod health;
mod lights;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use takt_core::{Input, PointId};
use takt_plc_bridge::modbus::driver::{self, DriverConfig};
use takt_plc_bridge::opcua::{self, InputSink, SinkError, SourceHandle};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::config::plant_io::{LampMap, OfflineLamps, resolve_profile};
use crate::runtime::writer::Handle;
use health::Health;

/// Hands inputs to the journal writer and resolves once they are durable.
#[derive(Debug, Clone)]
pub struct JournalSink(pub Handle);

impl InputSink for JournalSink {
    async fn deliver(&self, input: Input) -> Result<(), SinkError> {
        self.0
            .submit(input)
            .await
            .map(|_| ())
            .map_err(|e| SinkError(e.to_string()))
    }

    /// Queued together, so they stage into the same commit; then awaited in order.
    async fn deliver_all(&self, inputs: Vec<Input>) -> Result<(), SinkError> {
        let mut pending = Vec::with_capacity(inputs.len());
        for input in inputs {
            pending.push(self.0.enqueue(input).await);
        }
        for queued in pending {
            queued
                .map_err(|e| SinkError(e.to_string()))?
                .durable()
                .await
                .map_err(|e| SinkError(e.to_string()))?;
        }
        Ok(())
    }
}

/// The running sources and drivers.
#[derive(Debug)]
pub struct Bridge {
    sources: Arc<BTreeMap<PointId, SourceHandle>>,
    tasks: Vec<JoinHandle<()>>,
    health: Arc<Health>,
    /// Each device's driver and what its lamps show after a stop.
    drivers: BTreeMap<String, (driver::Handle, OfflineLamps)>,
    lamps: Arc<LampMap>,
}

/// How long a controlled stop waits for each device to take its offline lamps.
const OFFLINE_LAMPS_WAIT: Duration = Duration::from_secs(2);

impl Bridge {
    /// Starts everything the configuration names. Returns once started, not once connected:
    /// devices and servers that are down are retried in the background and show as alarms.
    pub async fn start(cfg: &Config, writer: Handle) -> anyhow::Result<Self> {
        let health = Arc::new(Health::default());
        let sink = Arc::new(JournalSink(writer.clone()));
        let mut sources = BTreeMap::new();
        for source in &cfg.sources {
            let key = PointId::new(&source.line, &source.point);
            let handle = opcua::spawn(source.clone(), sink.clone())
                .with_context(|| format!("OPC UA source {key}"))?;
            health.add_source(key.to_string(), &source.endpoint, handle.watch());
            sources.insert(key, handle);
        }
        let sources = Arc::new(sources);
        let lamps = Arc::new(LampMap::build(&cfg.devices, &cfg.plant.config));
        let config_dir = cfg.path.parent().unwrap_or(Path::new("."));
        let mut drivers = BTreeMap::new();
        let mut offline = BTreeMap::new();
        let mut tasks = Vec::new();
        for device in &cfg.devices {
            let endpoint: SocketAddr = device
                .endpoint
                .parse()
                .with_context(|| format!("device {} endpoint", device.id))?;
            let mut units = BTreeMap::new();
            for unit in &device.units {
                let profile = resolve_profile(&unit.profile, config_dir)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("device {} unit {}", device.id, unit.unit))?;
                units.insert(unit.unit, profile);
            }
            let mut config = DriverConfig::new(endpoint, units);
            config.poll_interval = Duration::from_millis(device.poll_ms);
            config.debounce_polls = device.debounce_polls;
            config.request_timeout = Duration::from_millis(device.request_timeout_ms);
            let (driver, events) = driver::spawn(config);
            health.add_device(&device.id, &device.endpoint);
            tasks.push(tokio::spawn(devices::forward_events(
                device.id.clone(),
                events,
                writer.clone(),
                lamps.clone(),
                health.clone(),
            )));
            offline.insert(device.id.clone(), (driver.clone(), device.offline_lamps));
            drivers.insert(device.id.clone(), driver);
        }
        let router = lights::Router {
            lamps: lamps.clone(),
            drivers,
            sources: sources.clone(),
        };
        // Subscribed before the lights are asked for, so no intent falls in between.
        let actions = writer.subscribe();
        tasks.push(tokio::spawn(router.run(actions, writer.clone())));
        lights::relight(&writer, &lamps).await;
        Ok(Self {
            sources,
            tasks,
            health,
            drivers: offline,
            lamps,
        })
    }

    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Stops sources (closing their sessions) and drivers; the lamps are left in each
    /// device's offline state.
    pub async fn stop(self) {
        // Awaited so the router's share of the sources is dropped before they are unwrapped,
        // and so no intent reaches a lamp after its offline state.
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        let mut setting = Vec::new();
        for (device, (driver, offline)) in &self.drivers {
            let Some(state) = offline.state() else {
                continue;
            };
            for lamp in self.lamps.device_lamps(device) {
                let _ = driver.set(lamp.unit, lamp.position, state);
            }
            setting.push((device, driver.written()));
        }
        for (device, written) in setting {
            if !matches!(
                tokio::time::timeout(OFFLINE_LAMPS_WAIT, written).await,
                Ok(true)
            ) {
                tracing::warn!(%device, "device did not take its offline lamps before the stop");
            }
        }
        if let Ok(sources) = Arc::try_unwrap(self.sources) {
            for (_, source) in sources {
                source.stop().await;
            }
        }
    }
}
