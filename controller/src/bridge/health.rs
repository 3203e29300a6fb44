//! Health of the plant connections, for the status endpoint: OPC UA sources report through
//! their own status watch; Modbus devices through their driver events.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use takt_plc_bridge::opcua::SourceStatus;
use tokio::sync::watch;

/// One connection as the status endpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionHealth {
    /// `opcua` or `modbus`.
    pub kind: &'static str,
    pub endpoint: String,
    pub connected: bool,
    pub last_error: Option<String>,
    /// OPC UA: records delivered since start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u64>,
    /// Modbus: units that refuse requests for configured addresses, with the last refusal.
    /// A connected device with refusing units is degraded: some lamps or buttons do nothing.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub refusing_units: BTreeMap<u8, String>,
}

#[derive(Debug, Default)]
pub struct Health {
    sources: Mutex<Vec<(String, String, watch::Receiver<SourceStatus>)>>,
    devices: Mutex<BTreeMap<String, ConnectionHealth>>,
}

impl Health {
    pub(super) fn add_source(
        &self,
        name: String,
        endpoint: &str,
        status: watch::Receiver<SourceStatus>,
    ) {
        if let Ok(mut sources) = self.sources.lock() {
            sources.push((name, endpoint.to_owned(), status));
        }
    }

    pub(super) fn add_device(&self, id: &str, endpoint: &str) {
        if let Ok(mut devices) = self.devices.lock() {
            devices.insert(
                id.to_owned(),
                ConnectionHealth {
                    kind: "modbus",
                    endpoint: endpoint.to_owned(),
                    connected: false,
                    last_error: None,
                    delivered: None,
                    refusing_units: BTreeMap::new(),
                },
            );
        }
    }

    pub(super) fn device_changed(&self, id: &str, connected: bool, error: Option<String>) {
        if let Ok(mut devices) = self.devices.lock()
            && let Some(device) = devices.get_mut(id)
        {
            device.connected = connected;
            if error.is_some() {
                device.last_error = error;
            }
        }
    }

    /// A unit refused a request (`Some(message)`) or answers everything again (`None`).
    pub(super) fn unit_refusing(&self, id: &str, unit: u8, refusal: Option<String>) {
        if let Ok(mut devices) = self.devices.lock()
            && let Some(device) = devices.get_mut(id)
        {
            match refusal {
                Some(message) => {
                    device.last_error = Some(message.clone());
                    device.refusing_units.insert(unit, message);
                }
                None => {
                    device.refusing_units.remove(&unit);
                }
            }
        }
    }

    /// Every connection by name (`A1/B1` for sources, the device id for devices).
    pub fn snapshot(&self) -> BTreeMap<String, ConnectionHealth> {
        let mut all = self.devices.lock().map(|d| d.clone()).unwrap_or_default();
        if let Ok(sources) = self.sources.lock() {
            for (name, endpoint, status) in sources.iter() {
                let status = status.borrow();
                all.insert(
                    name.clone(),
                    ConnectionHealth {
                        kind: "opcua",
                        endpoint: endpoint.clone(),
                        connected: status.connected,
                        last_error: status.last_error.clone(),
                        delivered: Some(status.delivered),
                        refusing_units: BTreeMap::new(),
                    },
                );
            }
        }
        all
    }
}
