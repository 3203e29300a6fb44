//! Plays a planned scenario on a floor: the line's OPC UA server publishes the broadcasts at
//! (accelerated) takt, line stops and faults happen when the plan says, operators press what
//! lights up, and everything goes to the ground truth.
//!
//! Faults can also be injected while it runs ([`Command`]); those that act on the servers
//! (sessions, restarts, device reboots) and those that resend what was sent (duplicate,
//! correction) work at any time. Gaps, skips and silences reorder the plan and so come from
//! the scenario only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use takt_core::{PlantConfig, RawRecord};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::floor::Floor;
use crate::modbus::{SimModbus, SimModbusConfig};
use crate::opcua::{SimOpcUa, SimOpcUaError};
use crate::operators::{self, Workplace};
use crate::scenario::{Event, Fault, Step, correct, wall_time};
use crate::truth::{Fact, Truth};

/// Wall-clock time a restarted OPC UA server stays down.
const SERVER_DOWN: Duration = Duration::from_millis(200);

/// A progress line every this many vehicles.
const PROGRESS_EVERY: u32 = 10;

/// Something to do now, from outside the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Fault(Fault),
    StopLine(String),
    RunLine,
}

#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    #[error("OPC UA server: {0}")]
    OpcUa(#[from] SimOpcUaError),
    #[error("Modbus module `{device}`: {source}")]
    Module {
        device: String,
        source: std::io::Error,
    },
    #[error("no line `{0}` in the plant")]
    NoLine(String),
    #[error("no module `{0}` on the floor")]
    NoModule(String),
    #[error("`{0}` comes from the scenario only: it reorders what is still to be sent")]
    PlanOnly(&'static str),
}

/// A floor, bound and working: servers up, operators at their units.
#[derive(Debug)]
pub struct Sim {
    opcua: SimOpcUa,
    modules: BTreeMap<String, SimModbus>,
    legal_options: BTreeMap<String, Vec<String>>,
    /// The line's first broadcast point: progress is told by its vehicles.
    first_point: String,
    truth: Truth,
    acceleration: f64,
    /// Last record sent per broadcast point (for duplicates and corrections on demand).
    last: BTreeMap<String, (usize, u32, RawRecord)>,
    workers: Vec<JoinHandle<()>>,
}

impl Sim {
    /// Binds the floor's servers for `line` of `plant` and puts the operators to work.
    /// `acceleration` scales operator times; `seed` their wrong picks.
    ///
    /// # Errors
    /// When the line is unknown or a server cannot be bound.
    pub async fn start(
        floor: &Floor,
        plant: &PlantConfig,
        line: &str,
        acceleration: f64,
        seed: u64,
        truth: Truth,
    ) -> Result<Self, PlayError> {
        let line_cfg = plant
            .lines
            .iter()
            .find(|l| l.id == line)
            .ok_or_else(|| PlayError::NoLine(line.to_owned()))?;
        let points: Vec<&str> = line_cfg
            .broadcast_points
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        let opcua = SimOpcUa::bind(floor.opcua_config(line, &points), floor.opcua.listen).await?;
        opcua.set_takt_ms(u32::try_from(line_cfg.takt_ms).unwrap_or(u32::MAX));
        opcua.set_line_state(true, "");
        let mut modules = BTreeMap::new();
        let mut workers = Vec::new();
        for m in &floor.modules {
            let sim = SimModbus::bind_with(
                &m.listen.to_string(),
                SimModbusConfig {
                    units: m.units.clone(),
                    positions: m.positions,
                },
            )
            .await
            .map_err(|source| PlayError::Module {
                device: m.name.clone(),
                source,
            })?;
            workers.push(tokio::spawn(log_lamps(
                m.name.clone(),
                sim.panel().subscribe(),
                truth.clone(),
            )));
            modules.insert(m.name.clone(), sim);
        }
        for o in &floor.operators {
            let Some(module) = modules.get(&o.module) else {
                return Err(PlayError::NoModule(o.module.clone()));
            };
            workers.push(operators::spawn(
                o.clone(),
                Workplace {
                    device: o.module.clone(),
                    panel: module.panel().clone(),
                    truth: truth.clone(),
                    acceleration,
                    seed,
                },
            ));
        }
        Ok(Self {
            opcua,
            modules,
            legal_options: plant.options.clone(),
            first_point: points.first().map(|p| (*p).to_owned()).unwrap_or_default(),
            truth,
            acceleration,
            last: BTreeMap::new(),
            workers,
        })
    }

    /// The line's OPC UA server.
    #[must_use]
    pub fn opcua(&self) -> &SimOpcUa {
        &self.opcua
    }

    /// The light module called `name`.
    #[must_use]
    pub fn module(&self, name: &str) -> Option<&SimModbus> {
        self.modules.get(name)
    }

    /// Where the module called `name` listens.
    #[must_use]
    pub fn module_addr(&self, name: &str) -> Option<SocketAddr> {
        self.modules.get(name).map(SimModbus::local_addr)
    }

    /// The ground truth this run writes.
    #[must_use]
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// Plays `steps[from..]`, the first of them now, taking commands meanwhile; returns when
    /// the last step has been played. A closed command channel just means no more commands.
    ///
    /// # Errors
    /// When a server cannot be rebuilt after a fault.
    pub async fn play(
        &mut self,
        steps: &[Step],
        from: usize,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Result<(), PlayError> {
        for step in steps {
            if let Event::Fault(Fault::RestartDevice { device, .. }) = &step.event
                && !self.modules.contains_key(device)
            {
                return Err(PlayError::NoModule(device.clone()));
            }
        }
        let Some(first) = steps.get(from) else {
            self.truth.record(Fact::Finished);
            return Ok(());
        };
        let origin = Instant::now();
        let mut commands_open = true;
        for (index, step) in steps.iter().enumerate().skip(from) {
            let due = origin + wall_time(step.at_ms - first.at_ms, self.acceleration);
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => break,
                    command = commands.recv(), if commands_open => match command {
                        Some(command) => self.command(command).await?,
                        None => commands_open = false,
                    },
                }
            }
            self.step(index, &step.event).await?;
        }
        self.truth.record(Fact::Finished);
        Ok(())
    }

    /// Carries out a command now.
    ///
    /// # Errors
    /// When a server cannot be rebuilt, or for faults that only a scenario can plan.
    pub async fn command(&mut self, command: Command) -> Result<(), PlayError> {
        match command {
            Command::Fault(fault) => self.fault(fault).await,
            Command::StopLine(reason) => {
                self.line_state(false, reason);
                Ok(())
            }
            Command::RunLine => {
                self.line_state(true, String::new());
                Ok(())
            }
        }
    }

    async fn step(&mut self, index: usize, event: &Event) -> Result<(), PlayError> {
        match event {
            Event::Broadcast {
                point,
                vehicle,
                record,
            } => {
                self.broadcast(index, point, *vehicle, record.clone());
                Ok(())
            }
            Event::LineStopped { reason } => {
                self.line_state(false, reason.clone());
                Ok(())
            }
            Event::LineRunning => {
                self.line_state(true, String::new());
                Ok(())
            }
            // Already in the plan's broadcasts; only marked here.
            Event::Fault(
                fault @ (Fault::Gap { .. }
                | Fault::Skip { .. }
                | Fault::Duplicate
                | Fault::Correction
                | Fault::StopBroadcasting { .. }),
            ) => {
                self.truth.record(Fact::Fault {
                    fault: fault.clone(),
                });
                Ok(())
            }
            Event::Fault(fault) => self.fault(fault.clone()).await,
        }
    }

    fn broadcast(&mut self, step: usize, point: &str, vehicle: u32, record: RawRecord) {
        if point == self.first_point && vehicle.is_multiple_of(PROGRESS_EVERY) {
            tracing::info!(vehicle, seq = record.seq, vin = %record.vin, model = %record.model, "broadcast");
        }
        self.truth.record(Fact::Broadcast {
            step,
            point: point.to_owned(),
            vehicle,
            record: record.clone(),
        });
        self.opcua.broadcast(point, record.clone());
        self.last.insert(point.to_owned(), (step, vehicle, record));
    }

    fn line_state(&self, running: bool, reason: String) {
        self.opcua.set_line_state(running, &reason);
        self.truth.record(if running {
            Fact::LineRunning
        } else {
            Fact::LineStopped { reason }
        });
    }

    async fn fault(&mut self, fault: Fault) -> Result<(), PlayError> {
        tracing::info!(?fault, "fault");
        self.truth.record(Fact::Fault {
            fault: fault.clone(),
        });
        match fault {
            Fault::DropSessions => self.opcua.drop_sessions().await?,
            Fault::RestartServer => {
                self.opcua.stop().await;
                tokio::time::sleep(SERVER_DOWN).await;
                self.opcua.restart().await?;
            }
            Fault::RestartDevice { device, down_ms } => {
                let module = self
                    .modules
                    .get_mut(&device)
                    .ok_or_else(|| PlayError::NoModule(device.clone()))?;
                module.stop().await;
                module.panel().power_cycle_lamps();
                tokio::time::sleep(Duration::from_millis(down_ms)).await;
                module.restart().await.map_err(|source| PlayError::Module {
                    device: device.clone(),
                    source,
                })?;
                self.truth.record(Fact::DeviceBack { device });
            }
            Fault::Duplicate | Fault::Correction => {
                let resend: Vec<_> = self.last.clone().into_iter().collect();
                for (point, (step, vehicle, mut record)) in resend {
                    if fault == Fault::Correction {
                        correct(&mut record, &self.legal_options);
                    }
                    self.broadcast(step, &point, vehicle, record);
                }
            }
            Fault::Gap { .. } => return Err(PlayError::PlanOnly("gap")),
            Fault::Skip { .. } => return Err(PlayError::PlanOnly("skip")),
            Fault::StopBroadcasting { .. } => return Err(PlayError::PlanOnly("stop_broadcasting")),
        }
        Ok(())
    }

    /// Stops the operators and every server.
    pub async fn stop(mut self) {
        for worker in &self.workers {
            worker.abort();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.await;
        }
        self.opcua.stop().await;
        for module in self.modules.values_mut() {
            module.stop().await;
        }
    }
}

/// Writes every lamp write of one module to the ground truth.
async fn log_lamps(
    device: String,
    mut writes: tokio::sync::broadcast::Receiver<crate::modbus::LampWrite>,
    truth: Truth,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match writes.recv().await {
            Ok(w) => truth.record_at(
                w.at,
                Fact::Lamp {
                    device: device.clone(),
                    unit: w.unit,
                    position: w.position,
                    colour: w.lamp.colour,
                    digits: w.lamp.digits,
                    blink: w.lamp.blink,
                },
            ),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(device, missed, "ground truth missed lamp writes");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Where to pick up a scenario after a previous run of it wrote `truth`: a few broadcasts
/// before the last one it sent (the PLC's unacknowledged queue died with that run; records
/// sent twice are duplicates the controller ignores), never at a fault.
#[must_use]
pub fn resume_point(steps: &[Step], truth: &[crate::truth::Entry]) -> usize {
    /// Broadcasts sent again on resume.
    const OVERLAP: usize = 8;
    let Some(last) = truth.iter().rev().find_map(|e| match e.fact {
        Fact::Broadcast { step, .. } => Some(step),
        _ => None,
    }) else {
        return 0;
    };
    let mut from = last + 1;
    let mut resent = 0;
    while from > 0 && resent < OVERLAP {
        if matches!(
            steps.get(from - 1).map(|s| &s.event),
            Some(Event::Broadcast { .. })
        ) {
            resent += 1;
            from -= 1;
        } else {
            break;
        }
    }
    from.min(steps.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::truth::Entry;

    fn broadcast(vehicle: u32) -> Event {
        Event::Broadcast {
            point: "B1".into(),
            vehicle,
            record: RawRecord {
                seq: vehicle,
                vin: String::new(),
                body: String::new(),
                model: "M".into(),
                options: Vec::new(),
            },
        }
    }

    fn sent(step: usize) -> Entry {
        let Event::Broadcast {
            point,
            vehicle,
            record,
        } = broadcast(0)
        else {
            unreachable!()
        };
        Entry {
            t_us: 0,
            unix_ms: 0,
            fact: Fact::Broadcast {
                step,
                point,
                vehicle,
                record,
            },
        }
    }

    #[test]
    fn a_resumed_run_sends_the_last_broadcasts_again_but_no_fault() {
        let mut steps: Vec<Step> = (0..20)
            .map(|n| Step {
                at_ms: u64::from(n) * 1000,
                event: broadcast(n),
            })
            .collect();
        // Nothing sent yet: from the start.
        assert_eq!(resume_point(&steps, &[]), 0);
        // Step 14 was the last sent: the eight before 15 again.
        assert_eq!(resume_point(&steps, &[sent(3), sent(14)]), 7);
        // A fault at step 10 is not played twice.
        steps[10].event = Event::Fault(Fault::DropSessions);
        assert_eq!(resume_point(&steps, &[sent(14)]), 11);
        // Everything sent: nothing left but the overlap.
        assert_eq!(resume_point(&steps, &[sent(19)]), 12);
    }
}
