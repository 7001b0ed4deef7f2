//! Products of other domains a project reads (`[[consumes]]` in `project.toml`, issue 25
//! item 5): which product at which major version, where its producer's domain is checked out
//! (for local runs and for checking the pin against the producer's contract), and the
//! producer's AWS account per environment (whose catalog the job reads on AWS).
//!
//! A job names a consumed product in its `inputs` as `{producer}.{product}` (`f01.daily_sales`)
//! and reads it in SQL as the producer's Glue catalog names it (`f01_curated.daily_sales`).
//! Values of these types only come out of validation (`crate::load`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::ident::{DomainAbbr, Name};

/// A consumed product: `f01.daily_sales@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Consumed {
    pub producer: DomainAbbr,
    pub product: Name,
    /// The major version the project reads: a producer's breaking change comes with a new
    /// major version, which the consumer adopts by raising this.
    pub version: u32,
    /// The producer's domain root, relative to this domain's root (`../finance01`).
    pub path: PathBuf,
    /// The producer's AWS account per environment: the Glue catalog and buckets the job reads
    /// there. Environments without one cannot run the job on AWS.
    pub accounts: BTreeMap<Env, String>,
    /// What `mesh pull` recorded for it in `products.lock.json` at this version, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
}

/// The lock file, at the domain root: written by `mesh pull`, committed.
pub const LOCK_FILE: &str = "products.lock.json";

/// One product as pulled: the snapshot jobs read, where the table is, and its contract then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// `f01.daily_sales`.
    pub product: String,
    pub version: u32,
    /// The producer's checkout, relative to this domain's root.
    pub path: PathBuf,
    pub snapshot_id: i64,
    /// The snapshot's commit time (ms since the epoch).
    pub committed_at_ms: i64,
    /// The producer's region, project slug and the table's layer: where its table lives in each
    /// environment (`{producer}-{layer}-{env}/{slug}/iceberg/{table}/`).
    pub region: String,
    pub slug: String,
    pub layer: String,
    /// `f01_curated`: the producer's database, as its Glue catalog names it.
    pub database: String,
    pub table: String,
    pub freshness: String,
    pub columns: Vec<PinColumn>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    #[serde(default)]
    pub identifier: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

impl Pin {
    /// `f01_curated.daily_sales`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub products: Vec<Pin>,
}

impl Lock {
    pub fn pin(&self, product: &str) -> Option<&Pin> {
        self.products.iter().find(|p| p.product == product)
    }
}

impl Consumed {
    /// `f01.daily_sales`: how job inputs and the lock file name it.
    pub fn id(&self) -> String {
        format!("{}.{}", self.producer, self.product)
    }

    /// Where the product's table is in the producer's `env`: its account, Glue database and
    /// S3 folder. `None` when it is not pulled (the pin says which layer, project and table it
    /// is), the pin is not one meshkit wrote, or no producer account is declared for `env`.
    pub fn shared_table(&self, env: Env) -> Option<SharedTable> {
        let pin = self.pin.as_ref()?;
        let account = self.accounts.get(&env)?.clone();
        let layer = crate::Layer::parse(&pin.layer)?;
        let slug = crate::ProjectSlug::parse(&pin.slug).ok()?;
        let table = Name::parse(&pin.table).ok()?;
        let n = crate::Naming::new(&self.producer, env);
        Some(SharedTable {
            account,
            region: pin.region.clone(),
            layer,
            database: n.database(layer),
            location: n.place_location(&slug, layer, &table),
            table,
        })
    }
}

/// A consumed product's table as deployed in one environment of its producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedTable {
    /// The producer's AWS account there: the Glue catalog (`CatalogId`) that holds the table.
    pub account: String,
    pub region: String,
    pub layer: crate::Layer,
    /// `f01_curated`.
    pub database: String,
    pub table: Name,
    /// `s3://f01-curated-dev/pj01/iceberg/daily_sales/`.
    pub location: crate::ObjectPath,
}

impl fmt::Display for Consumed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}@{}", self.producer, self.product, self.version)
    }
}

/// A job input that is a consumed product: `f01.daily_sales`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ProductInput {
    pub producer: DomainAbbr,
    pub product: Name,
}

impl fmt::Display for ProductInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.producer, self.product)
    }
}

impl crate::model::Project {
    /// The `[[consumes]]` entry of a job's product input.
    pub fn consumed(&self, input: &ProductInput) -> Option<&Consumed> {
        self.consumes
            .iter()
            .find(|c| c.producer == input.producer && c.product == input.product)
    }
}

/// Parses `f01.daily_sales@1` into (producer, product, version), or says what is wrong.
pub fn parse_pin(s: &str) -> Result<(DomainAbbr, Name, u32), String> {
    let (id, version) = s
        .split_once('@')
        .ok_or_else(|| format!("`{s}` has no major version after `@`"))?;
    let (producer, product) = id
        .split_once('.')
        .ok_or_else(|| format!("`{id}` is not `domain.product`"))?;
    let producer = DomainAbbr::parse(producer).map_err(|e| e.to_string())?;
    let product = Name::parse(product).map_err(|e| e.to_string())?;
    let version = version
        .parse::<u32>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| format!("`{version}` is not a major version (a whole number from 1)"))?;
    Ok((producer, product, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_or_say_why_not() {
        let (d, p, v) = parse_pin("f01.daily_sales@2").unwrap();
        assert_eq!((d.as_str(), p.as_str(), v), ("f01", "daily_sales", 2));
        assert!(parse_pin("f01.daily_sales").unwrap_err().contains("no major version"));
        assert!(parse_pin("daily_sales@1").unwrap_err().contains("domain.product"));
        assert!(parse_pin("f01.daily_sales@0")
            .unwrap_err()
            .contains("not a major version"));
        assert!(parse_pin("f01.daily_sales@v1")
            .unwrap_err()
            .contains("not a major version"));
    }
}
