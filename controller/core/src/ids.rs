//! Typed ids where a bare string pair was passed around.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A broadcast point of a line: where a vehicle's record comes from. Shown as `line/point`,
/// the subject of the point's alarms and its name in logs and `/status`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PointId {
    pub line: String,
    pub point: String,
}

impl PointId {
    pub fn new(line: impl Into<String>, point: impl Into<String>) -> Self {
        Self {
            line: line.into(),
            point: point.into(),
        }
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.line, self.point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_named_line_slash_point() {
        assert_eq!(PointId::new("A1", "B2").to_string(), "A1/B2");
    }
}
