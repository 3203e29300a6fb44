//! A source's layout resolved on the server it is connected to: the NodeIds to read, and how
//! the values of one Read become records.
//!
//! A FIFO's records are either in one node per field and slot, or in one array per field
//! (slot *i* is element *i* of every array), read with index ranges so that the whole FIFO,
//! or its two newest slots, is one Read either way. A ring's write index is read in the same
//! request as its slots, so the order and the records are of one moment.

use std::ops::Range;

use ::opcua::types::{DataValue, NodeId, NumericRange, ReadValueId, Variant};
use takt_core::RawRecord;

use super::config::{
    FifoOrder, Layout, NodeRef, OptionsFormat, RecordNodes, SourceConfig, WriteIndex,
};
use super::connection::LinkError;
use super::decode::{self, FieldError, RecordValues};

/// One FIFO slot as read: empty (nothing ever written), a record, or why it is not one.
pub(crate) type Slot = Option<Result<RawRecord, FieldError>>;

/// The NodeIds of a source on the server it is connected to.
#[derive(Debug)]
pub(crate) struct Nodes {
    pub(crate) trigger: NodeId,
    pub(crate) ack: Option<NodeId>,
    pub(crate) no_handshake: Option<NodeId>,
    /// Handshake: the record's nodes.
    pub(crate) record: Option<RecordIds>,
    pub(crate) fifo: Option<FifoNodes>,
    pub(crate) running: Option<NodeId>,
    pub(crate) stop_reason: Option<NodeId>,
}

/// The nodes of one record's fields (or of the field arrays of a FIFO).
#[derive(Debug)]
pub(crate) struct RecordIds {
    seq: NodeId,
    vin: NodeId,
    body: Option<NodeId>,
    model: NodeId,
    options: NodeId,
}

/// Where a FIFO keeps its slots.
#[derive(Debug)]
enum SlotStore {
    /// One node per field and slot, in slot order.
    Nodes(Vec<RecordIds>),
    /// One array per field; slot `i` is element `first + i`.
    Arrays { fields: RecordIds, first: usize },
}

/// A FIFO on the server: its slots, their order, and a ring's write index.
#[derive(Debug)]
pub(crate) struct FifoNodes {
    store: SlotStore,
    len: usize,
    order: FifoOrder,
    /// A ring's write index, its meaning, and the element number of slot 0.
    write_index: Option<(NodeId, WriteIndex, usize)>,
}

pub(crate) fn node(text: &str, ns: u16) -> Result<NodeId, LinkError> {
    NodeRef::parse(text)
        .map(|n| n.resolve(ns))
        .map_err(LinkError)
}

fn optional(text: Option<&str>, ns: u16) -> Result<Option<NodeId>, LinkError> {
    text.map(|t| node(t, ns)).transpose()
}

impl Nodes {
    pub(crate) fn resolve(cfg: &SourceConfig, ns: u16) -> Result<Self, LinkError> {
        let (running, stop_reason) = match &cfg.line_state {
            Some(state) => (
                Some(node(&state.running, ns)?),
                optional(state.stop_reason.as_deref(), ns)?,
            ),
            None => (None, None),
        };
        Ok(match &cfg.layout {
            Layout::Handshake {
                record,
                trigger,
                ack,
                no_handshake,
                ..
            } => Self {
                trigger: node(trigger, ns)?,
                ack: Some(node(ack, ns)?),
                no_handshake: optional(no_handshake.as_deref(), ns)?,
                record: Some(RecordIds::new(record, ns)?),
                fifo: None,
                running,
                stop_reason,
            },
            Layout::Fifo {
                trigger,
                order,
                arrays,
                slot_count,
                first_index,
                write_index,
                write_index_points,
                ..
            } => {
                let (store, len) = match arrays {
                    Some(fields) => (
                        SlotStore::Arrays {
                            fields: RecordIds::new(fields, ns)?,
                            first: *first_index,
                        },
                        *slot_count,
                    ),
                    None => {
                        let slots = cfg
                            .fifo_slots()
                            .iter()
                            .map(|slot| RecordIds::new(slot, ns))
                            .collect::<Result<Vec<_>, _>>()?;
                        let len = slots.len();
                        (SlotStore::Nodes(slots), len)
                    }
                };
                let write_index = optional(write_index.as_deref(), ns)?
                    .map(|id| (id, *write_index_points, *first_index));
                Self {
                    trigger: node(trigger, ns)?,
                    ack: None,
                    no_handshake: None,
                    record: None,
                    fifo: Some(FifoNodes {
                        store,
                        len,
                        order: *order,
                        write_index,
                    }),
                    running,
                    stop_reason,
                }
            }
        })
    }

    /// Nodes whose changes the source reacts to. The acknowledgement is among them: a PLC
    /// that clears it to present the same record again changes nothing else.
    pub(crate) fn watched(&self) -> Vec<NodeId> {
        let mut nodes = vec![self.trigger.clone()];
        nodes.extend(self.ack.clone());
        nodes.extend(self.no_handshake.clone());
        nodes.extend(self.running.clone());
        nodes.extend(self.stop_reason.clone());
        nodes
    }
}

impl RecordIds {
    fn new(nodes: &RecordNodes, ns: u16) -> Result<Self, LinkError> {
        Ok(Self {
            seq: node(&nodes.seq, ns)?,
            vin: node(&nodes.vin, ns)?,
            body: optional(nodes.body.as_deref(), ns)?,
            model: node(&nodes.model, ns)?,
            options: node(&nodes.options, ns)?,
        })
    }

    fn ids(&self) -> impl Iterator<Item = &NodeId> {
        [&self.seq, &self.vin]
            .into_iter()
            .chain(self.body.as_ref())
            .chain([&self.model, &self.options])
    }

    pub(crate) fn push_ids(&self, out: &mut Vec<NodeId>) {
        out.extend(self.ids().cloned());
    }

    fn push_reads(&self, range: &NumericRange, out: &mut Vec<ReadValueId>) {
        out.extend(self.ids().map(|id| ReadValueId {
            index_range: range.clone(),
            ..ReadValueId::from(id.clone())
        }));
    }

    fn field_count(&self) -> usize {
        4 + usize::from(self.body.is_some())
    }

    /// Picks this record's values off the front of `values` (as laid out by `push_ids`).
    pub(crate) fn take<'a>(
        &self,
        values: &mut impl Iterator<Item = &'a DataValue>,
    ) -> Option<RecordValues<'a>> {
        Some(RecordValues {
            seq: values.next()?,
            vin: values.next()?,
            body: match self.body {
                Some(_) => Some(values.next()?),
                None => None,
            },
            model: values.next()?,
            options: values.next()?,
        })
    }
}

/// A read of a FIFO's slots `range` (slot numbers, 0-based), waiting for its values.
#[derive(Debug)]
pub(crate) struct SlotRead {
    pub(crate) request: Vec<ReadValueId>,
    range: Range<usize>,
}

impl FifoNodes {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn order(&self) -> FifoOrder {
        self.order
    }

    /// The two newest slots, newest first, if the layout says where they are without reading
    /// anything else first (a ring's depend on its write index: `None`).
    pub(crate) fn head(&self) -> Option<(usize, usize)> {
        match self.order {
            _ if self.len < 2 => None,
            FifoOrder::NewestFirst => Some((0, 1)),
            FifoOrder::OldestFirst => Some((self.len - 1, self.len - 2)),
            FifoOrder::Ring => None,
        }
    }

    /// A read of the slots in `range` (the whole FIFO: `0..len`), with a ring's write index
    /// first when `range` is everything.
    pub(crate) fn read(&self, range: Range<usize>) -> SlotRead {
        let mut request = Vec::new();
        if range == (0..self.len)
            && let Some((index, ..)) = &self.write_index
        {
            request.push(ReadValueId::from(index.clone()));
        }
        match &self.store {
            SlotStore::Nodes(slots) => {
                let mut ids = Vec::new();
                for slot in &slots[range.clone()] {
                    slot.push_ids(&mut ids);
                }
                request.extend(ids.into_iter().map(ReadValueId::from));
            }
            SlotStore::Arrays { fields, first } => {
                let elements = NumericRange::Range(
                    index_u32(first + range.start),
                    index_u32(first + range.end - 1),
                );
                let elements = if range.len() == 1 {
                    NumericRange::Index(index_u32(first + range.start))
                } else {
                    elements
                };
                fields.push_reads(&elements, &mut request);
            }
        }
        SlotRead { request, range }
    }

    /// The slots of a read, in slot order, and for a whole read of a ring where its oldest
    /// slot is. A value of the wrong shape (not an array, too short, a write index that is
    /// not a slot) is a layout mismatch: the `Err` names it.
    pub(crate) fn slots(
        &self,
        read: &SlotRead,
        values: &[DataValue],
        format: &OptionsFormat,
    ) -> Result<(Vec<Slot>, Option<usize>), String> {
        let mut values = values.iter();
        let oldest = match (&self.write_index, read.range == (0..self.len)) {
            (Some((_, points, first)), true) => {
                let dv = values.next().ok_or("short read of the write index")?;
                Some(self.ring_oldest(dv, *points, *first)?)
            }
            _ => None,
        };
        let slots = match &self.store {
            SlotStore::Nodes(nodes) => {
                let mut slots = Vec::with_capacity(read.range.len());
                for slot in &nodes[read.range.clone()] {
                    let fields = slot.take(&mut values).ok_or("short read of the FIFO")?;
                    slots.push(decode_slot(&fields, format));
                }
                slots
            }
            SlotStore::Arrays { fields, first } => {
                let rest: Vec<&DataValue> = values.collect();
                let elements = first + read.range.start..first + read.range.end;
                array_slots(fields, &rest, elements, format)?
            }
        };
        Ok((slots, oldest))
    }

    /// The slot a ring's write index says is oldest.
    fn ring_oldest(
        &self,
        dv: &DataValue,
        points: WriteIndex,
        first: usize,
    ) -> Result<usize, String> {
        let index = decode::value("write_index", dv)
            .and_then(|v| decode::number("write_index", v))
            .map_err(|e| e.to_string())?;
        let slot = (index as usize)
            .checked_sub(first)
            .filter(|slot| *slot < self.len)
            .ok_or_else(|| {
                format!(
                    "write_index {index} is not a slot (elements {first}..={})",
                    first + self.len - 1
                )
            })?;
        Ok(match points {
            WriteIndex::Next => slot,
            WriteIndex::Last => (slot + 1) % self.len,
        })
    }

    /// `slots` (one whole read, in slot order) oldest first, empty slots left out.
    pub(crate) fn oldest_first(
        &self,
        mut slots: Vec<Slot>,
        ring_oldest: Option<usize>,
    ) -> Vec<Result<RawRecord, FieldError>> {
        match self.order {
            FifoOrder::NewestFirst => slots.reverse(),
            FifoOrder::OldestFirst => {}
            FifoOrder::Ring => slots.rotate_left(ring_oldest.unwrap_or(0)),
        }
        slots.into_iter().flatten().collect()
    }
}

fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn decode_slot(fields: &RecordValues<'_>, format: &OptionsFormat) -> Slot {
    (!fields.is_empty_slot()).then(|| fields.decode(format))
}

/// Field arrays → one record per slot: element `i` of every array is slot `i`. `elements` are
/// the element numbers that were asked for.
fn array_slots(
    fields: &RecordIds,
    values: &[&DataValue],
    elements: Range<usize>,
    format: &OptionsFormat,
) -> Result<Vec<Slot>, String> {
    let count = elements.len();
    if values.len() != fields.field_count() {
        return Err("short read of the field arrays".into());
    }
    let names: &[&'static str] = if fields.body.is_some() {
        &["seq", "vin", "body", "model", "options"]
    } else {
        &["seq", "vin", "model", "options"]
    };
    let mut columns = Vec::with_capacity(values.len());
    for (name, dv) in names.iter().zip(values) {
        columns.push(column(name, dv, elements.clone())?);
    }
    let mut slots = Vec::with_capacity(count);
    for i in 0..count {
        let mut cells = columns.iter().map(|column| &column[i]);
        let mut next = || cells.next().expect("one cell per field");
        let fields = RecordValues {
            seq: next(),
            vin: next(),
            body: if fields.body.is_some() {
                Some(next())
            } else {
                None
            },
            model: next(),
            options: next(),
        };
        slots.push(decode_slot(&fields, format));
    }
    Ok(slots)
}

/// The asked-for `elements` of one field array, each as a value of its own. A server that
/// honours the index range answers just those; one that ignores it (Python asyncua does)
/// answers the whole array, from which they are cut here.
fn column(
    field: &'static str,
    dv: &DataValue,
    elements: Range<usize>,
) -> Result<Vec<DataValue>, String> {
    let count = elements.len();
    let value = decode::value(field, dv).map_err(|e| format!("array {e}"))?;
    let answered: Vec<&Variant> = match value {
        Variant::Array(array) => array.values.iter().collect(),
        // One element asked for: some servers answer it as a scalar.
        scalar if count == 1 => vec![scalar],
        other => {
            return Err(format!(
                "array {field}: {} where the layout reads an array",
                decode::describe(other)
            ));
        }
    };
    let cut = if answered.len() == count {
        &answered[..]
    } else {
        answered.get(elements.clone()).ok_or_else(|| {
            format!(
                "array {field}: {} elements where the layout reads elements {}..={} \
                 (first_index, slot_count)",
                answered.len(),
                elements.start,
                elements.end - 1
            )
        })?
    };
    Ok(cut
        .iter()
        .map(|v| DataValue::value_only((*v).clone()))
        .collect())
}
