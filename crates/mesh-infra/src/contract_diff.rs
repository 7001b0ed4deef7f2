//! Breaking changes of data products: each product's contract compared with the same product's
//! contract at another version of the model (a git ref: `mesh validate --against REF`).
//!
//! A change is additive (consumers keep working: a new nullable column, a new product, a
//! widened type, a tighter freshness) or breaking (a column removed, renamed, narrowed or
//! otherwise retyped, made non-null or nullable, a new non-null column, partitioning or
//! identifier changed, freshness loosened, the product moved to another table or removed).
//! A breaking change is refused unless the product's major version was raised.

use std::path::Path;

use mesh_domain::source::SourceMap;
use mesh_domain::{ColumnType, Consumer, Diagnostic, Diagnostics, Domain, Name};
use serde::Serialize;

use crate::contract::Contract;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub breaking: bool,
    /// What changed, for people: "column `units` removed".
    pub what: String,
}

/// One product's changes between the base and the current model.
#[derive(Debug, Clone, Serialize)]
pub struct ProductDiff {
    pub product: Name,
    /// `None`: the product is new.
    pub base_version: Option<u32>,
    /// `None`: the product was removed.
    pub version: Option<u32>,
    pub changes: Vec<Change>,
    /// Who the changes reach: the consumers declared at the base (those already reading).
    pub consumers: Vec<Consumer>,
    /// The manifest that declares (or declared) the product, relative to the domain root.
    #[serde(skip)]
    source: std::path::PathBuf,
}

impl ProductDiff {
    pub fn breaking(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.breaking)
    }

    /// Whether the major version went up: breaking changes are then allowed.
    pub fn bumped(&self) -> bool {
        matches!((self.base_version, self.version), (Some(b), Some(v)) if v > b)
    }

    /// Breaking changes without a version bump: what `mesh validate --against` refuses.
    pub fn refused(&self) -> bool {
        self.breaking().next().is_some() && !self.bumped()
    }
}

/// Compares every product of `base` with the product of the same name in `current`. Products
/// with no change are left out.
pub fn compare(base: &[Contract], current: &[Contract]) -> Vec<ProductDiff> {
    let mut out = Vec::new();
    for new in current {
        let old = base.iter().find(|o| o.product == new.product);
        let changes = match old {
            None => vec![Change {
                breaking: false,
                what: format!("new product (version {})", new.version),
            }],
            Some(old) => changes(old, new),
        };
        if !changes.is_empty() {
            out.push(ProductDiff {
                product: new.product.clone(),
                base_version: old.map(|o| o.version),
                version: Some(new.version),
                changes,
                consumers: old.map(|o| o.consumers.clone()).unwrap_or_default(),
                source: new.source.clone(),
            });
        }
    }
    for old in base.iter().filter(|o| !current.iter().any(|n| n.product == o.product)) {
        // A product nobody was given has nobody to break: it may go. One with consumers must
        // lose them first (a change of its own, announced to them).
        let what = if old.consumers.is_empty() {
            "product removed (it had no consumers)".to_string()
        } else {
            "product removed".to_string()
        };
        out.push(ProductDiff {
            product: old.product.clone(),
            base_version: Some(old.version),
            version: None,
            changes: vec![Change {
                breaking: !old.consumers.is_empty(),
                what,
            }],
            consumers: old.consumers.clone(),
            source: old.source.clone(),
        });
    }
    out
}

fn changes(old: &Contract, new: &Contract) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |breaking: bool, what: String| out.push(Change { breaking, what });
    if new.version < old.version {
        push(true, format!("version lowered from {} to {}", old.version, new.version));
    }
    if new.physical_name != old.physical_name {
        push(
            true,
            format!("publishes {} instead of {}", new.physical_name, old.physical_name),
        );
    }
    for oc in &old.columns {
        match new.column(oc.name.as_str()) {
            Some(nc) => {
                if nc.data_type != oc.data_type {
                    if widens(oc.data_type, nc.data_type) {
                        push(
                            false,
                            format!("column `{}` widened from {} to {}", oc.name, oc.data_type, nc.data_type),
                        );
                    } else {
                        push(
                            true,
                            format!(
                                "column `{}` type changed from {} to {}{}",
                                oc.name,
                                oc.data_type,
                                nc.data_type,
                                if widens(nc.data_type, oc.data_type) {
                                    " (narrowed)"
                                } else {
                                    ""
                                }
                            ),
                        );
                    }
                }
                if oc.nullable && !nc.nullable {
                    push(
                        true,
                        format!(
                            "column `{}` made non-null (rows already written may hold nulls)",
                            oc.name
                        ),
                    );
                } else if !oc.nullable && nc.nullable {
                    push(
                        true,
                        format!(
                            "column `{}` made nullable (consumers rely on it having a value)",
                            oc.name
                        ),
                    );
                }
            }
            None => match new.columns.iter().find(|c| c.renamed_from.as_ref() == Some(&oc.name)) {
                Some(renamed) => push(true, format!("column `{}` renamed to `{}`", oc.name, renamed.name)),
                None => push(true, format!("column `{}` removed", oc.name)),
            },
        }
    }
    for nc in &new.columns {
        let known = old.column(nc.name.as_str()).is_some()
            || nc
                .renamed_from
                .as_ref()
                .is_some_and(|r| old.column(r.as_str()).is_some());
        if known {
            continue;
        }
        if nc.nullable {
            push(false, format!("new nullable column `{}` ({})", nc.name, nc.data_type));
        } else {
            push(
                true,
                format!(
                    "new non-null column `{}` ({}): rows already written have no value for it; add it nullable",
                    nc.name, nc.data_type
                ),
            );
        }
    }
    let fields = |f: &[mesh_domain::PartitionField]| f.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    if old.partitioning != new.partitioning {
        push(
            true,
            format!(
                "partitioning changed from [{}] to [{}]",
                fields(&old.partitioning).join(", "),
                fields(&new.partitioning).join(", ")
            ),
        );
    }
    if old.identifier != new.identifier {
        let names = |n: &[Name]| n.iter().map(Name::as_str).collect::<Vec<_>>().join(", ");
        push(
            true,
            format!(
                "identifier changed from [{}] to [{}]",
                names(&old.identifier),
                names(&new.identifier)
            ),
        );
    }
    if new.freshness > old.freshness {
        push(
            true,
            format!("freshness loosened from {} to {}", old.freshness, new.freshness),
        );
    } else if new.freshness < old.freshness {
        push(
            false,
            format!("freshness tightened from {} to {}", old.freshness, new.freshness),
        );
    }
    out
}

/// Whether every value of `from` is a value of `to`, unchanged: Iceberg's type promotions.
fn widens(from: ColumnType, to: ColumnType) -> bool {
    use ColumnType as C;
    match (from, to) {
        (C::Int, C::Long) | (C::Float, C::Double) => true,
        (
            C::Decimal {
                precision: p1,
                scale: s1,
            },
            C::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s1 == s2 && p2 > p1,
        _ => false,
    }
}

/// One problem per refused product, at its manifest's `products[i]` (or the file, for a
/// removed product), naming the changes and the consumers they break.
pub fn refusals(diffs: &[ProductDiff], root: &Path, git_ref: &str, current: &Domain) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for d in diffs.iter().filter(|d| d.refused()) {
        let text = std::fs::read_to_string(root.join(&d.source)).unwrap_or_default();
        // Products load in manifest order, so the position in the model is the `[[products]]` index.
        let index = current
            .projects
            .iter()
            .find_map(|p| p.products.iter().position(|pr| pr.name == d.product));
        let field = index.map(|i| format!("products[{i}]")).unwrap_or_default();
        let line = index.and_then(|_| SourceMap::toml(&text).line(&format!("{field}.version")));
        let what: Vec<&str> = d.breaking().map(|c| c.what.as_str()).collect();
        let version = d.base_version.unwrap_or(1);
        let message = format!(
            "product `{}` (version {version}): breaking change{} against {git_ref}: {}",
            d.product,
            if what.len() == 1 { "" } else { "s" },
            what.join("; ")
        );
        let breaks = if d.consumers.is_empty() {
            "it has no consumers yet".to_string()
        } else {
            format!(
                "it would break {}",
                d.consumers
                    .iter()
                    .map(|c| format!("consumer {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let help = if d.version.is_none() {
            format!("{breaks}; remove its consumers first (and tell them), then the product, or keep it")
        } else if d.version < d.base_version {
            format!("{breaks}; a version never goes down: set version = {version} or higher")
        } else {
            format!(
                "{breaks}; undo the change, or raise the major version (version = {}) so consumers move to it knowingly",
                version + 1
            )
        };
        diags.push(Diagnostic::new(&d.source, field, message).at_line(line).with_help(help));
    }
    diags.sorted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iceberg_promotions_widen_and_nothing_else() {
        use ColumnType as C;
        assert!(widens(C::Int, C::Long));
        assert!(widens(C::Float, C::Double));
        assert!(widens(
            C::Decimal {
                precision: 10,
                scale: 2
            },
            C::Decimal {
                precision: 18,
                scale: 2
            }
        ));
        assert!(!widens(C::Long, C::Int));
        assert!(!widens(
            C::Decimal {
                precision: 10,
                scale: 2
            },
            C::Decimal {
                precision: 18,
                scale: 3
            }
        ));
        assert!(!widens(C::Int, C::String));
        assert!(!widens(C::Date, C::Timestamp));
    }
}
