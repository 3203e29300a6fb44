//! Vehicle identification numbers (ISO 3779).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A 17-character VIN of the legal alphabet (digits and capitals without I, O, Q).
///
/// Invariant: always 17 legal characters; the check digit is verified only where the line asks
/// for it ([`Vin::parse_checked`]), because European and Asian VINs do not carry one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Vin(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VinError {
    #[error("VIN must be 17 characters, got {0}")]
    Length(usize),
    #[error(
        "VIN character `{ch}` at position {pos} is not allowed (digits and A–Z without I, O, Q)"
    )]
    Character { ch: char, pos: usize },
    #[error("VIN check digit is `{found}`, expected `{expected}`")]
    CheckDigit { found: char, expected: char },
}

const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

fn transliterate(ch: char) -> Option<u32> {
    Some(match ch {
        '0'..='9' => ch as u32 - '0' as u32,
        'A' | 'J' => 1,
        'B' | 'K' | 'S' => 2,
        'C' | 'L' | 'T' => 3,
        'D' | 'M' | 'U' => 4,
        'E' | 'N' | 'V' => 5,
        'F' | 'W' => 6,
        'G' | 'P' | 'X' => 7,
        'H' | 'Y' => 8,
        'R' | 'Z' => 9,
        _ => return None,
    })
}

impl Vin {
    /// Length and alphabet only.
    pub fn parse(s: &str) -> Result<Self, VinError> {
        let n = s.chars().count();
        if n != 17 {
            return Err(VinError::Length(n));
        }
        for (i, ch) in s.chars().enumerate() {
            if transliterate(ch).is_none() {
                return Err(VinError::Character { ch, pos: i + 1 });
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// Length, alphabet and the North-American check digit in position 9.
    pub fn parse_checked(s: &str) -> Result<Self, VinError> {
        let vin = Self::parse(s)?;
        let expected = vin.expected_check_digit();
        let found = vin.0.as_bytes()[8] as char;
        if found != expected {
            return Err(VinError::CheckDigit { found, expected });
        }
        Ok(vin)
    }

    /// The check digit position 9 should hold: weighted sum mod 11, 10 written `X`.
    pub fn expected_check_digit(&self) -> char {
        let sum: u32 = self
            .0
            .chars()
            .zip(WEIGHTS)
            .map(|(ch, w)| transliterate(ch).unwrap_or(0) * w)
            .sum();
        match sum % 11 {
            10 => 'X',
            d => char::from_digit(d, 10).unwrap_or('0'),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Vin {
    type Error = VinError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Vin> for String {
    fn from(v: Vin) -> Self {
        v.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn vins_are_checked_as_tables() {
        // (input, checked?, expected result)
        let cases: &[(&str, bool, Result<(), VinError>)] = &[
            ("1M8GDM9AXKP042788", true, Ok(())),
            ("11111111111111111", true, Ok(())),
            (
                "1M8GDM9A1KP042788",
                true,
                Err(VinError::CheckDigit {
                    found: '1',
                    expected: 'X',
                }),
            ),
            ("1M8GDM9A1KP042788", false, Ok(())),
            ("WVWZZZ1JZXW000001", false, Ok(())),
            ("WVWZZZ1JZXW00000", false, Err(VinError::Length(16))),
            ("WVWZZZ1JZXW0000011", false, Err(VinError::Length(18))),
            (
                "WVWZZZ1JZXW00000O",
                false,
                Err(VinError::Character { ch: 'O', pos: 17 }),
            ),
            (
                "wvwzzz1jzxw000001",
                false,
                Err(VinError::Character { ch: 'w', pos: 1 }),
            ),
            (
                "IVWZZZ1JZXW000001",
                false,
                Err(VinError::Character { ch: 'I', pos: 1 }),
            ),
        ];
        for (input, checked, expected) in cases {
            let got = if *checked {
                Vin::parse_checked(input)
            } else {
                Vin::parse(input)
            };
            assert_eq!(got.map(|_| ()), *expected, "{input} checked={checked}");
        }
    }
}
