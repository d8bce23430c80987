//! Durations given on the command line or read from a plan file. They are parsed into whole
//! milliseconds when read, and rendered from that number: a flag's text never reaches SQL
//! (DESIGN rule 13).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The largest value PostgreSQL's time settings take (`lock_timeout`, `statement_timeout`: an
/// int of milliseconds), about 24.8 days; anything longer is a typo.
pub const MAX_MS: u64 = i32::MAX as u64;

/// A non-negative duration in whole milliseconds, at most [`MAX_MS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(u64);

/// PostgreSQL's time units (as in `SET lock_timeout = '10s'`), in milliseconds.
const UNITS: [(&str, f64); 7] = [
    ("us", 0.001),
    ("ms", 1.0),
    ("s", 1000.0),
    ("min", 60_000.0),
    ("m", 60_000.0),
    ("h", 3_600_000.0),
    ("d", 86_400_000.0),
];

impl Millis {
    pub const ZERO: Millis = Millis(0);

    pub fn from_ms(ms: u64) -> Option<Millis> {
        (ms <= MAX_MS).then_some(Millis(ms))
    }
    pub fn from_secs(s: u64) -> Millis {
        Millis((s * 1000).min(MAX_MS))
    }
    pub fn as_ms(self) -> u64 {
        self.0
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl FromStr for Millis {
    type Err = String;

    /// `500ms`, `10s`, `2min` (or `2m`), `1h`, `1d`, `1.5s`, `250us`, and `0`. A number without a
    /// unit other than 0 is refused: PostgreSQL would read it as milliseconds, people as seconds.
    fn from_str(text: &str) -> Result<Millis, String> {
        let s = text.trim();
        let shown: String = s.chars().take(40).collect();
        let bad = || {
            format!(
                "{shown:?} is not a duration: use a number and a unit, e.g. 500ms, 10s, 2min or 1h"
            )
        };
        if s.is_empty() {
            return Err(bad());
        }
        if s == "0" {
            return Ok(Millis(0));
        }
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| {
                format!("{shown:?} has no unit: write 500ms, 10s, 2min or 1h (0 for none)")
            })?;
        let (num, unit) = s.split_at(split);
        let unit = unit.trim();
        let &(_, per) = UNITS.iter().find(|(u, _)| *u == unit).ok_or_else(bad)?;
        // Digits and at most one dot: no sign, exponent, NaN or infinity can get through.
        if num.is_empty() || num == "." || num.matches('.').count() > 1 || num.len() > 24 {
            return Err(bad());
        }
        let v: f64 = num.parse().map_err(|_| bad())?;
        let ms = v * per;
        if !ms.is_finite() || ms > MAX_MS as f64 {
            return Err(format!(
                "{shown:?} is too long: at most {} days",
                MAX_MS / 86_400_000
            ));
        }
        let rounded = ms.round();
        if (rounded - ms).abs() > 1e-6 || (rounded == 0.0 && v != 0.0) {
            return Err(format!("{shown:?} is not a whole number of milliseconds"));
        }
        Ok(Millis(rounded as u64))
    }
}

impl fmt::Display for Millis {
    /// The largest unit that divides the value: `10s`, `500ms`, `2min`, `1h`; `0` for none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms == 0 {
            write!(f, "0")
        } else if ms % 3_600_000 == 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms % 60_000 == 0 {
            write!(f, "{}min", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// For clap: `--lock-timeout 10s`.
pub fn parse(s: &str) -> Result<Millis, String> {
    s.parse()
}

/// For clap: a duration that must not be zero (a wait that must end).
pub fn parse_nonzero(s: &str) -> Result<Millis, String> {
    let m: Millis = s.parse()?;
    if m.is_zero() {
        return Err("0 would mean waiting without end: give a duration such as 10s".into());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_rendering() {
        for (text, ms, shown) in [
            ("10s", 10_000, "10s"),
            ("500ms", 500, "500ms"),
            ("2min", 120_000, "2min"),
            ("2m", 120_000, "2min"),
            ("1.5s", 1500, "1500ms"),
            ("1h", 3_600_000, "1h"),
            ("90s", 90_000, "90s"),
            ("1000us", 1, "1ms"),
            ("0", 0, "0"),
            ("0s", 0, "0"),
            (" 15min ", 900_000, "15min"),
        ] {
            let m: Millis = text.parse().unwrap();
            assert_eq!(m.as_ms(), ms, "{text}");
            assert_eq!(m.to_string(), shown, "{text}");
            assert_eq!(m.to_string().parse::<Millis>().unwrap(), m);
        }
    }

    #[test]
    fn hostile_and_absurd_values_are_refused() {
        for text in [
            "1s'; DROP TABLE public.canary; --",
            "0'; DELETE FROM public.canary; --",
            "nan",
            "nans",
            "inf",
            "infs",
            "-1s",
            "+1s",
            "1e30s",
            "1e3s",
            "30",
            "",
            "s",
            ".s",
            "1.2.3s",
            "10 parsecs",
            "25d",
            "99999999999999999999999999h",
            "0.1us",
            "10s\0",
            "١٠s",
        ] {
            let r = text.parse::<Millis>();
            assert!(r.is_err(), "{text:?} was accepted as {r:?}");
            let e = r.unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(parse_nonzero("0").is_err());
    }
}
