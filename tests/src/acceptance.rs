//! The acceptance run, shared by the acceptance tests and the soak: sim-line plays a scenario
//! on the floor of `sim-line/floor.toml` with operators who pick wrong 2 % of the time, against
//! the `takt` binary on the example configuration — the demo, on free ports and at 300× speed —
//! killing the controller (SIGKILL) after the vehicles named. Afterwards the controller's
//! journal is replayed through a fresh core and compared with sim-line's ground truth
//! ([`Run::check`]); [`Run::lags`] says how long each broadcast waited for the journal.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use std::sync::PoisonError;

use takt::api::events::EventView;
use takt::store::{EventReader, JournalEntry, Store};
use takt_core::identity::{Role, Scope};
use takt_core::model::CallStatus;
use takt_core::{Action, AlarmKind, Core, Input, Outcome, PlantConfig, StreamEvent};
use takt_sim_line::player::Sim;
use takt_sim_line::scenario::{Fault, Scenario};
use takt_sim_line::truth::{Entry, Fact, Truth};

use crate::driving::seed_tokens;
use crate::follower::{Follower, Received};
use crate::{Controller, eventually, example_config, floor, repo_root, wired_example};
use takt_core::{AlarmInput, PickingInput, SequencingInput};

/// 60 s of takt in 200 ms.
pub const ACCELERATION: f64 = 300.0;
/// Wrong picks per pick, as the issue asks.
const WRONG_PICK_RATE: f64 = 0.02;
/// How long the controller may take to finish the last tasks after the last broadcast.
const SETTLE: Duration = Duration::from_secs(90);

/// `sim-line/scenarios/demo.toml` at [`ACCELERATION`]: 300 vehicles, two session drops, a
/// server restart, a gap, three duplicates, a correction, two light-module reboots, a stop.
///
/// # Panics
/// If the shipped scenario does not parse.
#[must_use]
pub fn demo_scenario() -> Scenario {
    let mut scenario = Scenario::parse(
        &std::fs::read_to_string(repo_root().join("sim-line/scenarios/demo.toml"))
            .expect("demo scenario"),
    )
    .expect("demo scenario parses");
    scenario.acceleration = ACCELERATION;
    scenario
}

/// The demo scenario played `rounds` times in a row: `rounds × 300` vehicles, every fault and
/// stop of the demo in each round.
#[must_use]
pub fn repeated_demo(rounds: u32) -> Scenario {
    let demo = demo_scenario();
    let mut scenario = demo.clone();
    scenario.vehicles = demo.vehicles * rounds;
    scenario.faults = every_round(&demo.faults, rounds, demo.vehicles, |f| {
        &mut f.after_vehicle
    });
    scenario.stops = every_round(&demo.stops, rounds, demo.vehicles, |s| &mut s.after_vehicle);
    scenario
}

/// `plan` once per round, each round's copy moved on by `vehicles` (through `after_vehicle`).
fn every_round<T: Clone>(
    plan: &[T],
    rounds: u32,
    vehicles: u32,
    after_vehicle: impl Fn(&mut T) -> &mut u32,
) -> Vec<T> {
    let after_vehicle = &after_vehicle;
    (0..rounds)
        .flat_map(|round| {
            plan.iter().cloned().map(move |mut item| {
                *after_vehicle(&mut item) += round * vehicles;
                item
            })
        })
        .collect()
}

/// What a run left behind.
#[derive(Debug)]
pub struct Run {
    plant: Arc<takt_core::ConfigIndex>,
    scenario: Scenario,
    truth: Vec<Entry>,
    journal: Vec<JournalEntry>,
    /// When each SIGKILL was sent (Unix ms).
    killed_at: Vec<u64>,
    pub kills: usize,
    /// The event outbox at the end, and what the stream follower received through the kills.
    outbox: Vec<EventView>,
    streamed: Vec<Received>,
    stream_connects: u64,
}

/// Plays `scenario` against the `takt` binary, killing it after each vehicle in
/// `kill_after`; returns once every task is done and the controller has stopped.
///
/// # Panics
/// If the run does not settle, or anything it stands on fails.
pub async fn play(scenario: Scenario, kill_after: &[u32]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let plant: PlantConfig = toml::from_str(&example_config()).expect("example plant");
    let steps = scenario.plan(&plant).expect("plan");

    let mut floor = floor(dir.path());
    for operator in &mut floor.operators {
        // Long enough for two 10 ms polls of the debounce, short enough to keep up at 300×.
        operator.hold_ms = 40;
        if operator.bins.is_some() {
            operator.wrong_pick_rate = WRONG_PICK_RATE;
        }
    }
    let mut sim = Sim::start(
        &floor,
        &plant,
        "A1",
        scenario.acceleration,
        scenario.seed,
        Truth::in_memory(),
    )
    .await
    .expect("sim-line");
    let truth = sim.truth().clone();
    let config_path = dir.path().join("plant.toml");
    std::fs::write(&config_path, wired_example(&sim, dir.path())).expect("write config");
    let cfg = takt::config::load(&config_path).expect("wired example is valid");
    let reader = Scope::Role {
        role: Role::Supervisor,
    };
    let token = seed_tokens(&cfg, &[(reader, "acceptance stream follower")])
        .await
        .remove(0);

    let mut controller = Controller::start(dir.path(), &config_path).await;
    // A stream client that follows the outbox through every kill, as a supplier's would.
    let follower = Follower::start(&controller.base_url(), &token);
    let (_commands, mut no_commands) = tokio::sync::mpsc::channel(1);
    let player =
        tokio::spawn(async move { sim.play(&steps, 0, &mut no_commands).await.map(|()| sim) });

    let mut kills = 0;
    let mut killed_at = Vec::new();
    for &vehicle in kill_after {
        eventually(Duration::from_secs(120), "the vehicle to kill after", || {
            truth
                .entries()
                .iter()
                .any(|e| {
                    matches!(&e.fact, Fact::Broadcast { vehicle: v, point, .. } if *v == vehicle && point == "B1")
                })
                .then_some(())
        })
        .await;
        killed_at.push(unix_ms());
        controller.kill();
        kills += 1;
        controller = Controller::start(dir.path(), &config_path).await;
        *follower.base.lock().unwrap_or_else(PoisonError::into_inner) = controller.base_url();
    }
    let sim = player.await.expect("player task").expect("scenario played");

    // Every vehicle through both broadcast points and every task done.
    let last = (scenario.start_seq + scenario.vehicles) % 10_000;
    let settled = tokio::time::timeout(SETTLE, async {
        loop {
            let status = controller.status().await;
            let next = &status["lines"][0]["expected_seq"];
            if next["B1"] == last
                && next["B2"] == last
                && status["open_tasks"] == serde_json::json!([])
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let final_status = controller.status().await;
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("data/takt.db").display()
    ))
    .await
    .expect("the controller's store");
    // The follower has everything the outbox held at the end (while the controller runs).
    let outbox = read_outbox(&store).await;
    let newest = outbox.last().map_or(0, |e| e.id);
    eventually(SETTLE, "the stream follower to catch up", || {
        (follower.last_id() >= newest).then_some(())
    })
    .await;
    controller.terminate().await;
    sim.stop().await;
    let (streamed, stream_connects) = follower.stop().await;
    assert!(
        settled.is_ok(),
        "not settled {SETTLE:?} after the last broadcast: {final_status:#}"
    );

    let mut journal = Vec::new();
    loop {
        let after = journal.last().map_or(0, |e: &JournalEntry| e.id);
        let page = store.journal_after(after, 10_000).await.expect("journal");
        if page.is_empty() {
            break;
        }
        journal.extend(page);
    }
    store.close().await;
    Run {
        plant: Arc::new(cfg.plant),
        scenario,
        truth: truth.entries(),
        journal,
        killed_at,
        kills,
        outbox,
        streamed,
        stream_connects,
    }
}

/// The whole outbox, in id order.
async fn read_outbox(store: &Store) -> Vec<EventView> {
    let mut outbox: Vec<EventView> = Vec::new();
    loop {
        let after = outbox.last().map_or(0, |e| e.id);
        let page: Vec<EventView> = store
            .events_after(&EventReader::Plant, after, 10_000)
            .await
            .expect("outbox");
        if page.is_empty() {
            return outbox;
        }
        outbox.extend(page);
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What [`Run::check`] counted on its way, for a report.
#[derive(Debug)]
pub struct Tally {
    pub journal_entries: usize,
    pub faults: usize,
    pub session_losses: usize,
    /// Per broadcast point, `source_disconnected` raises journaled.
    pub source_raises: BTreeMap<&'static str, usize>,
    /// Per device, `device_offline` raises journaled.
    pub device_raises: BTreeMap<&'static str, usize>,
    pub device_reboots: usize,
    pub wrong_presses: usize,
    pub wrong_picks: usize,
    /// Right presses made again on a lamp that had not changed (an operator's retry).
    pub repeats: usize,
}

/// A record published this close before a link loss may have waited for it.
const LINK_MARGIN_MS: u64 = 500;
/// sim-line's truth is stamped in whole milliseconds, the journal in microseconds.
const CLOCK_SLACK_MS: u64 = 1;

/// How long broadcasts waited for the journal ([`Run::lags`]).
#[derive(Debug, Default)]
pub struct Lags {
    /// Per broadcast measured, ms from publication to the journal.
    pub ms: Vec<u64>,
    /// Published while the source was reconnecting or the controller restarting.
    pub while_down: usize,
    /// Duplicates of a record the source held already: nothing new to journal.
    pub held_already: usize,
}

/// What the journal says happened, replayed through a fresh core.
#[derive(Default)]
struct Replayed {
    /// (vin, family) → calls created.
    created: BTreeMap<(String, String), usize>,
    /// family → positions of its calls, as created.
    calls: BTreeMap<String, BTreeSet<u64>>,
    /// family → positions picked / put, in journal order.
    picked: BTreeMap<String, Vec<u64>>,
    put: BTreeMap<String, Vec<u64>>,
    cancelled: usize,
    /// Broadcasts applied with a payload other than the one applied before for that number.
    corrections_applied: usize,
    /// alarm kind → subject → times it went active.
    raised: BTreeMap<&'static str, BTreeMap<String, usize>>,
    duplicates_ignored: usize,
    presses: usize,
    /// (alarm kind, subject) → condition raises journaled (not only those that changed the
    /// alarm: a raise of an active alarm is journaled too, and is what floods the journal).
    condition_raises: BTreeMap<(&'static str, String), usize>,
}

impl Run {
    fn replay(&self) -> Replayed {
        let mut core = Core::new(self.plant.clone());
        let mut r = Replayed::default();
        let mut applied: BTreeMap<(String, u32), takt_core::RawRecord> = BTreeMap::new();
        for entry in &self.journal {
            let outcome = core.handle(entry.at, &entry.input);
            assert_eq!(
                outcome, entry.outcome,
                "journal entry {} replays to the outcome it was journaled with",
                entry.id
            );
            if let Outcome::Ignored(reason) = &outcome
                && reason.starts_with("duplicate")
            {
                r.duplicates_ignored += 1;
            }
            match &entry.input {
                Input::Picking(PickingInput::Press { .. }) => r.presses += 1,
                Input::Alarms(AlarmInput::Condition {
                    alarm,
                    subject,
                    active: true,
                    ..
                }) => {
                    *r.condition_raises
                        .entry((alarm.name(), subject.clone()))
                        .or_default() += 1;
                }
                Input::Sequencing(SequencingInput::Broadcast { point, record, .. })
                    if outcome == Outcome::Applied =>
                {
                    let before = applied.insert((point.clone(), record.seq), record.clone());
                    if before.is_some_and(|b| b != *record) {
                        r.corrections_applied += 1;
                    }
                }
                _ => {}
            }
            core.take_changes();
            while let Some(action) = core.poll_action() {
                match action {
                    Action::Stream(StreamEvent::CallCreated(call)) => {
                        r.calls
                            .entry(call.family.clone())
                            .or_default()
                            .insert(call.pos);
                        *r.created
                            .entry((call.vin.to_string(), call.family.clone()))
                            .or_default() += 1;
                    }
                    Action::Stream(StreamEvent::CallChanged(call)) => {
                        let done = match call.status {
                            CallStatus::Picked => &mut r.picked,
                            CallStatus::Put => &mut r.put,
                            _ => continue,
                        };
                        done.entry(call.family).or_default().push(call.pos);
                    }
                    Action::Stream(StreamEvent::CallCancelled(_)) => r.cancelled += 1,
                    // Events (a wrong pick) are raised and cleared at once; `occurrences`
                    // counts every time an alarm went active.
                    Action::Alarm(alarm) => {
                        let seen = r
                            .raised
                            .entry(alarm.key.kind.name())
                            .or_default()
                            .entry(alarm.key.subject.clone())
                            .or_default();
                        *seen = (*seen).max(alarm.occurrences as usize);
                    }
                    _ => {}
                }
            }
        }
        r
    }

    /// How long each broadcast waited between sim-line handing it to the PLC and the journal
    /// taking it (the time the core was given), for the records published while the controller
    /// was up and its source connected: what a stalled journal would show as a freeze.
    #[must_use]
    pub fn lags(&self) -> Lags {
        let at_ms = |e: &JournalEntry| e.at.timestamp_millis().max(0) as u64;
        // From a session loss or a kill until the source journals that it is connected
        // again: records published meanwhile waited for the link, not for the disk.
        let lost_at = |point: &str| -> Vec<(u64, u64)> {
            let subject = format!("{}/{point}", self.scenario_line());
            let mut starts: Vec<u64> = self
                .truth
                .iter()
                .filter(|e| {
                    matches!(&e.fact, Fact::Fault { fault } if matches!(fault, Fault::DropSessions | Fault::RestartServer))
                })
                .map(|e| e.unix_ms)
                .chain(self.killed_at.iter().copied())
                .collect();
            starts.sort_unstable();
            starts
                .into_iter()
                .map(|start| {
                    let back = self.journal.iter().find(|e| {
                        at_ms(e) > start
                            && matches!(&e.input, Input::Alarms(AlarmInput::Condition { alarm: AlarmKind::SourceDisconnected, subject: s, active: false, .. }) if *s == subject)
                    });
                    (start.saturating_sub(LINK_MARGIN_MS), back.map_or(u64::MAX, at_ms))
                })
                .collect()
        };
        let mut windows: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
        let mut lags = Lags::default();
        for e in &self.truth {
            let Fact::Broadcast { point, record, .. } = &e.fact else {
                continue;
            };
            let outages = windows
                .entry(point.as_str())
                .or_insert_with(|| lost_at(point));
            if outages
                .iter()
                .any(|&(from, to)| (from..=to).contains(&e.unix_ms))
            {
                lags.while_down += 1;
                continue;
            }
            let journaled = self.journal.iter().find(|j| {
                at_ms(j) + CLOCK_SLACK_MS >= e.unix_ms
                    && matches!(&j.input, Input::Sequencing(SequencingInput::Broadcast { point: p, record: r, .. }) if p == point && r == record)
            });
            match journaled {
                Some(j) => lags.ms.push(at_ms(j).saturating_sub(e.unix_ms)),
                // A duplicate of a record the source had just read is not read again.
                None => lags.held_already += 1,
            }
        }
        lags
    }

    fn scenario_line(&self) -> String {
        self.scenario.line.clone().unwrap_or_else(|| {
            self.plant
                .config
                .lines
                .first()
                .map(|l| l.id.clone())
                .unwrap_or_default()
        })
    }

    fn faults(&self) -> Vec<&Fault> {
        self.truth
            .iter()
            .filter_map(|e| match &e.fact {
                Fact::Fault { fault } => Some(fault),
                _ => None,
            })
            .collect()
    }

    /// Compares the journal, replayed, with the ground truth: every vehicle once, every call
    /// picked and put once in sequence, each fault of the scenario left its mark, one
    /// condition per outage, no nuisance wrong picks, lamps re-asserted after each reboot.
    ///
    /// # Panics
    /// At the first thing that does not hold.
    pub fn check(&self) -> Tally {
        self.check_stream();
        let r = self.replay();
        let cfg = &self.plant.config;

        // Every vehicle sim-line broadcast was accepted exactly once: one call per family
        // it needs, none cancelled.
        let vins: BTreeSet<&str> = self
            .truth
            .iter()
            .filter_map(|e| match &e.fact {
                Fact::Broadcast { record, .. } => Some(record.vin.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(vins.len(), self.scenario.vehicles as usize);
        let vins_with_calls: BTreeSet<&str> =
            r.created.keys().map(|(vin, _)| vin.as_str()).collect();
        assert_eq!(
            vins_with_calls, vins,
            "every vehicle has its calls, and no other"
        );
        let doubled: Vec<_> = r.created.iter().filter(|(_, n)| **n != 1).collect();
        assert!(
            doubled.is_empty(),
            "calls created more than once: {doubled:?}"
        );
        assert_eq!(r.cancelled, 0, "no call cancelled");

        // Every call of an in-plant family picked and put once, strictly in sequence.
        for family in cfg.families.iter().filter(|f| f.station.is_some()) {
            let calls = r.created.keys().filter(|(_, f)| *f == family.id).count();
            assert!(calls > 0, "{}: no calls", family.id);
            for (what, done) in [("picked", &r.picked), ("put", &r.put)] {
                let positions = done.get(&family.id).cloned().unwrap_or_default();
                let missing: Vec<_> = r.calls[&family.id]
                    .iter()
                    .filter(|p| !positions.contains(p))
                    .collect();
                assert_eq!(
                    positions.len(),
                    calls,
                    "{}: every call {what} once; never {what}: {missing:?}; alarms {:?}",
                    family.id,
                    r.raised
                );
                assert!(
                    positions.windows(2).all(|w| w[0] < w[1]),
                    "{}: {what} in sequence: {positions:?}",
                    family.id
                );
            }
        }

        // Each fault left its mark.
        let faults = self.faults();
        let count = |f: &dyn Fn(&Fault) -> bool| faults.iter().filter(|x| f(x)).count();
        let planned = |f: &dyn Fn(&Fault) -> bool| {
            self.scenario.faults.iter().filter(|p| f(&p.fault)).count()
        };
        let is_session_loss = |f: &Fault| matches!(f, Fault::DropSessions | Fault::RestartServer);
        let session_losses = count(&is_session_loss);
        assert_eq!(
            session_losses,
            planned(&is_session_loss),
            "every session drop and server restart was played"
        );
        for point in ["A1/B1", "A1/B2"] {
            let raised = r
                .raised
                .get("source_disconnected")
                .and_then(|s| s.get(point));
            assert!(
                raised.copied().unwrap_or(0) >= session_losses,
                "{point}: a disconnect alarm per lost session: {raised:?}"
            );
            // One condition per outage, not one per reconnect attempt; a controller killed
            // during an outage journals what it finds once more.
            let journaled = r
                .condition_raises
                .get(&("source_disconnected", point.to_owned()))
                .copied()
                .unwrap_or(0);
            assert!(
                journaled <= session_losses + self.kills,
                "{point}: {journaled} source_disconnected raises journaled for {session_losses} \
                 lost sessions and {} kills",
                self.kills
            );
        }
        assert!(
            r.raised.contains_key(AlarmKind::SequenceGap.name()),
            "the gap raised its alarm: {:?}",
            r.raised
        );
        let duplicates = count(&|f| *f == Fault::Duplicate);
        assert_eq!(duplicates, planned(&|f| *f == Fault::Duplicate));
        // Duplicates are harmless by design: journaled as ignored, no alarm (each is sent at
        // both broadcast points).
        assert!(
            r.duplicates_ignored >= 2 * duplicates,
            "{} duplicates ignored",
            r.duplicates_ignored
        );
        // The correction is taken at both points (it changes a call only if the option it
        // changes selects a part).
        let corrections = count(&|f| *f == Fault::Correction);
        assert_eq!(corrections, planned(&|f| *f == Fault::Correction));
        assert_eq!(
            r.corrections_applied,
            2 * corrections,
            "each correction applied at B1 and B2"
        );
        for device in ["PTL-DOORS", "PTL-WHEELS"] {
            let reboots =
                count(&|f| matches!(f, Fault::RestartDevice { device: d, .. } if d == device));
            let raises = r
                .condition_raises
                .get(&("device_offline", device.to_owned()))
                .copied()
                .unwrap_or(0);
            // One raise per outage; a controller restarted during an outage journals the
            // state it finds once more.
            assert!(
                reboots > 0 && raises >= reboots && raises <= reboots + self.kills,
                "{device}: {raises} device_offline raises journaled for {reboots} reboots"
            );
        }
        let wrong_presses = self
            .truth
            .iter()
            .filter(|e| matches!(e.fact, Fact::Press { wrong: true, .. }))
            .count();
        let wrong_picks: usize = r.raised.get("wrong_pick").map_or(0, |s| s.values().sum());
        assert!(wrong_presses > 0, "2 % of the picks: some wrong presses");
        // An operator presses again a light that did not go out within `retry_after_ms` (at
        // 300× that is 100 ms of wall time, so a slow fsync makes retries of presses the
        // controller had already taken). Within the station's `repeat_press_ms` such a retry
        // is a repeat, not a wrong pick. With a SIGKILL the window has passed by the time the
        // controller is back, so a retry of a press journaled just before the kill is a wrong
        // pick. Without kills, only wrong presses raise wrong picks; a wrong press that lands
        // on the bin just confirmed, within the window, is taken for a repeat.
        let repeats = self.repeated_presses();
        let (low, high) = if self.kills == 0 {
            (
                wrong_presses - self.wrong_presses_like_repeats(),
                wrong_presses,
            )
        } else {
            (1, wrong_presses + repeats)
        };
        assert!(
            (low..=high).contains(&wrong_picks),
            "{wrong_picks} wrong picks from {wrong_presses} wrong presses and {repeats} repeats \
             (expected {low}..={high})"
        );
        let presses = self
            .truth
            .iter()
            .filter(|e| matches!(e.fact, Fact::Press { .. }))
            .count();
        assert!(r.presses <= presses, "no press journaled that nobody made");

        self.check_lights_reasserted();
        Tally {
            journal_entries: self.journal.len(),
            faults: faults.len(),
            session_losses,
            source_raises: ["A1/B1", "A1/B2"]
                .map(|p| {
                    let n = r
                        .condition_raises
                        .get(&("source_disconnected", p.to_owned()));
                    (p, n.copied().unwrap_or(0))
                })
                .into(),
            device_raises: ["PTL-DOORS", "PTL-WHEELS"]
                .map(|d| {
                    let n = r.condition_raises.get(&("device_offline", d.to_owned()));
                    (d, n.copied().unwrap_or(0))
                })
                .into(),
            device_reboots: count(&|f| matches!(f, Fault::RestartDevice { .. })),
            wrong_presses,
            wrong_picks,
            repeats,
        }
    }

    /// Wrong presses on the position of the last right press at that module, soon enough after
    /// it (the station's `repeat_press_ms`, plus the wall-clock slack between the simulator's
    /// clock and the controller's) to be taken as its repeat.
    fn wrong_presses_like_repeats(&self) -> usize {
        let window_us = 1000
            * self
                .plant
                .config
                .stations
                .iter()
                .map(|s| s.repeat_press_ms + 500)
                .max()
                .unwrap_or(0);
        let mut entries: Vec<&Entry> = self.truth.iter().collect();
        entries.sort_by_key(|e| e.t_us);
        let mut last_right: BTreeMap<(&str, u8), (u16, u64)> = BTreeMap::new();
        let mut like = 0;
        for e in entries {
            if let Fact::Press {
                device,
                unit,
                position,
                wrong,
            } = &e.fact
            {
                let module = (device.as_str(), *unit);
                if *wrong {
                    like += usize::from(last_right.get(&module).is_some_and(|(p, t)| {
                        p == position && e.t_us.saturating_sub(*t) <= window_us
                    }));
                } else {
                    last_right.insert(module, (*position, e.t_us));
                }
            }
        }
        like
    }

    /// Right presses made again on a position whose lamp did not change since the last press
    /// there (the operator's retry of a press nobody answered).
    fn repeated_presses(&self) -> usize {
        let mut entries: Vec<&Entry> = self.truth.iter().collect();
        entries.sort_by_key(|e| e.t_us);
        // (device, unit, position) → the lamp changed since the last press there.
        let mut changed: BTreeMap<(&str, u8, u16), bool> = BTreeMap::new();
        let mut repeats = 0;
        for e in entries {
            match &e.fact {
                Fact::Lamp {
                    device,
                    unit,
                    position,
                    ..
                } => {
                    changed.insert((device.as_str(), *unit, *position), true);
                }
                Fact::Press {
                    device,
                    unit,
                    position,
                    wrong: false,
                } => {
                    let before = changed.insert((device.as_str(), *unit, *position), false);
                    repeats += usize::from(before == Some(false));
                }
                _ => {}
            }
        }
        repeats
    }

    /// After each module reboot every lamp that was lit before it is written again within 1 s.
    /// The follower received every event of the outbox once, in order, the same as stored,
    /// however often the controller was killed under it.
    fn check_stream(&self) {
        assert!(!self.outbox.is_empty(), "the run put nothing in the outbox");
        let streamed: Vec<i64> = self.streamed.iter().map(|r| r.0).collect();
        let stored: Vec<i64> = self.outbox.iter().map(|e| e.id).collect();
        assert_eq!(
            streamed.len(),
            stored.len(),
            "events streamed vs stored (first differing id: {:?})",
            streamed.iter().zip(&stored).find(|(a, b)| a != b)
        );
        assert_eq!(streamed, stored, "every event once, in order");
        for ((id, kind, data), row) in self.streamed.iter().zip(&self.outbox) {
            assert_eq!(kind, &row.kind, "event {id}");
            assert_eq!(
                data["payload"], row.payload,
                "event {id} differs from the outbox"
            );
        }
        assert!(
            self.stream_connects > self.kills as u64,
            "the follower reconnected after each kill ({} connects, {} kills)",
            self.stream_connects,
            self.kills
        );
    }

    fn check_lights_reasserted(&self) {
        let mut checked = 0;
        for (i, entry) in self.truth.iter().enumerate() {
            let Fact::DeviceBack { device } = &entry.fact else {
                continue;
            };
            let went_down = self.truth[..i]
                .iter()
                .rev()
                .find(|e| matches!(&e.fact, Fact::Fault { fault: Fault::RestartDevice { device: d, .. } } if d == device))
                .map_or(0, |e| e.t_us);
            let mut lit: BTreeMap<(u8, u16), u16> = BTreeMap::new();
            for e in &self.truth {
                if let Fact::Lamp {
                    device: d,
                    unit,
                    position,
                    colour,
                    ..
                } = &e.fact
                    && d == device
                    && e.t_us < went_down
                {
                    lit.insert((*unit, *position), *colour);
                }
            }
            lit.retain(|_, colour| *colour != 0);
            for (unit, position) in lit.keys() {
                let again = self.truth.iter().find(|e| {
                    e.t_us > entry.t_us
                        && matches!(&e.fact, Fact::Lamp { device: d, unit: u, position: p, .. }
                            if d == device && u == unit && p == position)
                });
                let after_ms = again.map(|e| (e.t_us - entry.t_us) / 1000);
                assert!(
                    after_ms.is_some_and(|ms| ms <= 1000),
                    "{device} unit {unit} position {position}: re-asserted {after_ms:?} ms after the reboot"
                );
                checked += 1;
            }
        }
        assert!(checked > 0, "some lamp was lit when a module rebooted");
    }
}
