//! Data products: the tables a project publishes to other domains, each with a major version,
//! a freshness promise and the consumers it is shared with (`[[products]]` in `project.toml`).
//!
//! A product is a promise about a refined or curated table of its project; its contract (ODCS)
//! is derived from the table's declaration by mesh-infra, never written by hand. Values of these
//! types only come out of validation (`crate::load`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::env::Env;
use crate::ident::{DomainAbbr, Name};
use crate::model::{Domain, Project, Table, TableRef};

/// One published table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Product {
    /// Unique in the domain: other domains name the product `{abbr}.{name}`.
    pub name: Name,
    /// A refined or curated table of the same project.
    pub table: TableRef,
    /// The major version: a change that breaks consumers needs a higher one.
    pub version: u32,
    pub description: String,
    pub freshness: Freshness,
    /// Who may read it; empty while the product is published to nobody yet.
    pub consumers: Vec<Consumer>,
}

/// The freshness promise: the table's latest commit is never older than this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Freshness {
    pub seconds: u64,
}

impl Freshness {
    /// `26h`, `90m`, `2d`, `1d6h`: the manifest's syntax, which is also how the lock file and
    /// run records write a promise (its display).
    pub fn parse(s: &str) -> Result<Freshness, &'static str> {
        crate::load::parse_lag(s).map(|seconds| Freshness { seconds })
    }

    /// Whether data `age_seconds` old (see [`age_seconds`]) is within the promise.
    pub fn holds(self, age_seconds: u64) -> bool {
        age_seconds <= self.seconds
    }

    /// The largest unit that divides the duration exactly, so `26h` stays `26h` (not `1d2h`):
    /// `(value, unit)` with unit `d`, `h`, `m` or `s`.
    pub fn value_unit(self) -> (u64, &'static str) {
        for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if self.seconds.is_multiple_of(secs) {
                return (self.seconds / secs, unit);
            }
        }
        (self.seconds, "s")
    }
}

impl fmt::Display for Freshness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (v, u) = self.value_unit();
        write!(f, "{v}{u}")
    }
}

/// How old data committed at `committed_ms` is at `at_ms` (both ms since the epoch), in whole
/// seconds; 0 for a commit after `at_ms`. The time is always given: the run's time or, for
/// `mesh products`, the clock.
pub fn age_seconds(committed_ms: i64, at_ms: i64) -> u64 {
    u64::try_from(at_ms.saturating_sub(committed_ms).max(0) / 1000).unwrap_or(0)
}

/// `3d4h`, `2h5m`, `4m10s`, `7s`: an age for a person, in its two largest units.
pub fn age_text(seconds: u64) -> String {
    let s = seconds;
    let parts = [
        (s / 86_400, "d"),
        (s % 86_400 / 3_600, "h"),
        (s % 3_600 / 60, "m"),
        (s % 60, "s"),
    ];
    let first = parts.iter().position(|(v, _)| *v > 0).unwrap_or(3);
    parts[first..]
        .iter()
        .take(2)
        .filter(|(v, _)| *v > 0 || first == 3)
        .map(|(v, u)| format!("{v}{u}"))
        .collect()
}

/// Another domain that reads a product, with its AWS account in each environment it reads in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consumer {
    pub domain: DomainAbbr,
    /// Only cloud environments; at least one.
    pub accounts: BTreeMap<Env, String>,
}

impl fmt::Display for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let accounts: Vec<String> = self.accounts.iter().map(|(e, a)| format!("{e} {a}")).collect();
        write!(f, "{} ({})", self.domain, accounts.join(", "))
    }
}

impl Product {
    /// The contract file, relative to the domain root.
    pub fn contract_path(&self) -> std::path::PathBuf {
        contract_path(&self.name)
    }

    /// The name a consumer's Glue catalog gives the shared table (a resource link):
    /// `{abbr}_{product}_v{version}`, so two major versions can be read side by side.
    pub fn resource_link(&self, producer: &DomainAbbr) -> String {
        format!("{producer}_{}_v{}", self.name, self.version)
    }
}

/// Where `mesh render` writes the contracts (one `<product>.odcs.yaml` per product).
pub const CONTRACTS_DIR: &str = "contracts";

/// The contract file of product `name`, relative to the domain root.
pub fn contract_path(name: &Name) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{CONTRACTS_DIR}/{name}.odcs.yaml"))
}

impl Domain {
    /// Every product of the domain, with its project and table, in manifest order.
    pub fn products(&self) -> impl Iterator<Item = (&Project, &Product, &Table)> {
        self.projects.iter().flat_map(|p| {
            p.products
                .iter()
                .filter_map(move |pr| p.table(&pr.table).map(|t| (p, pr, t)))
        })
    }

    /// The product named `name`, with its project and table.
    pub fn product(&self, name: &str) -> Option<(&Project, &Product, &Table)> {
        self.products().find(|(_, p, _)| p.name.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_keeps_the_unit_it_divides() {
        assert_eq!(Freshness { seconds: 26 * 3600 }.to_string(), "26h");
        assert_eq!(Freshness { seconds: 2 * 86_400 }.to_string(), "2d");
        assert_eq!(Freshness { seconds: 90 }.to_string(), "90s");
        assert_eq!(Freshness { seconds: 1800 }.value_unit(), (30, "m"));
    }

    #[test]
    fn a_promise_parses_as_written_and_holds_up_to_its_length() {
        for s in ["26h", "90m", "2d", "30s", "1d6h"] {
            assert_eq!(
                Freshness::parse(s).unwrap(),
                Freshness::parse(&Freshness::parse(s).unwrap().to_string()).unwrap()
            );
        }
        assert_eq!(Freshness::parse("26h"), Ok(Freshness { seconds: 26 * 3600 }));
        assert!(Freshness::parse("26 hours").is_err() && Freshness::parse("").is_err());
        let f = Freshness::parse("26h").unwrap();
        let commit = 1_767_261_600_000; // 2026-01-01T10:00:00Z
        assert_eq!(age_seconds(commit, commit + 26 * 3_600_000), 26 * 3600);
        assert!(f.holds(age_seconds(commit, commit + 26 * 3_600_000)));
        assert!(!f.holds(age_seconds(commit, commit + 26 * 3_600_000 + 1000)));
        assert_eq!(
            age_seconds(commit, commit - 5000),
            0,
            "a commit after the time is not old"
        );
    }

    #[test]
    fn ages_read_as_two_units() {
        assert_eq!(age_text(0), "0s");
        assert_eq!(age_text(7), "7s");
        assert_eq!(age_text(3725), "1h2m");
        assert_eq!(age_text(90_000), "1d1h");
        assert_eq!(age_text(86_400), "1d");
        assert_eq!(age_text(3 * 86_400), "3d");
    }
}
