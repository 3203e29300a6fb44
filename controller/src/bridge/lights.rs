//! Committed actions to the plant: device intents to lamp states, backfill requests to the
//! source that can answer them.

use std::collections::BTreeMap;
use std::sync::Arc;

use takt_core::{Action, DeviceIntent, Input};
use takt_plc_bridge::modbus::driver;
use takt_plc_bridge::modbus::profile::LampState;
use takt_plc_bridge::opcua::SourceHandle;
use tokio::sync::broadcast;

use crate::config::plant_io::{Lamp, LampMap};
use crate::runtime::writer::Handle;

pub(super) struct Router {
    pub(super) lamps: Arc<LampMap>,
    pub(super) drivers: BTreeMap<String, driver::Handle>,
    pub(super) sources: Arc<BTreeMap<(String, String), SourceHandle>>,
}

impl Router {
    pub(super) async fn run(self, mut actions: broadcast::Receiver<Action>, writer: Handle) {
        loop {
            match actions.recv().await {
                Ok(action) => self.carry_out(action).await,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    // Some intents are gone; the core still knows what every station should
                    // show, so ask it to light every station again (journaled, like any input).
                    tracing::error!(missed, "light router fell behind; relighting every station");
                    relight(&writer, &self.lamps).await;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn carry_out(&self, action: Action) {
        match action {
            Action::Device(DeviceIntent::Light {
                station,
                target,
                colour,
                digits,
                blink,
            }) => {
                let state = LampState::On {
                    colour,
                    digits: digits.map(|d| u16::try_from(d).unwrap_or(u16::MAX)),
                    blink,
                };
                if let Some(lamp) = self.lamps.lamp(&station, &target) {
                    self.set(lamp, state).await;
                }
            }
            Action::Device(DeviceIntent::Off { station, target }) => {
                if let Some(lamp) = self.lamps.lamp(&station, &target) {
                    self.set(lamp, LampState::Off).await;
                }
            }
            Action::Device(DeviceIntent::AllOff { station }) => {
                for lamp in self.lamps.station_lamps(&station) {
                    self.set(lamp, LampState::Off).await;
                }
            }
            Action::Backfill {
                line,
                point,
                from,
                to,
            } => {
                if let Some(source) = self.sources.get(&(line, point)) {
                    source.backfill(from.value(), to.value()).await;
                }
            }
            Action::Stream(_) | Action::Alarm(_) => {}
        }
    }

    async fn set(&self, lamp: &Lamp, state: LampState) {
        let Some(driver) = self.drivers.get(&lamp.device) else {
            return;
        };
        if let Err(e) = driver.set(lamp.unit, lamp.position, state).await {
            tracing::error!(device = %lamp.device, unit = lamp.unit, position = lamp.position, "lamp: {e}");
        }
    }
}

/// Asks the core to light every station's current task again (journaled, like any input):
/// at start, when the drivers know nothing, and after the router missed intents.
pub(super) async fn relight(writer: &Handle, lamps: &LampMap) {
    for station in lamps.stations() {
        let _ = writer.enqueue(Input::ResetStation { station }).await;
    }
}
