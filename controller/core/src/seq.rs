//! Rolling sequence numbers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A broadcast sequence number, `0..modulus` of its line.
///
/// Invariant: the core only builds one through [`SeqNo::new`], so it is always within the
/// line's modulus. Comparisons across the wrap go through [`SeqNo::ahead_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SeqNo(u32);

impl SeqNo {
    pub fn new(value: u32, modulus: u32) -> Result<Self, String> {
        if value < modulus {
            Ok(Self(value))
        } else {
            Err(format!(
                "sequence number {value} is outside the line's range 0..{}",
                modulus - 1
            ))
        }
    }

    pub fn value(self) -> u32 {
        self.0
    }

    /// The number after this one, wrapping at the modulus.
    pub fn next(self, modulus: u32) -> Self {
        Self((self.0 + 1) % modulus)
    }

    /// How many steps forward from `base` to `self`, in `0..modulus`.
    pub fn ahead_of(self, base: SeqNo, modulus: u32) -> u32 {
        (self.0 + modulus - base.0) % modulus
    }

    /// `self` moved `steps` forward, wrapping.
    pub fn plus(self, steps: u64, modulus: u32) -> Self {
        Self(((u64::from(self.0) + steps) % u64::from(modulus)) as u32)
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_wraps_at_the_modulus() {
        let m = 10_000;
        let s = |v| SeqNo::new(v, m).unwrap();
        assert_eq!(s(9999).next(m), s(0));
        assert_eq!(s(0).ahead_of(s(9999), m), 1);
        assert_eq!(s(9999).ahead_of(s(0), m), 9999);
        assert_eq!(s(9998).plus(5, m), s(3));
        assert!(SeqNo::new(10_000, m).is_err());
        assert_eq!(s(7).to_string(), "0007");
    }
}
