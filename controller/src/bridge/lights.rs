//! Committed actions to the plant: device intents to lamp states, backfill requests to the
//! source that can answer them. Actions already committed when the router wakes go out as one
//! batch, each lamp in its last state, so a lamp lit and put out again within it never shows.
//! Setting a lamp never waits on its device (the driver keeps the latest state per lamp), so
//! one stuck device cannot hold up the lamps of the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use takt_core::{Action, DeviceIntent, Input, PointId};
use takt_plc_bridge::modbus::driver;
use takt_plc_bridge::modbus::profile::LampState;
use takt_plc_bridge::opcua::SourceHandle;
use tokio::sync::broadcast;

use crate::config::plant_io::{Lamp, LampMap};
use crate::runtime::writer::Handle;
use takt_core::PickingInput;

pub(super) struct Router {
    pub(super) lamps: Arc<LampMap>,
    pub(super) drivers: BTreeMap<String, driver::Handle>,
    pub(super) sources: Arc<BTreeMap<PointId, SourceHandle>>,
}

impl Router {
    pub(super) async fn run(self, mut actions: broadcast::Receiver<Action>, writer: Handle) {
        loop {
            let mut batch = match actions.recv().await {
                Ok(action) => vec![action],
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.fell_behind(missed, &writer).await;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            // Whatever else is committed already goes out with it: a lamp lit and put out
            // again within it (a task created and cancelled in one commit) is never shown.
            loop {
                match actions.try_recv() {
                    Ok(action) => batch.push(action),
                    Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                        self.fell_behind(missed, &writer).await;
                    }
                    Err(_) => break,
                }
            }
            self.carry_out(batch).await;
        }
    }

    /// Some intents are gone; the core still knows what every station should show, so ask
    /// it to light every station again (journaled, like any input).
    async fn fell_behind(&self, missed: u64, writer: &Handle) {
        tracing::error!(missed, "light router fell behind; relighting every station");
        relight(writer, &self.lamps).await;
    }

    async fn carry_out(&self, batch: Vec<Action>) {
        let mut lamps = LampBatch::default();
        for action in batch {
            match action {
                Action::Device(intent) => lamps.add(&self.lamps, intent),
                Action::Backfill {
                    line,
                    point,
                    from,
                    to,
                } => {
                    if let Some(source) = self.sources.get(&PointId::new(line, point)) {
                        source.backfill(from.value(), to.value()).await;
                    }
                }
                Action::Stream(_) | Action::Alarm(_) => {}
            }
        }
        for (lamp, state) in lamps.0 {
            self.set(&lamp, state);
        }
    }

    fn set(&self, lamp: &Lamp, state: LampState) {
        let Some(driver) = self.drivers.get(&lamp.device) else {
            return;
        };
        if let Err(e) = driver.set(lamp.unit, lamp.position, state) {
            tracing::error!(device = %lamp.device, unit = lamp.unit, position = lamp.position, "lamp: {e}");
        }
    }
}

/// The last state of each lamp the intents of one batch name, in the order the lamps were
/// first named.
#[derive(Debug, Default)]
struct LampBatch(Vec<(Lamp, LampState)>);

impl LampBatch {
    fn add(&mut self, map: &LampMap, intent: DeviceIntent) {
        match intent {
            DeviceIntent::Light {
                station,
                target,
                colour,
                digits,
                blink,
            } => {
                let state = LampState::On {
                    colour,
                    digits: digits.map(|d| u16::try_from(d).unwrap_or(u16::MAX)),
                    blink,
                };
                if let Some(lamp) = map.lamp(&station, &target) {
                    self.set(lamp, state);
                }
            }
            DeviceIntent::Off { station, target } => {
                if let Some(lamp) = map.lamp(&station, &target) {
                    self.set(lamp, LampState::Off);
                }
            }
            DeviceIntent::AllOff { station } => {
                for lamp in map.station_lamps(&station) {
                    self.set(lamp, LampState::Off);
                }
            }
        }
    }

    fn set(&mut self, lamp: &Lamp, state: LampState) {
        match self.0.iter_mut().find(|(l, _)| l == lamp) {
            Some((_, last)) => *last = state,
            None => self.0.push((lamp.clone(), state)),
        }
    }
}

/// Asks the core to light every station's current task again (journaled, like any input):
/// at start, when the drivers know nothing, and after the router missed intents.
pub(super) async fn relight(writer: &Handle, lamps: &LampMap) {
    for station in lamps.stations() {
        let _ = writer
            .enqueue(Input::Picking(PickingInput::ResetStation { station }))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use takt_core::config::{Blink, LampColour};
    use takt_core::model::LightTarget;

    use super::*;

    fn example_lamps() -> LampMap {
        let text = include_str!("../../../config/example.toml");
        let cfg = crate::config::parse(std::path::Path::new("config/example.toml"), text)
            .expect("the example loads");
        LampMap::build(&cfg.devices, &cfg.plant.config)
    }

    fn light(bin: &str) -> DeviceIntent {
        DeviceIntent::Light {
            station: "PS-DOORS".into(),
            target: LightTarget::Bin(bin.into()),
            colour: LampColour::Green,
            digits: Some(1),
            blink: Blink::Steady,
        }
    }

    #[test]
    fn a_lamp_lit_and_put_out_in_one_batch_is_only_put_out() {
        let map = example_lamps();
        let mut batch = LampBatch::default();
        batch.add(&map, light("D01"));
        batch.add(&map, light("D02"));
        batch.add(
            &map,
            DeviceIntent::Off {
                station: "PS-DOORS".into(),
                target: LightTarget::Bin("D01".into()),
            },
        );
        let d01 = map
            .lamp("PS-DOORS", &LightTarget::Bin("D01".into()))
            .expect("the example maps the bin")
            .clone();
        let d02 = map
            .lamp("PS-DOORS", &LightTarget::Bin("D02".into()))
            .expect("the example maps the bin")
            .clone();
        assert_eq!(batch.0.len(), 2, "one state per lamp: {:?}", batch.0);
        assert_eq!(batch.0[0], (d01, LampState::Off));
        assert!(matches!(batch.0[1], (ref l, LampState::On { .. }) if *l == d02));
        // Every lamp of the station out: the last word for each, D02 included.
        batch.add(
            &map,
            DeviceIntent::AllOff {
                station: "PS-DOORS".into(),
            },
        );
        assert!(batch.0.iter().all(|(_, s)| *s == LampState::Off));
        assert_eq!(batch.0.len(), map.station_lamps("PS-DOORS").count());
    }
}
