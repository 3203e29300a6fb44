//! The plant's partners, as configured: suppliers (who build supplier-sequenced families and
//! receive their calls) and carriers (who bring the racks). Each is a tenant: its id is the
//! tenant of its API tokens, and what concerns it is marked with that id in the outbox and the
//! projections, so its reads can take the tenant and nothing else.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigIssue, PlantConfig, Sequencing, issue};

/// A supplier of the plant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplierConfig {
    /// Its tenant id: letters, digits, `-` and `_`; what its tokens are made for.
    pub id: String,
    pub name: String,
    /// The supplier-sequenced families it builds; each family has one supplier.
    pub families: Vec<String>,
    /// Where its racks are shipped from (free text: an address, a plant code).
    #[serde(default)]
    pub ship_from: String,
    /// Usual transit from `ship_from` to the plant's gate, minutes.
    #[serde(default)]
    pub transit_min: u32,
    /// Who to call when the system is not enough (free text).
    #[serde(default)]
    pub contact: String,
    /// A call still unacknowledged this long after it was created raises
    /// `call_unacknowledged` for this supplier.
    #[serde(default = "default_acknowledge_within_s")]
    pub acknowledge_within_s: u32,
}

fn default_acknowledge_within_s() -> u32 {
    300
}

/// A carrier that brings suppliers' racks to the plant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierConfig {
    /// Its tenant id, as for suppliers (the two share one namespace).
    pub id: String,
    pub name: String,
    /// Standard Carrier Alpha Code, 2–4 letters, if it has one.
    #[serde(default)]
    pub scac: Option<String>,
    #[serde(default)]
    pub contact: String,
}

/// A tenant id is printed in tokens, URLs and EDI partner fields: keep it plain.
fn tenant_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() || id.len() > 35 {
        return Some("must be 1 to 35 characters");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Some("may hold only letters, digits, `-` and `_`");
    }
    None
}

/// Cross-checks of suppliers, carriers and the families that name them.
pub(crate) fn validate(cfg: &PlantConfig, issues: &mut Vec<ConfigIssue>) {
    let mut tenants: BTreeSet<String> = BTreeSet::new();
    let mut tenant = |id: &str, at: String, issues: &mut Vec<ConfigIssue>| {
        if let Some(problem) = tenant_id_problem(id) {
            issues.push(issue(at, format!("tenant id `{id}` {problem}")));
        } else if !tenants.insert(id.to_owned()) {
            issues.push(issue(
                at,
                format!("tenant id `{id}` is already a supplier or carrier"),
            ));
        }
    };
    let families: BTreeMap<&str, Sequencing> = cfg
        .families
        .iter()
        .map(|f| (f.id.as_str(), f.sequencing))
        .collect();
    let mut built_by: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, s) in cfg.suppliers.iter().enumerate() {
        let at = format!("suppliers[{i}]");
        tenant(&s.id, format!("{at}.id"), issues);
        if s.name.trim().is_empty() {
            issues.push(issue(format!("{at}.name"), "must not be empty"));
        }
        if s.acknowledge_within_s == 0 {
            issues.push(issue(
                format!("{at}.acknowledge_within_s"),
                "must be greater than 0",
            ));
        }
        for (j, family) in s.families.iter().enumerate() {
            let at = format!("{at}.families[{j}]");
            match families.get(family.as_str()) {
                None => issues.push(issue(at, format!("no family `{family}`"))),
                Some(Sequencing::InPlant) => issues.push(issue(
                    at,
                    format!(
                        "family `{family}` is sequenced in-plant; only supplier-sequenced \
                         families have a supplier"
                    ),
                )),
                Some(Sequencing::Supplier) => {
                    if let Some(other) = built_by.insert(family, &s.id) {
                        issues.push(issue(
                            at,
                            format!("family `{family}` is already built by supplier `{other}`"),
                        ));
                    }
                }
            }
        }
    }
    for (i, c) in cfg.carriers.iter().enumerate() {
        let at = format!("carriers[{i}]");
        tenant(&c.id, format!("{at}.id"), issues);
        if c.name.trim().is_empty() {
            issues.push(issue(format!("{at}.name"), "must not be empty"));
        }
        let scac_ok = |scac: &str| {
            (2..=4).contains(&scac.len()) && scac.bytes().all(|b| b.is_ascii_uppercase())
        };
        if let Some(scac) = &c.scac
            && !scac_ok(scac)
        {
            issues.push(issue(
                format!("{at}.scac"),
                "a SCAC is 2 to 4 capital letters",
            ));
        }
    }
    let suppliers: BTreeSet<&str> = cfg.suppliers.iter().map(|s| s.id.as_str()).collect();
    for (i, f) in cfg.families.iter().enumerate() {
        let Some(alternate) = &f.alternate_supplier else {
            continue;
        };
        let at = format!("families[{i}].alternate_supplier");
        if f.sequencing != Sequencing::Supplier {
            issues.push(issue(at, "only a supplier-sequenced family has suppliers"));
        } else if !suppliers.contains(alternate.as_str()) {
            issues.push(issue(at, format!("no supplier `{alternate}`")));
        } else if built_by.get(f.id.as_str()) == Some(&alternate.as_str()) {
            issues.push(issue(
                at,
                "the alternate must not be the family's own supplier",
            ));
        }
    }
}
