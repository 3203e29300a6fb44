//! Driver events to journal inputs: presses become `Press`, connection changes become
//! `DeviceOffline` conditions and refusing units `DeviceDegraded` conditions (subject
//! `device/unit`). Journal first: nothing reacts to a press until it is durable.
//!
//! Conditions are journaled when they change, not at every reconnect attempt: the first state
//! learned after a start is journaled (it may clear what an earlier run left active), then
//! only changes. Every failed attempt still shows on `/status`.

use std::collections::BTreeMap;
use std::sync::Arc;

use takt_core::{AlarmKind, Input};
use takt_plc_bridge::modbus::driver::Event;
use tokio::sync::mpsc;

use super::health::Health;
use crate::config::plant_io::{Lamp, LampMap};
use crate::runtime::writer::{Handle, SubmitError};
use takt_core::{AlarmInput, PickingInput};

pub(super) async fn forward_events(
    device: String,
    mut events: mpsc::Receiver<Event>,
    writer: Handle,
    lamps: Arc<LampMap>,
    health: Arc<Health>,
) {
    let mut conditions = Conditions::default();
    while let Some(event) = events.recv().await {
        let input = match event {
            Event::ButtonPressed { unit, position } => {
                let lamp = Lamp {
                    device: device.clone(),
                    unit,
                    position,
                };
                match lamps.target(&lamp) {
                    Some((station, target)) => Some(Input::Picking(PickingInput::Press {
                        station: station.clone(),
                        button: target.clone(),
                    })),
                    None => {
                        tracing::warn!(%device, unit, position, "press on a position no station uses");
                        None
                    }
                }
            }
            Event::Connected => {
                health.device_changed(&device, true, None);
                conditions.change(AlarmKind::DeviceOffline, &device, false, "connected".into())
            }
            Event::Disconnected { cause } => {
                health.device_changed(&device, false, Some(cause.clone()));
                let input = conditions.change(AlarmKind::DeviceOffline, &device, true, cause);
                if let Some(Input::Alarms(AlarmInput::Condition { message, .. })) = &input {
                    tracing::warn!(%device, "device offline: {message}; retrying with backoff");
                }
                input
            }
            Event::Exception {
                unit,
                request,
                code,
            } => {
                let message = format!("unit {unit} refused {request}: {code:?}");
                tracing::warn!(%device, "{message}");
                health.unit_refusing(&device, unit, Some(message.clone()));
                let subject = format!("{device}/{unit}");
                conditions.change(AlarmKind::DeviceDegraded, &subject, true, message)
            }
            Event::UnitAnswering { unit } => {
                health.unit_refusing(&device, unit, None);
                let subject = format!("{device}/{unit}");
                let message = format!("unit {unit} answers every request");
                conditions.change(AlarmKind::DeviceDegraded, &subject, false, message)
            }
        };
        let Some(input) = input else { continue };
        // Waits for the commit: presses are taken in order, each durable before the next.
        match writer.submit(input).await {
            Ok(_) => {}
            Err(SubmitError::Closed) => return,
            Err(e) => tracing::error!(%device, "journal refused a device input: {e}"),
        }
    }
}

/// The last journaled state of each condition this forwarder reports.
#[derive(Debug, Default)]
struct Conditions(BTreeMap<(AlarmKind, String), bool>);

impl Conditions {
    /// The input to journal if `active` changes what was last journaled (or nothing was).
    fn change(
        &mut self,
        alarm: AlarmKind,
        subject: &str,
        active: bool,
        message: String,
    ) -> Option<Input> {
        let last = self.0.insert((alarm, subject.to_owned()), active);
        (last != Some(active)).then(|| {
            Input::Alarms(AlarmInput::Condition {
                alarm,
                subject: subject.to_owned(),
                active,
                message,
            })
        })
    }
}
