//! Sizes given on the command line (`--max-rewrite 10GB`) and shown beside a step's locks:
//! whole bytes, parsed once when the flag is read, shown as `pg_size_pretty` shows them
//! (powers of 1024, `kB`, `MB`, `GB`, `TB`).

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub u64);

const UNITS: [(&str, u64); 5] = [
    ("b", 1),
    ("kb", 1 << 10),
    ("mb", 1 << 20),
    ("gb", 1 << 30),
    ("tb", 1 << 40),
];

impl FromStr for Bytes {
    type Err = String;

    /// `500MB`, `1.5GB`, `10kB`, `2TB`, `4096` (bytes); units as PostgreSQL writes them, in
    /// any case, with or without a space (`KiB`, `MiB`, ... are read as the same powers of 1024).
    fn from_str(text: &str) -> Result<Bytes, String> {
        let s = text.trim();
        let shown: String = s.chars().take(40).collect();
        let bad = || format!("{shown:?} is not a size: use a number and a unit, e.g. 500MB, 10GB");
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let unit = unit.trim().to_ascii_lowercase().replace("ib", "b");
        let per = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(u, _)| {
                    *u == unit || (u.len() == 2 && unit.len() == 1 && u.starts_with(&unit))
                })
                .map(|&(_, p)| p)
                .ok_or_else(bad)?
        };
        if num.is_empty() || num == "." || num.matches('.').count() > 1 || num.len() > 24 {
            return Err(bad());
        }
        let v: f64 = num.parse().map_err(|_| bad())?;
        let total = v * per as f64;
        if !total.is_finite() || total >= u64::MAX as f64 {
            return Err(format!("{shown:?} is too large"));
        }
        Ok(Bytes(total.round() as u64))
    }
}

impl fmt::Display for Bytes {
    /// `812 bytes`, `12 kB`, `1.2 GB`: one decimal under 10 of a unit, none above.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n < 1024 {
            return write!(f, "{n} bytes");
        }
        let (name, per) = [
            ("TB", 1u64 << 40),
            ("GB", 1 << 30),
            ("MB", 1 << 20),
            ("kB", 1 << 10),
        ]
        .into_iter()
        .find(|&(_, p)| n >= p)
        .unwrap_or(("kB", 1 << 10));
        let v = n as f64 / per as f64;
        if v < 10.0 {
            write!(f, "{v:.1} {name}")
        } else {
            write!(f, "{v:.0} {name}")
        }
    }
}

pub fn parse(s: &str) -> Result<Bytes, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sizes() {
        assert_eq!("500MB".parse(), Ok(Bytes(500 << 20)));
        assert_eq!("1.5 GB".parse(), Ok(Bytes(3 << 29)));
        assert_eq!("10kB".parse(), Ok(Bytes(10 << 10)));
        assert_eq!("2TiB".parse(), Ok(Bytes(2 << 40)));
        assert_eq!("4096".parse(), Ok(Bytes(4096)));
        assert_eq!("3g".parse(), Ok(Bytes(3 << 30)));
        for bad in [
            "",
            "GB",
            "-1GB",
            "1e9",
            "10 parsecs",
            "1.2.3MB",
            "NaN",
            "inf",
        ] {
            assert!(bad.parse::<Bytes>().is_err(), "{bad}");
        }
        assert!("99999999999999999999TB".parse::<Bytes>().is_err());
    }

    #[test]
    fn shows_sizes() {
        assert_eq!(Bytes(812).to_string(), "812 bytes");
        assert_eq!(Bytes(12 << 10).to_string(), "12 kB");
        assert_eq!(Bytes(1288490189).to_string(), "1.2 GB");
        assert_eq!(Bytes(8192).to_string(), "8.0 kB");
    }
}
