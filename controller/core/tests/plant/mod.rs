//! A small plant around the core for scenario tests: feeds inputs at a controllable time and
//! collects what comes out.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use takt_core::config::Blink;
use takt_core::io::{Action, Change, DeviceIntent, Input, Outcome, StreamEvent};
use takt_core::model::{CallStatus, LightTarget, RackStatus};
use takt_core::{AlarmKind, AlarmState, ConfigIndex, Core, PlantConfig, RawRecord};
use takt_core::{PickingInput, SequencingInput};

pub fn config() -> Arc<ConfigIndex> {
    config_with(|_| {})
}

/// The fixture, changed by `edit` before it is indexed.
pub fn config_with(edit: impl FnOnce(&mut PlantConfig)) -> Arc<ConfigIndex> {
    let text = include_str!("../fixtures/small.toml");
    let mut cfg: PlantConfig = toml::from_str(text).expect("fixture parses");
    edit(&mut cfg);
    Arc::new(cfg.index().expect("fixture is valid"))
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 6, 0, 0).unwrap()
}

/// A legal 17-character VIN numbered `n`.
pub fn vin(n: u32) -> String {
    format!("WVWZZZ1JZ{n:08}")
}

pub fn rec(seq: u32, n: u32, model: &str, options: &[&str]) -> RawRecord {
    RawRecord {
        seq,
        vin: vin(n),
        body: format!("B{n}"),
        model: model.into(),
        options: options.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// An ordinary vehicle: model M1, leather seat, red bumper.
pub fn std_rec(seq: u32, n: u32) -> RawRecord {
    rec(seq, n, "M1", &["SEAT=LTHR", "COLOR=RED"])
}

pub struct Plant {
    pub core: Core,
    pub now: DateTime<Utc>,
    /// Everything released since the last `drain`.
    pub actions: Vec<Action>,
    pub changes: Vec<Change>,
    /// Take the core's projection rows after this many inputs (the runtime takes them once per
    /// group commit); [`Plant::take_changes`] takes the rest.
    pub take_every: usize,
    pub untaken: usize,
}

impl Plant {
    pub fn new() -> Self {
        Self::on(config())
    }

    pub fn on(config: Arc<ConfigIndex>) -> Self {
        Self {
            core: Core::new(config),
            now: t0(),
            actions: Vec::new(),
            changes: Vec::new(),
            take_every: 1,
            untaken: 0,
        }
    }

    pub fn at(&mut self, secs: i64) -> &mut Self {
        self.now += TimeDelta::seconds(secs);
        self
    }

    pub fn input(&mut self, input: Input) -> Outcome {
        let out = self.core.handle(self.now, &input);
        while let Some(a) = self.core.poll_action() {
            self.actions.push(a);
        }
        self.untaken += 1;
        if self.untaken >= self.take_every {
            self.take_changes();
        }
        out
    }

    pub fn take_changes(&mut self) {
        self.changes.extend(self.core.take_changes());
        self.untaken = 0;
    }

    pub fn bc(&mut self, record: RawRecord) -> Outcome {
        self.input(Input::Sequencing(SequencingInput::Broadcast {
            line: "L".into(),
            point: "B1".into(),
            record,
        }))
    }

    pub fn press(&mut self, button: LightTarget) -> Outcome {
        self.input(Input::Picking(PickingInput::Press {
            station: "P1".into(),
            button,
        }))
    }

    pub fn bin(&mut self, id: &str) -> Outcome {
        self.press(LightTarget::Bin(id.into()))
    }

    pub fn slot(&mut self, n: u32) -> Outcome {
        self.press(LightTarget::Slot(n))
    }

    /// Pick and put whatever the station shows, `n` times.
    pub fn work(&mut self, n: usize) {
        for _ in 0..n {
            for _ in 0..2 {
                let target = self.core.task("P1").expect("a task is lit").kind.clone();
                let out = match target {
                    takt_core::model::TaskKind::Pick { bin } => self.bin(&bin),
                    takt_core::model::TaskKind::Put { slot, .. } => self.slot(slot),
                };
                assert_eq!(out, Outcome::Applied);
            }
        }
    }

    pub fn tick(&mut self) -> Outcome {
        self.input(Input::TICK)
    }

    pub fn drain(&mut self) -> Vec<Action> {
        self.changes.clear();
        std::mem::take(&mut self.actions)
    }

    /// Sequence numbers of live vehicles in position order.
    pub fn live_seqs(&self) -> Vec<u32> {
        let mut v: Vec<_> = self
            .core
            .vehicles()
            .map(|v| (v.pos, v.seq.value()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, s)| s).collect()
    }

    /// (seq, part, status) of every live call of a family, in sequence order.
    pub fn calls(&self, family: &str) -> Vec<(u32, Option<String>, CallStatus)> {
        let mut v: Vec<_> = self
            .core
            .calls()
            .filter(|c| c.family == family)
            .map(|c| (c.pos, c.seq.value(), c.part.clone(), c.status))
            .collect();
        v.sort_by_key(|x| x.0);
        v.into_iter().map(|(_, s, p, st)| (s, p, st)).collect()
    }

    pub fn alarm_state(&self, kind: AlarmKind, subject: &str) -> AlarmState {
        self.core
            .alarm(kind, subject)
            .map_or(AlarmState::Normal, |a| a.state)
    }

    pub fn rack_status(&self, id: &str) -> Option<RackStatus> {
        self.core.racks().find(|r| r.id == id).map(|r| r.status)
    }
}

/// Device intents among actions, as short strings: `on A1 green 1`, `off slot 2`, `err A2`.
pub fn lights(actions: &[Action]) -> Vec<String> {
    let t = |t: &LightTarget| match t {
        LightTarget::Bin(b) => b.clone(),
        LightTarget::Slot(s) => format!("slot {s}"),
    };
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Device(DeviceIntent::Light {
                target,
                colour,
                digits,
                blink,
                ..
            }) => Some(if *blink != Blink::Steady {
                format!("err {}", t(target))
            } else {
                format!(
                    "on {} {colour:?} {}",
                    t(target),
                    digits.map_or("-".into(), |d| d.to_string())
                )
            }),
            Action::Device(DeviceIntent::Off { target, .. }) => Some(format!("off {}", t(target))),
            Action::Device(DeviceIntent::AllOff { .. }) => Some("all off".into()),
            _ => None,
        })
        .collect()
}

/// Stream events among actions, as short strings: `created 1 seat`, `cancelled 3 bumper`.
pub fn events(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stream(StreamEvent::CallCreated(c)) => {
                Some(format!("created {} {}", c.seq.value(), c.family))
            }
            Action::Stream(StreamEvent::CallChanged(c)) => Some(format!(
                "changed {} {} {:?}",
                c.seq.value(),
                c.family,
                c.status
            )),
            Action::Stream(StreamEvent::CallCancelled(c)) => {
                Some(format!("cancelled {} {}", c.seq.value(), c.family))
            }
            Action::Stream(StreamEvent::RackClosed(r)) => Some(format!("rack closed {}", r.id)),
            _ => None,
        })
        .collect()
}
