//! A Modbus TCP server that behaves like pick-light modules (the `sim-line` profile of
//! `takt-plc-bridge`, `plc-bridge/profiles/sim-line.toml`).
//!
//! Register map per unit, position `p` (0-based):
//! - holding register `4p`: colour code (0 off, 1 green, 2 blue, 3 red, 4 yellow, 5 white,
//!   6 cyan, 7 magenta), `4p + 1`: digits, `4p + 2`: blink (0/1), `4p + 3`: reserved;
//! - discrete input `p`: the confirm button.
//!
//! The state is shared across connections and survives [`SimModbus::stop`] /
//! [`SimModbus::restart`], like a module whose network link drops while its lamps stay lit.
//! Its physical front — lamps and buttons — is a [`Panel`], which simulated operators and
//! tests hold while the server is restarted under them.
//! Unknown unit → exception 0x0B (gateway target device failed to respond); an address outside
//! the map → 0x02 (illegal data address); an unsupported function → 0x01.

use crate::lock;
use std::collections::{BTreeMap, VecDeque};
use std::future::{Ready, ready};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

/// Holding registers per position.
pub const REGISTERS_PER_POSITION: u16 = 4;
/// Lamp-write log entries kept; the oldest go first (memory stays bounded on long runs).
pub const LOG_CAPACITY: usize = 65_536;
/// Lamp writes a slow [`Panel::subscribe`]r may fall behind by before it misses some.
const EVENT_CAPACITY: usize = 4096;

/// What one lamp shows, as raw register values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lamp {
    /// Colour code, 0 = off.
    pub colour: u16,
    /// Digits shown.
    pub digits: u16,
    /// Blink flag.
    pub blink: u16,
}

/// One write that touched a lamp, with the time the server applied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LampWrite {
    /// When the write was applied.
    pub at: Instant,
    /// Unit id.
    pub unit: u8,
    /// Position.
    pub position: u16,
    /// The lamp after the write.
    pub lamp: Lamp,
}

/// Which modules the server simulates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimModbusConfig {
    /// Unit ids answered.
    pub units: Vec<u8>,
    /// Positions per unit.
    pub positions: u16,
}

impl Default for SimModbusConfig {
    fn default() -> Self {
        Self {
            units: vec![1, 2],
            positions: 16,
        }
    }
}

#[derive(Debug)]
struct Module {
    registers: Vec<u16>,
    buttons: Vec<bool>,
}

#[derive(Debug)]
struct State {
    modules: BTreeMap<u8, Module>,
    log: VecDeque<LampWrite>,
    events: broadcast::Sender<LampWrite>,
}

type Shared = Arc<Mutex<State>>;

/// The modules' lamps and buttons, as an operator sees them; cheap to clone, and unaffected
/// by the server being stopped or restarted.
#[derive(Debug, Clone)]
pub struct Panel {
    state: Shared,
}

/// The running simulator. Dropping it stops serving.
#[derive(Debug)]
pub struct SimModbus {
    panel: Panel,
    local_addr: SocketAddr,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl SimModbus {
    /// Binds with the default modules (units 1 and 2, 16 positions each).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn bind(addr: &str) -> io::Result<Self> {
        Self::bind_with(addr, SimModbusConfig::default()).await
    }

    /// Binds `addr` (port 0 picks a free port) and serves `config`'s modules.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn bind_with(addr: &str, config: SimModbusConfig) -> io::Result<Self> {
        let positions = usize::from(config.positions);
        let modules = config
            .units
            .iter()
            .map(|&unit| {
                let registers = vec![0; positions * usize::from(REGISTERS_PER_POSITION)];
                (
                    unit,
                    Module {
                        registers,
                        buttons: vec![false; positions],
                    },
                )
            })
            .collect();
        let state = Arc::new(Mutex::new(State {
            modules,
            log: VecDeque::new(),
            events: broadcast::channel(EVENT_CAPACITY).0,
        }));
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let mut sim = Self {
            panel: Panel { state },
            local_addr,
            running: None,
        };
        sim.serve(listener);
        Ok(sim)
    }

    /// The bound address (stays the same across restarts).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The modules' lamps and buttons.
    #[must_use]
    pub fn panel(&self) -> &Panel {
        &self.panel
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let state = Arc::clone(&self.panel.state);
        let task = tokio::spawn(async move {
            let server = Server::new(listener);
            let on_connected = |stream: tokio::net::TcpStream, socket_addr| {
                let state = Arc::clone(&state);
                async move {
                    // Like a module's embedded stack: answers go out at once.
                    stream.set_nodelay(true)?;
                    accept_tcp_connection(stream, socket_addr, |_| {
                        Ok(Some(SimService {
                            state: Arc::clone(&state),
                        }))
                    })
                }
            };
            let abort = async {
                let _ = stop_rx.await;
            };
            // Ending the server cancels its connection tasks: clients see the link drop.
            let _ = server.serve_until(&on_connected, |_error| {}, abort).await;
        });
        self.running = Some((stop_tx, task));
    }

    /// Stops serving and closes every connection. The register state is kept.
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// Serves again on the same address after [`stop`](Self::stop).
    ///
    /// # Errors
    /// When the port cannot be bound again.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.stop().await;
        let listener = TcpListener::bind(self.local_addr).await?;
        self.serve(listener);
        Ok(())
    }
}

impl Panel {
    /// Clears every lamp, as a module does when it reboots (call between [`SimModbus::stop`]
    /// and [`SimModbus::restart`] to simulate a power cycle). Not in the write log (nobody
    /// wrote it), but [`subscribe`](Self::subscribe)rs see each lamp that went dark.
    pub fn power_cycle_lamps(&self) {
        let mut state = lock(&self.state);
        let at = Instant::now();
        let mut dark = Vec::new();
        for (&unit, module) in &mut state.modules {
            let positions = module.buttons.len();
            for position in 0..positions {
                let position = u16::try_from(position).unwrap_or(u16::MAX);
                if lamp_of(module, position).is_some_and(|l| l != Lamp::default()) {
                    dark.push(LampWrite {
                        at,
                        unit,
                        position,
                        lamp: Lamp::default(),
                    });
                }
            }
            module.registers.fill(0);
        }
        for write in dark {
            let _ = state.events.send(write);
        }
    }

    /// Positions of `unit` (0 if there is no such unit).
    #[must_use]
    pub fn positions(&self, unit: u8) -> u16 {
        lock(&self.state)
            .modules
            .get(&unit)
            .map_or(0, |m| u16::try_from(m.buttons.len()).unwrap_or(u16::MAX))
    }

    /// The lamp at `unit`/`position`, if the module exists.
    #[must_use]
    pub fn lamp(&self, unit: u8, position: u16) -> Option<Lamp> {
        let state = lock(&self.state);
        lamp_of(state.modules.get(&unit)?, position)
    }

    /// Holds or releases a button (for glitches and held presses).
    ///
    /// # Panics
    /// If the unit or position does not exist (a test bug).
    pub fn set_button(&self, unit: u8, position: u16, down: bool) {
        let mut state = lock(&self.state);
        let module = state.modules.get_mut(&unit).expect("unit exists");
        *module
            .buttons
            .get_mut(usize::from(position))
            .expect("position exists") = down;
    }

    /// Presses a button, holds it for `hold`, releases it.
    pub async fn press(&self, unit: u8, position: u16, hold: Duration) {
        self.set_button(unit, position, true);
        tokio::time::sleep(hold).await;
        self.set_button(unit, position, false);
    }

    /// Every lamp write from now on, as it is applied, and every lamp a power cycle darkens.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<LampWrite> {
        lock(&self.state).events.subscribe()
    }

    /// Every lamp write so far (the last [`LOG_CAPACITY`]), oldest first.
    #[must_use]
    pub fn lamp_log(&self) -> Vec<LampWrite> {
        lock(&self.state).log.iter().copied().collect()
    }
}

impl Drop for SimModbus {
    fn drop(&mut self) {
        if let Some((stop, _)) = self.running.take() {
            let _ = stop.send(());
        }
    }
}

fn lamp_of(module: &Module, position: u16) -> Option<Lamp> {
    let base = usize::from(position) * usize::from(REGISTERS_PER_POSITION);
    let registers = module.registers.get(base..base + 3)?;
    Some(Lamp {
        colour: registers[0],
        digits: registers[1],
        blink: registers[2],
    })
}

#[derive(Debug)]
struct SimService {
    state: Shared,
}

impl tokio_modbus::server::Service for SimService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, request: Self::Request) -> Self::Future {
        ready(handle(
            &mut lock(&self.state),
            request.slave,
            request.request,
        ))
    }
}

/// `start..start + count` if it lies within `len`.
fn range(start: u16, count: usize, len: usize) -> Result<std::ops::Range<usize>, ExceptionCode> {
    let start = usize::from(start);
    let end = start
        .checked_add(count)
        .ok_or(ExceptionCode::IllegalDataAddress)?;
    if count == 0 || end > len {
        return Err(ExceptionCode::IllegalDataAddress);
    }
    Ok(start..end)
}

fn handle(
    state: &mut State,
    unit: u8,
    request: Request<'static>,
) -> Result<Response, ExceptionCode> {
    let module = state
        .modules
        .get_mut(&unit)
        .ok_or(ExceptionCode::GatewayTargetDevice)?;
    match request {
        Request::ReadDiscreteInputs(start, count) => {
            let r = range(start, usize::from(count), module.buttons.len())?;
            Ok(Response::ReadDiscreteInputs(module.buttons[r].to_vec()))
        }
        Request::ReadHoldingRegisters(start, count) => {
            let r = range(start, usize::from(count), module.registers.len())?;
            Ok(Response::ReadHoldingRegisters(module.registers[r].to_vec()))
        }
        Request::WriteSingleRegister(address, value) => {
            write(state, unit, address, &[value])?;
            Ok(Response::WriteSingleRegister(address, value))
        }
        Request::WriteMultipleRegisters(address, values) => {
            write(state, unit, address, &values)?;
            let count = u16::try_from(values.len()).map_err(|_| ExceptionCode::IllegalDataValue)?;
            Ok(Response::WriteMultipleRegisters(address, count))
        }
        _ => Err(ExceptionCode::IllegalFunction),
    }
}

fn write(state: &mut State, unit: u8, address: u16, values: &[u16]) -> Result<(), ExceptionCode> {
    let module = state
        .modules
        .get_mut(&unit)
        .ok_or(ExceptionCode::GatewayTargetDevice)?;
    let r = range(address, values.len(), module.registers.len())?;
    module.registers[r.clone()].copy_from_slice(values);
    let per = usize::from(REGISTERS_PER_POSITION);
    let at = Instant::now();
    let touched: Vec<u16> = (r.start / per..=(r.end - 1) / per)
        .filter_map(|p| u16::try_from(p).ok())
        .collect();
    for position in touched {
        if let Some(lamp) = lamp_of(module, position) {
            if state.log.len() == LOG_CAPACITY {
                state.log.pop_front();
            }
            let write = LampWrite {
                at,
                unit,
                position,
                lamp,
            };
            state.log.push_back(write);
            // Nobody listening is fine.
            let _ = state.events.send(write);
        }
    }
    Ok(())
}
