//! Driver events to journal inputs: presses become `Press`, connection changes become
//! `DeviceOffline` conditions. Journal first: nothing reacts to a press until it is durable.

use std::sync::Arc;

use takt_core::{AlarmKind, Input};
use takt_plc_bridge::modbus::driver::Event;
use tokio::sync::mpsc;

use super::health::Health;
use crate::config::plant_io::{Lamp, LampMap};
use crate::runtime::writer::{Handle, SubmitError};

pub(super) async fn forward_events(
    device: String,
    mut events: mpsc::Receiver<Event>,
    writer: Handle,
    lamps: Arc<LampMap>,
    health: Arc<Health>,
) {
    while let Some(event) = events.recv().await {
        let input = match event {
            Event::ButtonPressed { unit, position } => {
                let lamp = Lamp {
                    device: device.clone(),
                    unit,
                    position,
                };
                match lamps.target(&lamp) {
                    Some((station, target)) => Input::Press {
                        station: station.clone(),
                        button: target.clone(),
                    },
                    None => {
                        tracing::warn!(%device, unit, position, "press on a position no station uses");
                        continue;
                    }
                }
            }
            Event::Connected => {
                health.device_changed(&device, true, None);
                condition(&device, false, "connected".into())
            }
            Event::Disconnected { cause } => {
                health.device_changed(&device, false, Some(cause.clone()));
                condition(&device, true, cause)
            }
            Event::Exception {
                unit,
                request,
                code,
            } => {
                let message = format!("unit {unit} refused {request}: {code:?}");
                tracing::warn!(%device, "{message}");
                health.device_exception(&device, message);
                continue;
            }
        };
        // Waits for the commit: presses are taken in order, each durable before the next.
        match writer.submit(input).await {
            Ok(_) => {}
            Err(SubmitError::Closed) => return,
            Err(e) => tracing::error!(%device, "journal refused a device input: {e}"),
        }
    }
}

fn condition(device: &str, active: bool, message: String) -> Input {
    Input::Condition {
        alarm: AlarmKind::DeviceOffline,
        subject: device.to_owned(),
        active,
        message,
    }
}
