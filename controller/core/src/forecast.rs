//! Forecast sharing: the plant's planned production sequence, days ahead, turned into each
//! supplier's demand per part and hour, so suppliers plan from the same numbers the plant does.
//!
//! A plan replaces the line's previous one whole (the MES's current view of the days ahead).
//! Each planned vehicle is resolved through the same variant rules as a broadcast, and its part
//! is needed at its family's install station: its planned time at the broadcast point plus the
//! station's offset in takts. Demand is counted in whole hours (UTC) of that need time.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ConfigIndex;
use crate::variant::{Need, resolve_for};

/// A line's planned sequence, as the plant's MES or ERP sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub line: String,
    pub vehicles: Vec<PlannedVehicle>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedVehicle {
    /// When it is planned at the line's broadcast point.
    pub planned_at: DateTime<Utc>,
    pub model: String,
    /// `KEY=VALUE` option codes, as broadcast.
    pub options: Vec<String>,
}

/// How many parts one supplier's family needs in one hour, by the current plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demand {
    pub supplier: String,
    pub line: String,
    pub family: String,
    pub part: String,
    /// The hour (UTC, its start) the parts are needed at the install station.
    pub hour: DateTime<Utc>,
    /// `0`: the plan no longer needs any (it did before).
    pub quantity: u32,
    pub planned_at: DateTime<Utc>,
}

/// The longest plan taken: two weeks of vehicles.
pub const MAX_PLAN_DAYS: i64 = 14;

type Bucket = (String, DateTime<Utc>, String, String);

/// The current plan's demand of every line: (line, hour, family, part) → (supplier, quantity).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Forecasts {
    #[serde(with = "buckets")]
    demand: BTreeMap<Bucket, (String, u32)>,
}

impl Forecasts {
    /// Replaces `plan.line`'s demand from the current hour on with the plan's; the rows that
    /// changed (a bucket the plan no longer needs comes back with quantity 0 and leaves). Hours
    /// already begun keep what earlier plans said: a plan from now on does not rewrite the past
    /// the forecast is measured against. `Err` names the field at fault.
    pub(crate) fn replace(
        &mut self,
        cfg: &ConfigIndex,
        now: DateTime<Utc>,
        plan: &Plan,
    ) -> Result<Vec<Demand>, (String, String)> {
        let new = demand_of(cfg, plan)?;
        let current_hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
        // The state keeps two weeks of past hours (the projection keeps them all).
        let horizon = current_hour - TimeDelta::days(MAX_PLAN_DAYS);
        self.demand.retain(|(_, hour, ..), _| *hour >= horizon);
        let old: BTreeSet<Bucket> = self
            .demand
            .keys()
            .filter(|(line, hour, ..)| *line == plan.line && *hour >= current_hour)
            .cloned()
            .collect();
        let mut rows = Vec::new();
        for key in &old {
            if !new.contains_key(key)
                && let Some((supplier, _)) = self.demand.remove(key)
            {
                rows.push(row(key, supplier, 0, now));
            }
        }
        for (key, (supplier, quantity)) in new {
            if self.demand.get(&key) != Some(&(supplier.clone(), quantity)) {
                rows.push(row(&key, supplier.clone(), quantity, now));
                self.demand.insert(key, (supplier, quantity));
            }
        }
        // In bucket order, whether a row changed or went.
        rows.sort_by(|a, b| (a.hour, &a.family, &a.part).cmp(&(b.hour, &b.family, &b.part)));
        Ok(rows)
    }
}

fn row(key: &Bucket, supplier: String, quantity: u32, now: DateTime<Utc>) -> Demand {
    let (line, hour, family, part) = key.clone();
    Demand {
        supplier,
        line,
        family,
        part,
        hour,
        quantity,
        planned_at: now,
    }
}

/// The plan's demand per bucket, for supplier-built families with a supplier.
fn demand_of(
    cfg: &ConfigIndex,
    plan: &Plan,
) -> Result<BTreeMap<Bucket, (String, u32)>, (String, String)> {
    let invalid = |field: String, why: String| Err((field, why));
    let Some(line) = cfg.line(&plan.line) else {
        return invalid("line".into(), format!("no line `{}`", plan.line));
    };
    if let (Some(first), Some(last)) = (
        plan.vehicles.iter().map(|v| v.planned_at).min(),
        plan.vehicles.iter().map(|v| v.planned_at).max(),
    ) && last - first > TimeDelta::days(MAX_PLAN_DAYS)
    {
        return invalid(
            "vehicles".into(),
            format!("a plan covers at most {MAX_PLAN_DAYS} days"),
        );
    }
    let takt = TimeDelta::milliseconds(i64::try_from(line.takt_ms).unwrap_or(i64::MAX));
    let families: Vec<_> = cfg
        .config
        .families
        .iter()
        .filter(|f| f.line == plan.line)
        .filter_map(|f| cfg.supplier_of(&f.id).map(|s| (f, s.id.clone())))
        .collect();
    let mut demand: BTreeMap<Bucket, (String, u32)> = BTreeMap::new();
    for (i, v) in plan.vehicles.iter().enumerate() {
        if !cfg.is_model(&v.model) {
            return invalid(
                format!("vehicles[{i}].model"),
                format!("unknown model `{}`", v.model),
            );
        }
        for (j, code) in v.options.iter().enumerate() {
            if let Err(why) = cfg.is_option(code) {
                return invalid(format!("vehicles[{i}].options[{j}]"), why);
            }
        }
        for (family, supplier) in &families {
            let Need::Part(part) =
                resolve_for(family, &v.model, |o| v.options.iter().any(|c| c == o))
            else {
                continue;
            };
            let offset =
                i32::try_from(cfg.family_station(family).offset_positions).unwrap_or(i32::MAX);
            let needed = v.planned_at + takt * offset;
            let hour = needed.duration_trunc(TimeDelta::hours(1)).unwrap_or(needed);
            let entry = demand
                .entry((plan.line.clone(), hour, family.id.clone(), part))
                .or_insert_with(|| (supplier.clone(), 0));
            entry.1 += 1;
        }
    }
    Ok(demand)
}

/// The demand map as a list: JSON map keys must be strings.
mod buckets {
    use super::{Bucket, DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    type Entry = (String, DateTime<Utc>, String, String, String, u32);

    pub(super) fn serialize<S: Serializer>(
        map: &BTreeMap<Bucket, (String, u32)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let list: Vec<Entry> = map
            .iter()
            .map(|((l, h, f, p), (s, q))| (l.clone(), *h, f.clone(), p.clone(), s.clone(), *q))
            .collect();
        list.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Bucket, (String, u32)>, D::Error> {
        let list = Vec::<Entry>::deserialize(d)?;
        Ok(list
            .into_iter()
            .map(|(l, h, f, p, s, q)| ((l, h, f, p), (s, q)))
            .collect())
    }
}
