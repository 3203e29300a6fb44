//! Racks: filled strictly in sequence, closed when full or by hand, shipped, delivered.

use chrono::{DateTime, Utc};

use super::Core;
use crate::alarm::AlarmKind;
use crate::io::{Outcome, StreamEvent};
use crate::model::{CallId, CallStatus, Rack, RackStatus};

impl Core {
    /// The family's open rack, opening a new one if there is none.
    fn open_rack(&mut self, now: DateTime<Utc>, family: &str) -> String {
        if let Some(id) = self.state.picking.open_racks.get(family) {
            return id.clone();
        }
        let size = self.cfg.family(family).map_or(1, |f| f.rack_size);
        let id = self.state.picking.open_rack(now, family, size);
        self.changed_rack(&id);
        id
    }

    /// The next free slot of the family's open rack, for a put about to happen.
    pub(super) fn reserve_slot(&mut self, now: DateTime<Utc>, family: &str) -> (String, u32) {
        let rack = self.open_rack(now, family);
        let slot = self
            .state
            .picking
            .racks
            .get(&rack)
            .and_then(|r| r.slots.iter().position(Option::is_none))
            .map_or(1, |i| i as u32 + 1);
        (rack, slot)
    }

    pub(super) fn fill_slot(&mut self, now: DateTime<Utc>, rack: &str, slot: u32, cid: CallId) {
        let Some(r) = self.state.picking.racks.get_mut(rack) else {
            return;
        };
        if let Some(s) = r.slots.get_mut(slot as usize - 1) {
            *s = Some(cid);
        }
        r.changed_at = now;
        let full = r.slots.iter().all(Option::is_some);
        self.changed_rack(rack);
        if full {
            self.close_rack(now, rack);
        }
    }

    fn close_rack(&mut self, now: DateTime<Utc>, rack: &str) {
        let Some(r) = self.state.picking.racks.get_mut(rack) else {
            return;
        };
        r.status = RackStatus::Closed;
        r.changed_at = now;
        let r = r.clone();
        self.state.picking.open_racks.remove(&r.family);
        self.changed_rack(rack);
        self.stream(StreamEvent::RackClosed(r));
        self.retire_rack_if_done(rack);
    }

    pub(super) fn close_rack_by_hand(&mut self, now: DateTime<Utc>, family: &str) -> Outcome {
        let Some(rack) = self.state.picking.open_racks.get(family).cloned() else {
            return Outcome::Rejected(format!("family `{family}` has no open rack"));
        };
        let pending_put = self.state.picking.pending_put(&rack);
        if let Some(slot) = pending_put {
            return Outcome::Rejected(format!("rack {rack} has a put pending in slot {slot}"));
        }
        if self.state.picking.racks.get(&rack).map_or(0, Rack::filled) == 0 {
            return Outcome::Rejected(format!("rack {rack} is empty"));
        }
        self.close_rack(now, &rack);
        Outcome::Applied
    }

    pub(super) fn move_rack(&mut self, now: DateTime<Utc>, rack: &str, to: RackStatus) -> Outcome {
        let Some(r) = self.state.picking.racks.get(rack) else {
            return Outcome::Rejected(format!("no rack `{rack}` in the live state"));
        };
        let allowed = matches!(
            (r.status, to),
            (RackStatus::Closed, RackStatus::Shipped)
                | (RackStatus::Closed, RackStatus::Delivered)
                | (RackStatus::Shipped, RackStatus::Delivered)
        );
        if !allowed {
            return Outcome::Rejected(format!(
                "rack {rack} is {:?}; cannot become {to:?}",
                r.status
            ));
        }
        let calls: Vec<CallId> = r.slots.iter().flatten().copied().collect();
        let call_status = if to == RackStatus::Delivered {
            CallStatus::Delivered
        } else {
            CallStatus::Shipped
        };
        if let Some(r) = self.state.picking.racks.get_mut(rack) {
            r.status = to;
            r.changed_at = now;
            let moved = r.clone();
            self.stream(StreamEvent::RackMoved(moved));
        }
        self.changed_rack(rack);
        for cid in calls {
            let movable = self.state.sequencing.calls.get(&cid).is_some_and(|c| {
                !c.status.is_final() && c.status < call_status && c.short_shipped.is_none()
            });
            if movable {
                self.set_call_status(now, cid, call_status);
            }
        }
        if to == RackStatus::Delivered {
            self.out_of_sequence(now, rack);
            self.rack_delivered(now, rack);
        }
        Outcome::Applied
    }

    /// A rack delivered while an earlier one of its family is still on its way: the line gets
    /// its parts out of order, a sequence error.
    fn out_of_sequence(&mut self, now: DateTime<Utc>, rack: &str) {
        let Some(r) = self.state.picking.racks.get(rack) else {
            return;
        };
        let earlier = self
            .state
            .picking
            .racks
            .values()
            .filter(|e| {
                e.family == r.family
                    && e.number < r.number
                    && matches!(e.status, RackStatus::Closed | RackStatus::Shipped)
            })
            .map(|e| e.id.clone())
            .next();
        if let Some(earlier) = earlier {
            let family = r.family.clone();
            self.alarm_event(
                now,
                AlarmKind::SequenceError,
                &family,
                format!("rack {rack} reached the line before rack {earlier}"),
            );
        }
    }

    /// A rack no longer open whose calls have all left the live state leaves it too.
    pub(super) fn retire_rack_if_done(&mut self, rack: &str) {
        let done = self.state.picking.racks.get(rack).is_some_and(|r| {
            r.status != RackStatus::Open
                && r.slots
                    .iter()
                    .flatten()
                    .all(|c| !self.state.sequencing.calls.contains_key(c))
        });
        if done {
            self.changed_leaving(super::ChangeKey::Rack(rack.to_owned()));
            self.state.picking.racks.remove(rack);
            // A shipped rack whose calls all left (installed, missed, cancelled) before anyone
            // reported it delivered: its shipment may be done all the same.
            self.rack_delivered(self.now, rack);
        }
    }
}
