//! Pick-to-light / put-to-light: one task at a time per station, strictly in sequence.

use chrono::{DateTime, Utc};

use super::Core;
use crate::alarm::AlarmKind;
use crate::config::{Blink, LampColour};
use crate::io::{DeviceIntent, Outcome};
use crate::model::{CallId, CallStatus, LightTarget, Task, TaskKind, TaskStatus};

impl Core {
    /// Light the next pick if the station is idle and the next call can be picked.
    pub(super) fn start_next(&mut self, now: DateTime<Utc>, station: &str) {
        let Some(st) = self.state.picking.stations.get(station) else {
            return;
        };
        if st.task.is_some() {
            return;
        }
        let Some(&(_, cid)) = st.queue.first() else {
            return;
        };
        // An unresolved call blocks the station: picking past it would put every later part in
        // the wrong slot. Its alarm is already raised; a correction or ResolveCall unblocks it.
        let Some(part) = self
            .state
            .sequencing
            .calls
            .get(&cid)
            .and_then(|c| c.part.clone())
        else {
            return;
        };
        let Some(bin) = self
            .cfg
            .station(station)
            .and_then(|s| s.bins.iter().find(|b| b.part == part))
            .map(|b| b.id.clone())
        else {
            return;
        };
        let task = self.new_task(now, station, cid, TaskKind::Pick { bin });
        self.open_task(station, task);
    }

    fn new_task(
        &mut self,
        now: DateTime<Utc>,
        station: &str,
        call: CallId,
        kind: TaskKind,
    ) -> Task {
        let id = self.state.picking.next_task_id();
        Task {
            id,
            station: station.to_owned(),
            call,
            kind,
            status: TaskStatus::Open,
            created_at: now,
            changed_at: now,
        }
    }

    fn open_task(&mut self, station: &str, task: Task) {
        let light = self.task_light(station, &task);
        self.changed_task(&task);
        if let Some(st) = self.state.picking.stations.get_mut(station) {
            st.task = Some(task);
        }
        self.device(light);
    }

    /// Close the station's open task as done or cancelled and turn its light off.
    fn end_task(&mut self, now: DateTime<Utc>, station: &str, status: TaskStatus) -> Option<Task> {
        let st = self.state.picking.stations.get_mut(station)?;
        let mut task = st.task.take()?;
        task.status = status;
        task.changed_at = now;
        self.changed_task(&task);
        self.device(DeviceIntent::Off {
            station: station.to_owned(),
            target: task.target(),
        });
        Some(task)
    }

    pub(super) fn task_light(&self, station: &str, task: &Task) -> DeviceIntent {
        let sc = self.cfg.station(station);
        let (colour, blink, digits) = match &task.kind {
            TaskKind::Pick { bin } => (
                sc.map_or(LampColour::Green, |s| s.pick_colour),
                sc.map_or(Blink::Steady, |s| s.pick_blink),
                sc.and_then(|s| s.bins.iter().find(|b| b.id == *bin))
                    .map(|b| b.qty),
            ),
            TaskKind::Put { slot, .. } => (
                sc.map_or(LampColour::Blue, |s| s.put_colour),
                sc.map_or(Blink::Steady, |s| s.put_blink),
                Some(*slot),
            ),
        };
        DeviceIntent::Light {
            station: station.to_owned(),
            target: task.target(),
            colour,
            digits,
            blink,
        }
    }

    pub(super) fn error_light(&self, station: &str, target: LightTarget) -> DeviceIntent {
        let sc = self.cfg.station(station);
        DeviceIntent::Light {
            station: station.to_owned(),
            target,
            colour: sc.map_or(LampColour::Red, |s| s.error_colour),
            digits: None,
            blink: sc.map_or(Blink::Fast, |s| s.error_blink),
        }
    }

    fn clear_errors(&mut self, station: &str) {
        let Some(st) = self.state.picking.stations.get_mut(station) else {
            return;
        };
        for target in std::mem::take(&mut st.errors) {
            self.device(DeviceIntent::Off {
                station: station.to_owned(),
                target,
            });
        }
    }

    pub(super) fn press(
        &mut self,
        now: DateTime<Utc>,
        station: &str,
        button: LightTarget,
    ) -> Outcome {
        let Some(sc) = self.cfg.station(station) else {
            return Outcome::Rejected(format!("no station `{station}`"));
        };
        let Some(st) = self.state.picking.stations.get(station) else {
            return Outcome::Rejected(format!("station `{station}` builds no family"));
        };
        let rack_size = self.cfg.family(&st.family).map_or(0, |f| f.rack_size);
        match &button {
            LightTarget::Bin(b) if !sc.bins.iter().any(|x| x.id == *b) => {
                return Outcome::Rejected(format!("station `{station}` has no bin `{b}`"));
            }
            LightTarget::Slot(s) if *s == 0 || *s > rack_size => {
                return Outcome::Rejected(format!(
                    "station `{station}` has no slot {s} (1..={rack_size})"
                ));
            }
            _ => {}
        }
        let expected = st.task.as_ref().map(Task::target);
        if expected.as_ref() != Some(&button)
            && let Some((_, at)) = st.confirmed.as_ref().filter(|(b, _)| *b == button)
        {
            let since = (now - *at).num_milliseconds();
            if u64::try_from(since).is_ok_and(|ms| ms <= sc.repeat_press_ms)
                && sc.repeat_press_ms > 0
            {
                return Outcome::Ignored(format!(
                    "{} pressed again {since} ms after it confirmed its task",
                    describe(&button)
                ));
            }
        }
        if expected.as_ref() != Some(&button) {
            let kind = match button {
                LightTarget::Bin(_) => AlarmKind::WrongPick,
                LightTarget::Slot(_) => AlarmKind::WrongPut,
            };
            let wanted = expected.map_or("nothing".to_owned(), |t| describe(&t));
            self.alarm_event(
                now,
                kind,
                station,
                format!("{} pressed, {wanted} was lit", describe(&button)),
            );
            let light = self.error_light(station, button.clone());
            if let Some(st) = self.state.picking.stations.get_mut(station) {
                st.errors.insert(button);
            }
            self.device(light);
            return Outcome::Applied;
        }
        self.clear_errors(station);
        if let Some(st) = self.state.picking.stations.get_mut(station) {
            st.confirmed = Some((button, now));
        }
        let Some(task) = self.end_task(now, station, TaskStatus::Done) else {
            return Outcome::Applied;
        };
        match task.kind {
            TaskKind::Pick { .. } => self.picked(now, station, task.call),
            TaskKind::Put { rack, slot } => {
                self.set_call_status(now, task.call, CallStatus::Put);
                self.fill_slot(now, &rack, slot, task.call);
                self.start_next(now, station);
            }
        }
        Outcome::Applied
    }

    fn picked(&mut self, now: DateTime<Utc>, station: &str, cid: CallId) {
        self.set_call_status(now, cid, CallStatus::Picked);
        let Some(call) = self.state.sequencing.calls.get(&cid) else {
            return;
        };
        let (pos, family) = (call.pos, call.family.clone());
        if let Some(st) = self.state.picking.stations.get_mut(station) {
            st.queue.remove(&(pos, cid));
        }
        let (rack, slot) = self.reserve_slot(now, &family);
        if let Some(call) = self.state.sequencing.calls.get_mut(&cid) {
            call.rack = Some(rack.clone());
            call.slot = Some(slot);
        }
        self.changed_call(cid);
        let task = self.new_task(now, station, cid, TaskKind::Put { rack, slot });
        self.open_task(station, task);
    }

    pub(super) fn set_call_status(&mut self, now: DateTime<Utc>, cid: CallId, status: CallStatus) {
        if let Some(call) = self.state.sequencing.calls.get_mut(&cid) {
            call.status = status;
            call.changed_at = now;
            // Kept apart from `changed_at`, which the next change overwrites: the shared KPIs
            // measure lead times to these.
            match status {
                CallStatus::Shipped => call.shipped_at = Some(now),
                CallStatus::Delivered => call.delivered_at = Some(now),
                _ => {}
            }
        }
        self.call_event_changed(cid);
    }

    /// The call no longer goes through its station: out of the queue, its task cancelled.
    pub(super) fn drop_from_station(&mut self, now: DateTime<Utc>, cid: CallId) {
        let Some(call) = self.state.sequencing.calls.get(&cid) else {
            return;
        };
        let Some(station) = self
            .cfg
            .family(&call.family)
            .and_then(|f| f.station.clone())
        else {
            return;
        };
        let pos = call.pos;
        let Some(st) = self.state.picking.stations.get_mut(&station) else {
            return;
        };
        st.queue.remove(&(pos, cid));
        if st.task.as_ref().is_some_and(|t| t.call == cid) {
            self.end_task(now, &station, TaskStatus::Cancelled);
            self.start_next(now, &station);
        }
    }

    /// A not-yet-picked call changed its part: the lit bin may be the wrong one now.
    pub(super) fn relight_if_picking(&mut self, now: DateTime<Utc>, cid: CallId) {
        let Some(station) = self
            .state
            .sequencing
            .calls
            .get(&cid)
            .and_then(|c| self.cfg.family(&c.family))
            .and_then(|f| f.station.clone())
        else {
            return;
        };
        let picking = self
            .state
            .picking
            .stations
            .get(&station)
            .and_then(|s| s.task.as_ref())
            .is_some_and(|t| t.call == cid && matches!(t.kind, TaskKind::Pick { .. }));
        if picking {
            self.end_task(now, &station, TaskStatus::Cancelled);
        }
        self.start_next(now, &station);
    }

    pub(super) fn reset_station(&mut self, station: &str) -> Outcome {
        if !self.state.picking.stations.contains_key(station) {
            return Outcome::Rejected(format!("no station `{station}`"));
        }
        if let Some(st) = self.state.picking.stations.get_mut(station) {
            st.errors.clear();
        }
        self.device(DeviceIntent::AllOff {
            station: station.to_owned(),
        });
        for light in self.station_lights(station) {
            self.device(light);
        }
        Outcome::Applied
    }
}

fn describe(t: &LightTarget) -> String {
    match t {
        LightTarget::Bin(b) => format!("bin {b}"),
        LightTarget::Slot(s) => format!("slot {s}"),
    }
}
