//! The node-id contract and the address space that carries it.
//!
//! Every node id is built by [`node_name`] so the contract lives in one place; the client's
//! default configuration (`plc-bridge`) refers to the same strings.

use opcua::server::address_space::{AccessLevel, AddressSpace, Variable, VariableBuilder};
use opcua::types::{DataTypeId, NodeId, ObjectId, QualifiedName, Variant};

use super::Layout;

/// Per-record fields, in the order they are written (before the counter).
pub(super) const RECORD_FIELDS: [&str; 5] = ["Seq", "Vin", "Body", "Model", "Options"];

/// The string node id of `field` under `line` and, when given, `point`:
/// `{line}.{field}` or `{line}.{point}.{field}`.
#[must_use]
pub fn node_name(line: &str, point: Option<&str>, field: &str) -> String {
    match point {
        Some(point) => format!("{line}.{point}.{field}"),
        None => format!("{line}.{field}"),
    }
}

/// The field name of slot `slot`'s `field` in a FIFO point: `Fifo[{slot}].{field}`.
#[must_use]
pub fn fifo_field(slot: usize, field: &str) -> String {
    format!("Fifo[{slot}].{field}")
}

fn data_type_of(field: &str) -> DataTypeId {
    match field {
        "Running" | "NoHandshake" => DataTypeId::Boolean,
        "StopReason" | "Vin" | "Body" | "Model" | "Options" => DataTypeId::String,
        _ => DataTypeId::UInt32,
    }
}

fn initial_value(data_type: DataTypeId) -> Variant {
    match data_type {
        DataTypeId::Boolean => Variant::Boolean(false),
        DataTypeId::String => Variant::String(String::new().into()),
        _ => Variant::UInt32(0),
    }
}

/// Builds the nodes of one line under `Objects`, all values at their empty defaults (the
/// simulator writes its current memory right after).
pub(super) fn build_address_space(
    space: &mut AddressSpace,
    ns: u16,
    line: &str,
    points: &[String],
    layout: &Layout,
) {
    let line_folder = NodeId::new(ns, line.to_owned());
    space.add_folder(
        &line_folder,
        QualifiedName::new(ns, line),
        line,
        &ObjectId::ObjectsFolder.into(),
    );
    let line_vars = ["Running", "StopReason", "TaktMs"]
        .iter()
        .map(|field| variable(ns, line, None, field, field, false))
        .collect();
    space.add_variables(line_vars, &line_folder);

    for point in points {
        let point_folder = NodeId::new(ns, format!("{line}.{point}"));
        space.add_folder(
            &point_folder,
            QualifiedName::new(ns, point.as_str()),
            point.as_str(),
            &line_folder,
        );
        match layout {
            Layout::Handshake { .. } => {
                let mut vars: Vec<Variable> = RECORD_FIELDS
                    .iter()
                    .chain(&["Counter", "NoHandshake"])
                    .map(|field| variable(ns, line, Some(point), field, field, false))
                    .collect();
                // The only node a client writes: the acknowledgement of a presentation.
                vars.push(variable(ns, line, Some(point), "Ack", "Ack", true));
                space.add_variables(vars, &point_folder);
            }
            Layout::Fifo { slots } => {
                for slot in 0..*slots {
                    let slot_name = format!("Fifo[{slot}]");
                    let slot_folder = NodeId::new(ns, node_name(line, Some(point), &slot_name));
                    space.add_folder(
                        &slot_folder,
                        QualifiedName::new(ns, slot_name.as_str()),
                        slot_name.as_str(),
                        &point_folder,
                    );
                    let vars = RECORD_FIELDS
                        .iter()
                        .map(|field| {
                            let full = fifo_field(slot, field);
                            variable(ns, line, Some(point), &full, field, false)
                        })
                        .collect();
                    space.add_variables(vars, &slot_folder);
                }
                let vars = ["LastSeq", "Count"]
                    .iter()
                    .map(|field| variable(ns, line, Some(point), field, field, false))
                    .collect();
                space.add_variables(vars, &point_folder);
            }
        }
    }
}

/// `field` is the node-id suffix, `leaf` the last path element that decides the data type
/// and is shown to browsers.
fn variable(
    ns: u16,
    line: &str,
    point: Option<&str>,
    field: &str,
    leaf: &str,
    writable: bool,
) -> Variable {
    let id = NodeId::new(ns, node_name(line, point, field));
    let data_type = data_type_of(leaf);
    // Both levels: the server checks the user access level on writes, a browser shows the
    // plain one.
    let access = if writable {
        AccessLevel::CURRENT_READ | AccessLevel::CURRENT_WRITE
    } else {
        AccessLevel::CURRENT_READ
    };
    VariableBuilder::new(&id, QualifiedName::new(ns, leaf), leaf)
        .data_type(data_type)
        .value(initial_value(data_type))
        .access_level(access)
        .user_access_level(access)
        .build()
}
