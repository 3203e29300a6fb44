//! Simulated operators: one per light-module unit, pressing what the controller lights.
//!
//! An operator watches the lamp writes of its unit. When a bin or rack-slot position starts
//! showing a task light (lit, not blinking — a blinking lamp is an error light and is left
//! alone), the operator waits `press_after_ms` of plant time and presses its button; at the
//! configured rate a pick first goes to a wrong bin. A press that changes nothing (the
//! controller or the module was down and never saw it) is repeated after `retry_after_ms`,
//! as a person at the line would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::floor::OperatorFloor;
use crate::lock;
use crate::modbus::{Lamp, Panel};
use crate::scenario::wall_time;
use crate::truth::{Fact, Truth};

/// Where an operator works and how fast the plant runs.
#[derive(Debug, Clone)]
pub struct Workplace {
    pub device: String,
    pub panel: Panel,
    pub truth: Truth,
    /// Plant time runs this much faster than wall-clock time.
    pub acceleration: f64,
    /// Seeds the wrong-pick choices.
    pub seed: u64,
}

/// Starts an operator; it works until the returned task is aborted.
#[must_use]
pub fn spawn(cfg: OperatorFloor, at: Workplace) -> JoinHandle<()> {
    let seed = at.seed ^ u64::from(cfg.unit).rotate_left(32);
    let operator = Arc::new(Operator {
        press_after: wall_time(cfg.press_after_ms, at.acceleration),
        retry_after: wall_time(cfg.retry_after_ms, at.acceleration),
        hold: Duration::from_millis(cfg.hold_ms),
        cfg,
        at,
        generations: Mutex::default(),
    });
    tokio::spawn(operator.work(ChaCha8Rng::seed_from_u64(seed)))
}

#[derive(Debug)]
struct Operator {
    cfg: OperatorFloor,
    at: Workplace,
    press_after: Duration,
    retry_after: Duration,
    hold: Duration,
    /// Per position, how many times a task light came on there; an errand for an older
    /// lighting ends by itself.
    generations: Mutex<HashMap<u16, u64>>,
}

/// A task light: lit and steady. Error lights blink.
fn task_lit(lamp: Option<Lamp>) -> bool {
    lamp.is_some_and(|l| l.colour != 0 && l.blink == 0)
}

impl Operator {
    fn watched(&self, position: u16) -> bool {
        [self.cfg.bins, self.cfg.slots]
            .iter()
            .flatten()
            .any(|p| p.contains(position))
    }

    async fn work(self: Arc<Self>, mut rng: ChaCha8Rng) {
        let unit = self.cfg.unit;
        let mut events = self.at.panel.subscribe();
        let mut lit: HashMap<u16, bool> = HashMap::new();
        // Lamps already lit when the operator arrives count as just lit.
        let mut changed: Vec<u16> = (0..self.at.panel.positions(unit)).collect();
        loop {
            for position in changed.drain(..) {
                if !self.watched(position) {
                    continue;
                }
                let now = task_lit(self.at.panel.lamp(unit, position));
                let before = lit.insert(position, now).unwrap_or(false);
                if now && !before {
                    let generation = {
                        let mut generations = lock(&self.generations);
                        let g = generations.entry(position).or_insert(0);
                        *g += 1;
                        *g
                    };
                    let wrong = self.maybe_wrong_bin(&mut rng, position);
                    tokio::spawn(Arc::clone(&self).errand(position, generation, wrong));
                }
            }
            match events.recv().await {
                Ok(write) if write.unit == unit => changed.push(write.position),
                Ok(_) => {}
                // Missed writes: look at every lamp again.
                Err(RecvError::Lagged(_)) => {
                    changed.extend(0..self.at.panel.positions(unit));
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// For a pick, at the configured rate, another bin to press first.
    fn maybe_wrong_bin(&self, rng: &mut ChaCha8Rng, position: u16) -> Option<u16> {
        let bins = self.cfg.bins?;
        if !bins.contains(position) || bins.count < 2 {
            return None;
        }
        // 53 random bits: a uniform f64 in [0, 1).
        let draw = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        if draw >= self.cfg.wrong_pick_rate {
            return None;
        }
        let shift = 1 + (rng.next_u64() % u64::from(bins.count - 1)) as u16;
        Some(bins.first + (position - bins.first + shift) % bins.count)
    }

    /// Press `position` while it shows the task light it came on with.
    async fn errand(self: Arc<Self>, position: u16, generation: u64, mut wrong: Option<u16>) {
        let unit = self.cfg.unit;
        tokio::time::sleep(self.press_after).await;
        loop {
            let current = lock(&self.generations).get(&position).copied();
            if current != Some(generation) || !task_lit(self.at.panel.lamp(unit, position)) {
                return;
            }
            if let Some(other) = wrong.take() {
                self.press(other, true).await;
                tokio::time::sleep(self.press_after).await;
                continue;
            }
            self.press(position, false).await;
            tokio::time::sleep(self.retry_after).await;
        }
    }

    async fn press(&self, position: u16, wrong: bool) {
        self.at.truth.record(Fact::Press {
            device: self.at.device.clone(),
            unit: self.cfg.unit,
            position,
            wrong,
        });
        self.at
            .panel
            .press(self.cfg.unit, position, self.hold)
            .await;
    }
}
