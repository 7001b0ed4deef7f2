//! Run parameters are values, never SQL text: each `${name}` has a type (`string` unless the
//! job declares another in `param_types`), and a value must parse as that type before it is
//! bound into the SQL as a literal of that type (see `mesh_core::params`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The type of a run parameter, declared per job: `param_types = { run_date = "date" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    #[default]
    String,
    Int,
    Date,
    Timestamp,
}

impl ParamType {
    pub const NAMES: [&'static str; 4] = ["string", "int", "date", "timestamp"];

    pub fn parse(s: &str) -> Option<ParamType> {
        Some(match s {
            "string" => ParamType::String,
            "int" => ParamType::Int,
            "date" => ParamType::Date,
            "timestamp" => ParamType::Timestamp,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        ParamType::NAMES[self as usize]
    }

    /// Checks that `value` is a value of this type; the error says what was expected.
    pub fn check(self, value: &str) -> Result<(), String> {
        if value.contains("${") {
            // Spark substitutes `${…}` in SQL text with configuration values (including inside
            // string literals), so a value holding one could read the session's configuration.
            return Err("a parameter value may not contain `${`".into());
        }
        if value.contains('\0') {
            return Err("a parameter value may not contain a NUL character".into());
        }
        let ok = match self {
            ParamType::String => true,
            ParamType::Int => parse_int(value).is_some(),
            ParamType::Date => parse_date(value).is_some(),
            ParamType::Timestamp => is_timestamp(value),
        };
        if ok {
            Ok(())
        } else {
            Err(match self {
                ParamType::String => unreachable!("every string is a string"),
                ParamType::Int => "expected an integer (64-bit), e.g. 42".into(),
                ParamType::Date => "expected a date YYYY-MM-DD, e.g. 2026-11-27".into(),
                ParamType::Timestamp => {
                    "expected a timestamp YYYY-MM-DD HH:MM:SS[.ffffff][Z|±HH:MM], e.g. 2026-11-27 06:00:00".into()
                }
            })
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 64-bit integer with an optional sign, digits only (no spaces, no `1e3`).
pub fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').or_else(|| s.strip_prefix('+')).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD`, a real calendar day (years 0001–9999).
pub fn parse_date(s: &str) -> Option<(u32, u32, u32)> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (y, m, d) = (digits(y, 4)?, digits(m, 2)?, digits(d, 2)?);
    let days = days_in_month(y as i32, m)?;
    (y >= 1 && (1..=days).contains(&d)).then_some((y, m, d))
}

/// Days of `month` (1–12) in the proleptic Gregorian `year`; None for a month out of range.
pub fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    Some(match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    })
}

/// `YYYY-MM-DD`, `T` or a space, `HH:MM[:SS[.f…]]`, then an optional `Z` or `±HH:MM`.
fn is_timestamp(s: &str) -> bool {
    if s.len() < 16 || !s.is_char_boundary(10) || !s.is_char_boundary(11) {
        return false;
    }
    let (date, sep, time) = (&s[..10], &s[10..11], &s[11..]);
    if parse_date(date).is_none() || !(sep == "T" || sep == " ") {
        return false;
    }
    let (time, zone) = if let Some(t) = time.strip_suffix('Z') {
        (t, None)
    } else if let Some(i) = time.rfind(['+', '-']) {
        (&time[..i], Some(&time[i + 1..]))
    } else {
        (time, None)
    };
    if let Some(z) = zone {
        let Some((h, m)) = z.split_once(':') else {
            return false;
        };
        if !matches!((digits(h, 2), digits(m, 2)), (Some(h), Some(m)) if h <= 18 && m < 60) {
            return false;
        }
    }
    let (hms, frac) = match time.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (time, None),
    };
    if frac.is_some_and(|f| f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let parts: Vec<&str> = hms.split(':').collect();
    let limits = [23, 59, 59];
    (2..=3).contains(&parts.len())
        && !(frac.is_some() && parts.len() != 3)
        && parts
            .iter()
            .zip(limits)
            .all(|(p, max)| digits(p, 2).is_some_and(|v| v <= max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_their_type() {
        for ok in ["42", "-7", "+3", "9223372036854775807"] {
            assert!(ParamType::Int.check(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1e3", "1 ", "4 OR 1=1", "9223372036854775808", "0x10", "-"] {
            assert!(ParamType::Int.check(bad).is_err(), "{bad}");
        }
        for ok in ["2026-11-27", "2024-02-29", "0001-01-01"] {
            assert!(ParamType::Date.check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-11-27' OR '1'='1",
            "26-11-27",
            "2026-11-7",
            "0000-01-01",
        ] {
            assert!(ParamType::Date.check(bad).is_err(), "{bad}");
        }
        for ok in [
            "2026-11-27 06:00:00",
            "2026-11-27T06:00",
            "2026-11-27T06:00:00.123456Z",
            "2026-11-27 06:00:00+01:00",
        ] {
            assert!(ParamType::Timestamp.check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2026-11-27",
            "2026-11-27 24:00:00",
            "2026-11-27 06:00:00' --",
            "2026-11-27é06:00:00",
        ] {
            assert!(ParamType::Timestamp.check(bad).is_err(), "{bad}");
        }
        assert!(ParamType::String.check("NOPE' OR '1'='1").is_ok());
        assert!(ParamType::String.check("${spark.secret}").is_err());
    }
}
