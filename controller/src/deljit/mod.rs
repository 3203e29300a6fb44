//! EDIFACT DELJIT (D.96A), the Odette / VDA 4986 style just-in-sequence call: one supplier's call
//! events after a cursor, one message each, in one interchange.
//!
//! Each message: `UNH`, `BGM+242` (a delivery just-in-time; message function 9 original for a call
//! created, 5 replace for a call changed, 1 cancellation), `DTM+137` (when), `NAD+CN` / `NAD+SU`
//! (plant and supplier), `SEQ` with the sequence number and 1159 = the broadcast it came from
//! (1 or 2: the line's first or second broadcast point), `GIR` with the VIN (`VV`), `DTM+2` (due at
//! the install station), `LIN` with the part number (`IN`), `PIA` with the family, `QTY+113`,
//! `UNT`; `UNB`/`UNZ` around them. [`folder`] drops them as files for partners that take EDI so.

pub mod folder;

use chrono::{DateTime, Utc};
use edifact_rs::{DataElement, EdifactError, Writer};
use takt_core::ConfigIndex;
use takt_core::StreamEvent;
use takt_core::model::Call;

/// A call event of the supplier's, as the outbox keeps it.
#[derive(Debug, Clone)]
pub struct CallEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub event: StreamEvent,
}

/// What a DELJIT interchange carries, from the outbox's events.
#[derive(Debug)]
pub struct Interchange {
    pub bytes: Vec<u8>,
    pub messages: usize,
}

/// `CCYYMMDDHHMM`, format 203.
fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M").to_string()
}

/// BGM 1225, the message function: what the event does to the call.
fn function(event: &StreamEvent) -> Option<(&'static str, &Call)> {
    match event {
        StreamEvent::CallCreated(c) => Some(("9", c)),
        StreamEvent::CallChanged(c) => Some(("5", c)),
        StreamEvent::CallCancelled(c) => Some(("1", c)),
        _ => None,
    }
}

/// The DELJIT interchange for `supplier` of the call events among `events` (others are
/// skipped), referenced `reference` (UNB 0020, at most 14 characters).
///
/// # Errors
/// If the EDIFACT writer refuses a segment (it does not for the values written here).
pub fn interchange(
    plant: &ConfigIndex,
    supplier: &str,
    reference: &str,
    now: DateTime<Utc>,
    events: &[CallEvent],
) -> Result<Interchange, EdifactError> {
    let sender = plant.config.plant.name.as_str();
    let mut out = Vec::new();
    let (date, time) = (
        now.format("%y%m%d").to_string(),
        now.format("%H%M").to_string(),
    );
    let mut head = Writer::new(&mut out);
    head.write_elements(
        "UNB",
        &[
            DataElement::Composite(&["UNOC", "3"]),
            DataElement::Composite(&[sender, "ZZZ"]),
            DataElement::Composite(&[supplier, "ZZZ"]),
            DataElement::Composite(&[&date, &time]),
            DataElement::Simple(reference),
        ],
    )?;
    head.finish()?;
    let mut messages = 0;
    for e in events {
        let Some((function, call)) = function(&e.event) else {
            continue;
        };
        messages += 1;
        message(
            &mut out, plant, sender, supplier, messages, e, function, call,
        )?;
    }
    let count = messages.to_string();
    let mut tail = Writer::new(&mut out);
    tail.write_simple("UNZ", &[count.as_str(), reference])?;
    tail.finish()?;
    Ok(Interchange {
        bytes: out,
        messages,
    })
}

/// Which broadcast of its line a call came from, as DE 1159 codes it: 1 for the line's first
/// broadcast point, 2 for its second (and so on).
fn broadcast_code(plant: &ConfigIndex, call: &Call) -> String {
    let point = plant
        .family(&call.family)
        .map(|f| plant.family_station(f).broadcast_point.clone());
    let index = plant.line(&call.line).and_then(|l| {
        l.broadcast_points
            .iter()
            .position(|p| Some(&p.id) == point.as_ref())
    });
    index.map_or_else(|| "1".to_owned(), |i| (i + 1).to_string())
}

#[allow(
    clippy::too_many_arguments,
    reason = "one message's parts, written in order"
)]
fn message(
    out: &mut Vec<u8>,
    plant: &ConfigIndex,
    sender: &str,
    supplier: &str,
    number: usize,
    event: &CallEvent,
    function: &str,
    call: &Call,
) -> Result<(), EdifactError> {
    let reference = number.to_string();
    let document = format!("{}-{}", call.id, event.id);
    let (at, due) = (stamp(event.at), stamp(call.due_at));
    let seq = call.seq.value().to_string();
    let source = broadcast_code(plant, call);
    let vin = call.vin.to_string();
    let quantity = if function == "1" { "0" } else { "1" };
    let mut w = Writer::new(out);
    w.write_elements(
        "UNH",
        &[
            DataElement::Simple(&reference),
            DataElement::Composite(&["DELJIT", "D", "96A", "UN"]),
        ],
    )?;
    w.write_simple("BGM", &["242", document.as_str(), function])?;
    w.write_elements("DTM", &[DataElement::Composite(&["137", &at, "203"])])?;
    w.write_elements(
        "NAD",
        &[
            DataElement::Simple("CN"),
            DataElement::Composite(&[sender, "", "92"]),
        ],
    )?;
    w.write_elements(
        "NAD",
        &[
            DataElement::Simple("SU"),
            DataElement::Composite(&[supplier, "", "92"]),
        ],
    )?;
    w.write_elements(
        "SEQ",
        &[
            DataElement::Simple(""),
            DataElement::Composite(&[&seq, &source]),
        ],
    )?;
    w.write_elements(
        "GIR",
        &[
            DataElement::Simple("1"),
            DataElement::Composite(&[&vin, "VV"]),
        ],
    )?;
    w.write_elements("DTM", &[DataElement::Composite(&["2", &due, "203"])])?;
    match &call.part {
        Some(part) => w.write_elements(
            "LIN",
            &[
                DataElement::Simple("1"),
                DataElement::Simple(""),
                DataElement::Composite(&[part, "IN"]),
            ],
        )?,
        // Unresolved: the plant has not named the part yet; a later message replaces this one.
        None => w.write_simple("LIN", &["1"])?,
    }
    w.write_elements(
        "PIA",
        &[
            DataElement::Simple("1"),
            DataElement::Composite(&[&call.family, "ZZZ"]),
        ],
    )?;
    w.write_elements("QTY", &[DataElement::Composite(&["113", quantity])])?;
    w.finish_unt(&reference)?;
    Ok(())
}
