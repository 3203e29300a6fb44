//! The commissioning probe for a Modbus connection: per unit, one read of each position's lamp
//! registers, one of the buttons' span and one of the watchdog register if the profile has one,
//! reporting what the module answered. A profile that
//! does not fit the module (more positions than it has, another register map) shows as the
//! position or span it refuses. Nothing is written.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::timeout;
use tokio_modbus::client::{Context, Reader, tcp};
use tokio_modbus::slave::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};

use super::address::{RegisterAddress, Table};
use super::profile::{LampState, Profile};

/// What one unit answered for one part of its profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub unit: u8,
    /// `lamps`, `buttons` or `watchdog`.
    pub part: &'static str,
    /// What was read, e.g. `hr:0 x3 at each of 16 positions`.
    pub read: String,
    /// What came back: values, or the first refusal.
    pub found: String,
    /// Why the profile does not fit; `None`: it does.
    pub mismatch: Option<String>,
}

/// Connects, reads, disconnects.
///
/// # Errors
/// When the endpoint cannot be reached or a request fails at the transport level; a refused
/// read is a [`Finding`], not an error.
pub async fn probe(
    endpoint: SocketAddr,
    units: &BTreeMap<u8, Profile>,
    request_timeout: Duration,
) -> Result<Vec<Finding>, String> {
    let stream = timeout(request_timeout, tokio::net::TcpStream::connect(endpoint))
        .await
        .map_err(|_| format!("connect to {endpoint}: timed out"))?
        .map_err(|e| format!("connect to {endpoint}: {e}"))?;
    let mut context = tcp::attach(stream);
    let mut findings = Vec::new();
    for (&unit, profile) in units {
        context.set_slave(Slave(unit));
        findings.push(lamps(&mut context, unit, profile, request_timeout).await?);
        let (start, count) = profile.button_span();
        let read = format!("{start} x{count}");
        let answer = read_span(&mut context, start, count, request_timeout).await?;
        findings.push(match answer {
            Ok(words) => Finding {
                unit,
                part: "buttons",
                found: format!("answered: {} pressed", pressed(profile, &words)),
                read,
                mismatch: None,
            },
            Err(code) => refused(unit, "buttons", read, code, profile),
        });
        if let Some(watchdog) = profile.watchdog {
            let read = format!("{}", watchdog.address);
            let answer = read_span(&mut context, watchdog.address, 1, request_timeout).await?;
            findings.push(match answer {
                Ok(words) => Finding {
                    unit,
                    part: "watchdog",
                    found: format!("answered: {}", words.first().copied().unwrap_or(0)),
                    read,
                    mismatch: None,
                },
                Err(code) => refused(unit, "watchdog", read, code, profile),
            });
        }
    }
    Ok(findings)
}

/// Each position's lamp addresses, one read per position (a span over every position may pass
/// the protocol's 125-register limit).
async fn lamps(
    context: &mut Context,
    unit: u8,
    profile: &Profile,
    request_timeout: Duration,
) -> Result<Finding, String> {
    let mut shape = String::new();
    for position in 0..profile.positions {
        let Ok(writes) = profile.encode(position, &LampState::Off) else {
            continue;
        };
        let addresses: Vec<RegisterAddress> = writes.iter().map(|(a, _)| *a).collect();
        let (Some(first), Some(last)) = (addresses.iter().min(), addresses.iter().max()) else {
            continue;
        };
        let count = last.address - first.address + 1;
        if position == 0 {
            shape = format!("{first} x{count}");
        }
        if let Err(code) = read_span(context, *first, count, request_timeout).await? {
            let read = format!("{first} x{count} (position {position})");
            return Ok(refused(unit, "lamps", read, code, profile));
        }
    }
    Ok(Finding {
        unit,
        part: "lamps",
        read: format!("{shape} at each of {} positions", profile.positions),
        found: "answered at every position".into(),
        mismatch: None,
    })
}

fn refused(
    unit: u8,
    part: &'static str,
    read: String,
    code: ExceptionCode,
    profile: &Profile,
) -> Finding {
    Finding {
        unit,
        part,
        found: format!("refused: {code:?}"),
        mismatch: Some(format!(
            "unit {unit} refuses {read}: profile `{}` ({} positions) does not fit this module",
            profile.name, profile.positions
        )),
        read,
    }
}

fn pressed(profile: &Profile, words: &[u16]) -> usize {
    (0..profile.positions)
        .filter(|&p| {
            words
                .get(profile.button_index(p))
                .is_some_and(|&w| profile.word_pressed(w))
        })
        .count()
}

/// `count` consecutive addresses from `start`, bits as 0/1.
async fn read_span(
    context: &mut Context,
    start: RegisterAddress,
    count: u16,
    request_timeout: Duration,
) -> Result<Result<Vec<u16>, ExceptionCode>, String> {
    let bits = |answer: Result<Vec<bool>, ExceptionCode>| {
        answer.map(|bits| bits.into_iter().map(u16::from).collect())
    };
    let at = start.address;
    let call = async {
        Ok::<_, tokio_modbus::Error>(match start.table {
            Table::Coil => bits(context.read_coils(at, count).await?),
            Table::DiscreteInput => bits(context.read_discrete_inputs(at, count).await?),
            Table::InputRegister => context.read_input_registers(at, count).await?,
            Table::HoldingRegister => context.read_holding_registers(at, count).await?,
        })
    };
    match timeout(request_timeout, call).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("transport: {e}")),
        Err(_) => Err("request timed out".into()),
    }
}
