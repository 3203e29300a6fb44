//! The commissioning probe: one session, one Read of every node a source's configuration
//! names, and per node what the server holds (type, array length, value) against what the
//! layout needs — the check a plant engineer runs before go-live, with the line server up and
//! the PLC in its real layout. Nothing is written and nothing is journaled.

use ::opcua::types::{DataValue, Variant};

use super::config::{AckWith, Layout, OptionsFormat, RecordNodes, SourceConfig, TriggerKind};
use super::connection::{self, LinkError};
use super::decode;
use super::nodes::node;

/// What the probe found at one configured node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Dotted path of the node's field within the source, e.g. `layout.arrays.vin`.
    pub field: String,
    /// The NodeId as configured.
    pub node: String,
    /// What the layout needs there.
    pub expected: String,
    /// What the server holds: type, array length, value.
    pub found: String,
    /// Why that is not what the layout needs; `None`: it is.
    pub mismatch: Option<String>,
}

/// What a node must hold.
#[derive(Debug, Clone)]
enum Need<'a> {
    /// An integer, or a decimal string (sequence numbers, counters, indexes).
    Number,
    /// A Boolean (or an integer read as one).
    Flag,
    /// A Boolean, strictly: a strobe or toggle trigger.
    Boolean,
    /// Text, or an integer taken as its decimal text.
    Text,
    /// Option codes as the source's `options_format` reads them.
    Options(&'a OptionsFormat),
    /// A field array holding `slots` slots from element `first`, each as `Need`. As the
    /// source reads it: an array of exactly `slots` elements is those slots (in the PLC's own
    /// numbering, e.g. a 1-based `ARRAY[1..16]`); a longer one is cut at `first`.
    Array {
        each: Box<Need<'a>>,
        slots: usize,
        first: usize,
    },
}

impl Need<'_> {
    fn describe(&self) -> String {
        match self {
            Need::Number => "a number".into(),
            Need::Flag => "a Boolean".into(),
            Need::Boolean => "a Boolean (not a number)".into(),
            Need::Text => "text".into(),
            Need::Options(_) => "option codes (a string array or one string)".into(),
            Need::Array { each, slots, first } => format!(
                "an array of {slots} × {} (elements {first}..={})",
                each.describe(),
                first + slots - 1
            ),
        }
    }

    /// Why `v` is not what is needed, or `None`.
    fn check(&self, v: &Variant) -> Option<String> {
        let scalar = |result: Result<(), decode::FieldError>| result.err().map(|e| e.problem);
        match (self, v) {
            (Need::Array { each, slots, first }, Variant::Array(array)) => {
                let len = array.values.len();
                let used = if len == *slots {
                    0..len
                } else if len >= first + slots {
                    *first..first + slots
                } else {
                    return Some(format!(
                        "{len} elements, the layout reads {slots} from element {first}"
                    ));
                };
                array.values[used.clone()]
                    .iter()
                    .zip(used)
                    .find_map(|(element, i)| {
                        each.check(element).map(|why| format!("element {i}: {why}"))
                    })
            }
            (Need::Array { .. }, other) => {
                Some(format!("{}, not an array", decode::describe(other)))
            }
            (_, Variant::Array(array)) if !matches!(self, Need::Options(_)) => Some(format!(
                "an array of {} values where one value is needed",
                array.values.len()
            )),
            (Need::Number, _) => match v {
                Variant::Boolean(_) => Some("a Boolean is not a number".into()),
                _ => scalar(decode::number("value", v).map(drop)),
            },
            (Need::Flag, _) => scalar(decode::flag("value", v).map(drop)),
            (Need::Boolean, Variant::Boolean(_)) => None,
            (Need::Boolean, other) => Some(format!("{} is not a Boolean", decode::describe(other))),
            (Need::Text, _) => scalar(decode::string("value", v).map(drop)),
            (Need::Options(format), _) => scalar(decode::options(v, format).map(drop)),
        }
    }
}

/// Connects to the source's server, reads every configured node once, closes the session.
///
/// # Errors
/// When the server cannot be reached or a session not opened; a node that is missing or of
/// the wrong type is a [`Finding`] with a mismatch, not an error.
pub async fn probe(cfg: &SourceConfig) -> Result<Vec<Finding>, LinkError> {
    let mut client = connection::client(cfg)?;
    let link = connection::open(&mut client, cfg).await?;
    let ns = match &cfg.namespace_uri {
        Some(uri) => link.namespace(uri).await,
        None => Ok(0),
    };
    let ns = match ns {
        Ok(ns) => ns,
        Err(e) => {
            link.close().await;
            return Err(e);
        }
    };
    let wanted = wanted(cfg);
    let ids = wanted
        .iter()
        .map(|(_, text, _)| node(text, ns))
        .collect::<Result<Vec<_>, _>>();
    let read = match ids {
        Ok(ids) => link.read(&ids).await,
        Err(e) => Err(e),
    };
    link.close().await;
    let values = read?;
    Ok(wanted
        .iter()
        .zip(&values)
        .map(|((field, text, need), dv)| finding(field, text, need, dv))
        .collect())
}

fn finding(field: &str, node: &str, need: &Need<'_>, dv: &DataValue) -> Finding {
    let (found, mismatch) = match decode::value("value", dv) {
        Ok(v) => (shown(v), need.check(v)),
        Err(e) => (e.problem.clone(), Some(e.problem)),
    };
    Finding {
        field: field.to_owned(),
        node: node.to_owned(),
        expected: need.describe(),
        found,
        mismatch,
    }
}

/// Type, array length and value, short enough for one line.
fn shown(v: &Variant) -> String {
    const MOST: usize = 4;
    match v {
        Variant::Array(array) => {
            let first: Vec<String> = array.values.iter().take(MOST).map(scalar).collect();
            let more = if array.values.len() > MOST {
                ", …"
            } else {
                ""
            };
            format!(
                "{:?}[{}] = [{}{more}]",
                array.value_type,
                array.values.len(),
                first.join(", ")
            )
        }
        other => scalar(other),
    }
}

fn scalar(v: &Variant) -> String {
    let text = match v {
        Variant::String(s) => format!("String {:?}", s.value().as_deref().unwrap_or("")),
        other => format!("{other:?}"),
    };
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// Every node the configuration names, with its field path and what it must hold, in the
/// order the file names them.
fn wanted(cfg: &SourceConfig) -> Vec<(String, String, Need<'_>)> {
    let mut out = Vec::new();
    let options = &cfg.options_format;
    match &cfg.layout {
        Layout::Handshake {
            record,
            trigger,
            trigger_kind,
            ack,
            ack_with,
            no_handshake,
            ..
        } => {
            let trigger_need = match trigger_kind {
                TriggerKind::Counter => Need::Number,
                TriggerKind::Toggle | TriggerKind::Strobe => Need::Boolean,
            };
            out.push(("layout.trigger".into(), trigger.clone(), trigger_need));
            let ack_need = match ack_with {
                AckWith::Counter if *trigger_kind == TriggerKind::Counter => Need::Number,
                AckWith::Counter | AckWith::Toggle | AckWith::Flag => Need::Flag,
                AckWith::Seq => Need::Number,
            };
            out.push(("layout.ack".into(), ack.clone(), ack_need));
            if let Some(node) = no_handshake {
                out.push(("layout.no_handshake".into(), node.clone(), Need::Flag));
            }
            push_record(&mut out, "layout.record", record, options, None);
        }
        Layout::Fifo {
            trigger,
            arrays,
            slot_count,
            first_index,
            write_index,
            slot_template,
            ..
        } => {
            out.push(("layout.trigger".into(), trigger.clone(), Need::Number));
            if let Some(node) = write_index {
                out.push(("layout.write_index".into(), node.clone(), Need::Number));
            }
            match arrays {
                Some(fields) => push_record(
                    &mut out,
                    "layout.arrays",
                    fields,
                    options,
                    Some((*slot_count, *first_index)),
                ),
                None => {
                    for (i, slot) in cfg.fifo_slots().iter().enumerate() {
                        let at = if slot_template.is_some() {
                            format!("layout.slot_template (slot {i})")
                        } else {
                            format!("layout.slots[{i}]")
                        };
                        push_record(&mut out, &at, slot, options, None);
                    }
                }
            }
        }
    }
    if let Some(state) = &cfg.line_state {
        out.push((
            "line_state.running".into(),
            state.running.clone(),
            Need::Flag,
        ));
        if let Some(node) = &state.stop_reason {
            out.push(("line_state.stop_reason".into(), node.clone(), Need::Text));
        }
    }
    out
}

/// A record's field nodes; `arrays`: each is a field array of `(slots, first element)`.
fn push_record<'a>(
    out: &mut Vec<(String, String, Need<'a>)>,
    at: &str,
    nodes: &RecordNodes,
    options: &'a OptionsFormat,
    arrays: Option<(usize, usize)>,
) {
    let wrap = |need: Need<'a>| match arrays {
        Some((slots, first)) => Need::Array {
            each: Box::new(need),
            slots,
            first,
        },
        None => need,
    };
    out.push((format!("{at}.seq"), nodes.seq.clone(), wrap(Need::Number)));
    out.push((format!("{at}.vin"), nodes.vin.clone(), wrap(Need::Text)));
    if let Some(body) = &nodes.body {
        out.push((format!("{at}.body"), body.clone(), wrap(Need::Text)));
    }
    out.push((format!("{at}.model"), nodes.model.clone(), wrap(Need::Text)));
    out.push((
        format!("{at}.options"),
        nodes.options.clone(),
        wrap(Need::Options(options)),
    ));
}
