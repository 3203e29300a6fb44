//! Device profiles: a module's register map as configuration, never code.
//!
//! A profile describes one device (one unit id) with `positions` lamps and buttons. Position `p`
//! (0-based) uses the configured addresses plus `p * stride`. Three profiles ship with the crate
//! ([`Profile::builtin`]): `sim-line`, `banner-ptl110` and `generic-dio` (see `profiles/*.toml`).

use std::collections::BTreeMap;

use serde::Deserialize;
use takt_core::config::{Blink, LampColour};

use super::address::{RegisterAddress, Table};

/// Most registers one Modbus read may return (function 3/4).
pub const MAX_READ_REGISTERS: u16 = 125;
/// Most bits one Modbus read may return (function 1/2).
pub const MAX_READ_BITS: u16 = 2000;

/// What a position's lamp should show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LampState {
    /// Dark.
    Off,
    /// Lit.
    On {
        /// Colour, mapped to a code or coil by the profile.
        colour: LampColour,
        /// Digits to display, if the module has a display (ignored otherwise).
        digits: Option<u16>,
        /// Steady or flashing, if the module can flash (ignored otherwise).
        blink: Blink,
    },
}

/// One value for one address: a word for registers, a bit for coils.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A 16-bit register value.
    Word(u16),
    /// A coil value.
    Bit(bool),
}

/// How lamps are driven.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LampMap {
    /// Pick-light modules: a holding register takes a colour code (`off` when dark), optional
    /// registers take the digits and the animation code (`blinks`).
    Register {
        /// Address distance between positions.
        stride: u16,
        /// Colour-code register of position 0.
        colour: RegisterAddress,
        /// Digits register of position 0.
        #[serde(default)]
        digits: Option<RegisterAddress>,
        /// Blink register of position 0.
        #[serde(default)]
        blink: Option<RegisterAddress>,
        /// Colour code meaning dark.
        off: u16,
        /// Colour codes.
        colours: BTreeMap<LampColour, u16>,
        /// Animation codes written to `blink`; left out, steady is 0 and any flashing 1.
        #[serde(default = "default_blinks")]
        blinks: BTreeMap<Blink, u16>,
    },
    /// Digital outputs: one coil per colour; lit = that coil on, all others off.
    Coils {
        /// Address distance between positions.
        stride: u16,
        /// The coil of each colour for position 0.
        colours: BTreeMap<LampColour, RegisterAddress>,
    },
}

/// How a position's confirm button is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonMap {
    /// Button of position 0: a coil, a discrete input, or a register (then `bit` applies).
    pub address: RegisterAddress,
    /// Address distance between positions.
    pub stride: u16,
    /// For register tables: the bit (0..=15) that means pressed; absent = any non-zero value.
    #[serde(default)]
    pub bit: Option<u8>,
}

/// A validated device profile. Invariant: every address of every position fits in 0..=65535,
/// lamp addresses are writable, and all buttons can be read with one request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Profile name, as configuration refers to it.
    pub name: String,
    /// Number of positions (lamps + buttons) on the module.
    pub positions: u16,
    /// Lamp outputs.
    pub lamp: LampMap,
    /// Button inputs.
    pub button: ButtonMap,
    /// A heartbeat the module watches, if it has one: it blanks its lamps by itself when Takt
    /// stops feeding it (a crash, a cut cable), so no lamp asks for a pick nobody will take.
    #[serde(default)]
    pub watchdog: Option<Watchdog>,
}

/// A module's watchdog: a holding register Takt counts up, or a coil it toggles, every
/// `period_ms`; the module's own timeout (set on the module) must be longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watchdog {
    pub address: RegisterAddress,
    pub period_ms: u64,
}

impl Watchdog {
    /// The value of the `beat`-th heartbeat.
    #[must_use]
    pub fn value(&self, beat: u64) -> Value {
        match self.address.table {
            Table::Coil => Value::Bit(beat % 2 == 1),
            // Wraps: the module looks for a change, not a number.
            _ => Value::Word((beat % 65_536) as u16),
        }
    }
}

/// Why a profile or an encoding was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The TOML did not parse or did not match the shape.
    #[error("profile does not parse: {0}")]
    Parse(String),
    /// A semantic problem with the map.
    #[error("profile `{name}`: {reason}")]
    Invalid {
        /// Profile name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A position beyond the module.
    #[error("position {position} is beyond the module's {positions} positions")]
    NoSuchPosition {
        /// Asked for.
        position: u16,
        /// The module has.
        positions: u16,
    },
    /// The module cannot show this colour.
    #[error("profile `{profile}` has no code for colour {colour:?}")]
    UnmappedColour {
        /// Profile name.
        profile: String,
        /// Colour asked for.
        colour: LampColour,
    },
    /// The module has a blink register but no code for this pattern.
    #[error("profile `{profile}` has no code for blink pattern {blink:?}")]
    UnmappedBlink {
        /// Profile name.
        profile: String,
        /// Pattern asked for.
        blink: Blink,
    },
}

fn default_blinks() -> BTreeMap<Blink, u16> {
    BTreeMap::from([(Blink::Steady, 0), (Blink::Slow, 1), (Blink::Fast, 1)])
}

const BUILTIN: [(&str, &str); 3] = [
    ("sim-line", include_str!("../../profiles/sim-line.toml")),
    (
        "banner-ptl110",
        include_str!("../../profiles/banner-ptl110.toml"),
    ),
    (
        "generic-dio",
        include_str!("../../profiles/generic-dio.toml"),
    ),
];

impl Profile {
    /// Names of the profiles shipped with the crate.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(name, _)| *name)
    }

    /// A shipped profile by name.
    #[must_use]
    pub fn builtin(name: &str) -> Option<Self> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        Some(Self::from_toml(text).expect("built-in profiles are tested to parse"))
    }

    /// Parses and validates a profile.
    ///
    /// # Errors
    /// [`ProfileError::Parse`] or [`ProfileError::Invalid`].
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        let profile: Self = toml::from_str(text).map_err(|e| ProfileError::Parse(e.to_string()))?;
        profile.validate()?;
        Ok(profile)
    }

    fn invalid(&self, reason: impl Into<String>) -> ProfileError {
        ProfileError::Invalid {
            name: self.name.clone(),
            reason: reason.into(),
        }
    }

    fn validate(&self) -> Result<(), ProfileError> {
        if self.positions == 0 {
            return Err(self.invalid("positions must be at least 1"));
        }
        let last = u32::from(self.positions - 1);
        let fits =
            |base: RegisterAddress, stride: u16| base.offset(last * u32::from(stride)).is_some();
        let word_output = |a: RegisterAddress| a.table == Table::HoldingRegister;
        match &self.lamp {
            LampMap::Register {
                stride,
                colour,
                digits,
                blink,
                colours,
                ..
            } => {
                if colours.is_empty() {
                    return Err(self.invalid("lamp.colours is empty"));
                }
                for address in [Some(*colour), *digits, *blink].into_iter().flatten() {
                    if !word_output(address) {
                        return Err(self.invalid(format!(
                            "lamp register {address} is not a holding register"
                        )));
                    }
                    if !fits(address, *stride) {
                        return Err(
                            self.invalid(format!("lamp register {address} runs past 65535"))
                        );
                    }
                }
            }
            LampMap::Coils { stride, colours } => {
                if colours.is_empty() {
                    return Err(self.invalid("lamp.colours is empty"));
                }
                for address in colours.values() {
                    if address.table != Table::Coil {
                        return Err(self.invalid(format!("lamp output {address} is not a coil")));
                    }
                    if !fits(*address, *stride) {
                        return Err(self.invalid(format!("lamp coil {address} runs past 65535")));
                    }
                }
            }
        }
        if let Some(watchdog) = &self.watchdog {
            if !matches!(watchdog.address.table, Table::HoldingRegister | Table::Coil) {
                return Err(self.invalid(format!(
                    "watchdog {} is neither a holding register nor a coil",
                    watchdog.address
                )));
            }
            if watchdog.period_ms == 0 {
                return Err(self.invalid("watchdog.period_ms must be at least 1"));
            }
        }
        let button = &self.button;
        if !fits(button.address, button.stride) {
            return Err(self.invalid("button addresses run past 65535"));
        }
        match (button.address.table.is_bit(), button.bit) {
            (true, Some(_)) => return Err(self.invalid("button.bit applies to registers only")),
            (false, Some(bit)) if bit > 15 => return Err(self.invalid("button.bit must be 0..=15")),
            _ => {}
        }
        let limit = if button.address.table.is_bit() {
            MAX_READ_BITS
        } else {
            MAX_READ_REGISTERS
        };
        if self.button_span().1 > limit {
            return Err(self.invalid(format!(
                "buttons span more than {limit} addresses (one read)"
            )));
        }
        Ok(())
    }

    fn check_position(&self, position: u16) -> Result<u32, ProfileError> {
        if position >= self.positions {
            return Err(ProfileError::NoSuchPosition {
                position,
                positions: self.positions,
            });
        }
        Ok(u32::from(position))
    }

    /// Checks that `state` can be shown at `position` (the driver refuses it up front otherwise).
    ///
    /// # Errors
    /// [`ProfileError::NoSuchPosition`] or [`ProfileError::UnmappedColour`].
    pub fn encode(
        &self,
        position: u16,
        state: &LampState,
    ) -> Result<Vec<(RegisterAddress, Value)>, ProfileError> {
        let p = self.check_position(position)?;
        // Validation guarantees every offset fits.
        let at = |base: RegisterAddress, stride: u16| {
            base.offset(p * u32::from(stride))
                .expect("validated profile")
        };
        let unmapped = |colour| ProfileError::UnmappedColour {
            profile: self.name.clone(),
            colour,
        };
        let mut writes = Vec::new();
        match &self.lamp {
            LampMap::Register {
                stride,
                colour,
                digits,
                blink,
                off,
                colours,
                blinks,
            } => {
                let (code, shown_digits, pattern) = match *state {
                    LampState::Off => (*off, 0, Blink::Steady),
                    LampState::On {
                        colour: c,
                        digits: d,
                        blink: b,
                    } => (
                        *colours.get(&c).ok_or_else(|| unmapped(c))?,
                        d.unwrap_or(0),
                        b,
                    ),
                };
                writes.push((at(*colour, *stride), Value::Word(code)));
                if let Some(digits) = digits {
                    writes.push((at(*digits, *stride), Value::Word(shown_digits)));
                }
                if let Some(blink) = blink {
                    let code = blinks.get(&pattern).ok_or(ProfileError::UnmappedBlink {
                        profile: self.name.clone(),
                        blink: pattern,
                    })?;
                    writes.push((at(*blink, *stride), Value::Word(*code)));
                }
            }
            LampMap::Coils { stride, colours } => {
                let lit = match *state {
                    LampState::Off => None,
                    LampState::On { colour, .. } => {
                        colours.get(&colour).ok_or_else(|| unmapped(colour))?;
                        Some(colour)
                    }
                };
                for (colour, coil) in colours {
                    writes.push((at(*coil, *stride), Value::Bit(lit == Some(*colour))));
                }
            }
        }
        Ok(writes)
    }

    /// First button address and how many consecutive addresses one read covering every
    /// position's button must span.
    #[must_use]
    pub fn button_span(&self) -> (RegisterAddress, u16) {
        let span = u32::from(self.positions - 1) * u32::from(self.button.stride) + 1;
        (self.button.address, u16::try_from(span).unwrap_or(u16::MAX))
    }

    /// Index into the [`button_span`](Self::button_span) read of `position`'s button.
    #[must_use]
    pub fn button_index(&self, position: u16) -> usize {
        usize::from(position) * usize::from(self.button.stride)
    }

    /// Whether a register value read at a button address means pressed.
    #[must_use]
    pub fn word_pressed(&self, word: u16) -> bool {
        match self.button.bit {
            Some(bit) => word & (1 << bit) != 0,
            None => word != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hr(a: u16) -> RegisterAddress {
        RegisterAddress::new(Table::HoldingRegister, a)
    }
    fn co(a: u16) -> RegisterAddress {
        RegisterAddress::new(Table::Coil, a)
    }

    #[test]
    fn builtin_profiles_parse() {
        for name in Profile::builtin_names() {
            let profile = Profile::builtin(name).expect("listed");
            assert_eq!(profile.name, name);
        }
        assert_eq!(Profile::builtin_names().count(), 3);
    }

    #[test]
    fn sim_line_encoding() {
        let p = Profile::builtin("sim-line").expect("shipped");
        let lit = LampState::On {
            colour: LampColour::Red,
            digits: Some(12),
            blink: Blink::Fast,
        };
        assert_eq!(
            p.encode(2, &lit),
            Ok(vec![
                (hr(8), Value::Word(3)),
                (hr(9), Value::Word(12)),
                (hr(10), Value::Word(1))
            ])
        );
        assert_eq!(
            p.encode(0, &LampState::Off),
            Ok(vec![
                (hr(0), Value::Word(0)),
                (hr(1), Value::Word(0)),
                (hr(2), Value::Word(0))
            ])
        );
        assert_eq!(
            p.button_span(),
            (RegisterAddress::new(Table::DiscreteInput, 0), 16)
        );
    }

    #[test]
    fn blink_patterns_map_like_colours() {
        let text = include_str!("../../profiles/sim-line.toml").replace(
            "[button]",
            "blinks = { steady = 0, slow = 4, fast = 9 }\n[button]",
        );
        let p = Profile::from_toml(&text).expect("parses");
        let lit = |blink| LampState::On {
            colour: LampColour::Green,
            digits: None,
            blink,
        };
        let blink_register = |state| p.encode(0, &state).expect("shown")[2].1;
        assert_eq!(blink_register(lit(Blink::Slow)), Value::Word(4));
        assert_eq!(blink_register(lit(Blink::Fast)), Value::Word(9));
        assert_eq!(blink_register(LampState::Off), Value::Word(0));
        let partial = text.replace("slow = 4, ", "");
        let p = Profile::from_toml(&partial).expect("parses");
        assert!(matches!(
            p.encode(0, &lit(Blink::Slow)),
            Err(ProfileError::UnmappedBlink { .. })
        ));
    }

    #[test]
    fn banner_encoding_uses_converted_vendor_addresses() {
        let p = Profile::builtin("banner-ptl110").expect("shipped");
        let lit = LampState::On {
            colour: LampColour::Green,
            digits: None,
            blink: Blink::Steady,
        };
        assert_eq!(
            p.encode(1, &lit),
            Ok(vec![
                (hr(16), Value::Word(1)),
                (hr(18), Value::Word(0)),
                (hr(17), Value::Word(0))
            ])
        );
        assert!(p.word_pressed(0b1));
        assert!(!p.word_pressed(0b10));
    }

    #[test]
    fn generic_dio_encoding_one_coil_per_colour() {
        let p = Profile::builtin("generic-dio").expect("shipped");
        let lit = LampState::On {
            colour: LampColour::Yellow,
            digits: Some(3),
            blink: Blink::Fast,
        };
        // BTreeMap order of LampColour: Green, Blue, Red, Yellow.
        assert_eq!(
            p.encode(1, &lit),
            Ok(vec![
                (co(4), Value::Bit(false)),
                (co(7), Value::Bit(false)),
                (co(5), Value::Bit(false)),
                (co(6), Value::Bit(true)),
            ])
        );
        assert!(matches!(
            p.encode(
                0,
                &LampState::On {
                    colour: LampColour::White,
                    digits: None,
                    blink: Blink::Steady
                }
            ),
            Err(ProfileError::UnmappedColour { .. })
        ));
        assert!(matches!(
            p.encode(8, &LampState::Off),
            Err(ProfileError::NoSuchPosition { .. })
        ));
    }

    #[test]
    fn bad_profiles_are_refused() {
        let text = Profile::builtin("sim-line")
            .map(|_| include_str!("../../profiles/sim-line.toml"))
            .expect("shipped");
        let cases = [
            text.replace("colour = \"hr:0\"", "colour = \"ir:0\""),
            text.replace("positions = 16", "positions = 0"),
            text.replace("address = \"di:0\"", "address = \"di:0\"\nbit = 3"),
            text.replace("address = \"di:0\"", "address = \"di:65530\""),
            text.replace("colour = \"hr:0\"", "colour = \"hr:zero\""),
        ];
        for case in cases {
            assert!(Profile::from_toml(&case).is_err(), "{case}");
        }
    }
}
