//! Variant rules: a vehicle's model and options to one part number per family.

use crate::config::FamilyConfig;
use crate::record::Record;

/// What a family needs for one vehicle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
    /// The family does not apply to this model.
    NotApplicable,
    /// The first matching rule's part.
    Part(String),
    /// The family applies but no rule matched: an unresolved call.
    Unresolved,
}

pub(crate) fn resolve(family: &FamilyConfig, record: &Record) -> Need {
    if !family.models.is_empty() && !family.models.contains(&record.model) {
        return Need::NotApplicable;
    }
    family
        .rules
        .iter()
        .find(|rule| {
            (rule.models.is_empty() || rule.models.contains(&record.model))
                && rule.options.iter().all(|o| record.has_option(o))
        })
        .map_or(Need::Unresolved, |rule| Need::Part(rule.part.clone()))
}
