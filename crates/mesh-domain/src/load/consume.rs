//! `[[consumes]]` of a `project.toml`: the products of other domains the project's jobs read
//! (`product = "f01.daily_sales@1"`, the producer's checkout `path`, its `accounts`), and job
//! inputs that name them (`f01.daily_sales`). Whether the pinned version still matches the
//! producer's contract needs the producer's model: `mesh validate` checks it (mesh-core's
//! `products`), not this loader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::unchecked::UncheckedConsume;
use super::{FileCx, PROJECT_FILE};
use crate::consume::{parse_pin, Consumed, ProductInput};
use crate::diagnostic::{did_you_mean, Diagnostic, Diagnostics};
use crate::model::{Domain, Layer};
use crate::source::SourceMap;

pub(super) fn check_consumes(cx: &mut FileCx<'_>, entries: &[UncheckedConsume]) -> Vec<Consumed> {
    let mut out: Vec<Consumed> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, c) in entries.iter().enumerate() {
        let f = |field: &str| format!("consumes[{i}].{field}");
        let before = cx.diags.len();
        let pin = match parse_pin(&c.product) {
            Ok(p) => Some(p),
            Err(why) => {
                cx.err_help(
                    f("product"),
                    format!("`{}` is not a product pin: {why}", c.product),
                    "write the producer's domain abbreviation, the product and its major version: product = \"f01.daily_sales@1\"",
                );
                None
            }
        };
        let path = match c.path.as_deref().map(str::trim) {
            None | Some("") => {
                cx.err_help(
                    f("product"),
                    format!("consumed product `{}` has no path", c.product),
                    "add path = \"../<producer>\": the producer domain's checkout, relative to this domain's root (runs read its tables, mesh validate its contract)",
                );
                None
            }
            Some(p) if Path::new(p).is_absolute() => {
                cx.err_help(
                    f("path"),
                    format!("`{p}` is an absolute path"),
                    "write it relative to this domain's root (e.g. \"../finance01\"), so the same manifest works on every checkout",
                );
                None
            }
            Some(p) => Some(PathBuf::from(p)),
        };
        let accounts = super::product::check_accounts(
            cx,
            &f("accounts"),
            &c.accounts,
            "local reads the checkout",
            "the producer's account in that environment: 12 digits, quoted, as in its domain.json",
        );
        let Some((producer, product, version)) = pin else {
            continue;
        };
        let id = format!("{producer}.{product}");
        if let Some(first) = seen.insert(id.clone(), i) {
            cx.err_help(
                f("product"),
                format!("`{id}` is consumed twice (first as consumes[{first}])"),
                "consume each product once, at the major version the jobs read",
            );
            continue;
        }
        if cx.diags.len() > before {
            continue;
        }
        if let Some(path) = path {
            out.push(Consumed {
                producer,
                product,
                version,
                path,
                accounts,
                pin: None,
            });
        }
    }
    out
}

/// Attaches each consumed product's pin from the lock file at `root` (when it pins the same
/// version). A lock that cannot be read is reported at the lock file.
pub(super) fn attach_pins(root: &Path, consumes: &mut [Consumed], diags: &mut Diagnostics) {
    if consumes.is_empty() {
        return;
    }
    let path = root.join(crate::consume::LOCK_FILE);
    let lock: crate::consume::Lock = match std::fs::read_to_string(&path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(l) => l,
            Err(e) => {
                diags.push(
                    Diagnostic::new(
                        crate::consume::LOCK_FILE,
                        "",
                        format!("not a lock file meshkit wrote: {e}"),
                    )
                    .with_help("run `mesh pull` to write it again"),
                );
                return;
            }
        },
        Err(_) => return,
    };
    for c in consumes {
        c.pin = lock.pin(&c.id()).filter(|p| p.version == c.version).cloned();
    }
}

/// Whether job input `value` is another domain's product: `None` when it is not one (a
/// `layer.table` or something else, left to the table reference check), `Some(None)` when it
/// is meant as one but not declared (reported), `Some(Some(_))` when it is a consumed product.
pub(super) fn product_input(
    cx: &mut FileCx<'_>,
    field: &str,
    value: &str,
    consumes: &[Consumed],
) -> Option<Option<ProductInput>> {
    let (prefix, name) = value.split_once('.')?;
    if Layer::parse(prefix).is_some() {
        return None;
    }
    if let Some(c) = consumes
        .iter()
        .find(|c| c.producer.as_str() == prefix && c.product.as_str() == name)
    {
        return Some(Some(ProductInput {
            producer: c.producer.clone(),
            product: c.product.clone(),
        }));
    }
    let ids: Vec<String> = consumes.iter().map(Consumed::id).collect();
    let help = did_you_mean(value, ids.iter().map(String::as_str)).unwrap_or_else(|| {
        format!("to read another domain's product, declare it: [[consumes]] product = \"{value}@1\", path = \"../<producer>\"; this project's tables are named `layer.table`")
    });
    cx.err_help(
        field.to_string(),
        format!("`{value}` is neither a table of this project nor a product it consumes"),
        help,
    );
    Some(None)
}

/// Rules that need the whole domain: a domain does not consume its own products.
pub(super) fn check_domain(root: &Path, domain: &Domain, diags: &mut Diagnostics) {
    for p in &domain.projects {
        for (i, c) in p.consumes.iter().enumerate() {
            if c.producer != domain.abbr {
                continue;
            }
            let file = p.dir.join(PROJECT_FILE);
            let text = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
            let field = format!("consumes[{i}].product");
            let line = SourceMap::toml(&text).line(&field);
            diags.push(
                Diagnostic::new(file, field, format!("`{c}` is a product of this domain"))
                    .at_line(line)
                    .with_help(
                        "name the table itself in the job's inputs (`layer.table`): products are for other domains",
                    ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{diagnostics, one_at};

    const BASE: &str = r#"name = "shop"
project_slug = "pj01"
owner = "team"
classification = "internal"

[[tables]]
name = "totals"
layer = "curated"
columns = [{ name = "n", type = "long" }]

[[jobs]]
name = "totals"
sql = "sql/totals.sql"
inputs = ["f02.daily_sales"]
output = "curated.totals"
mode = "overwrite"

[[consumes]]
product = "f02.daily_sales@1"
path = "../finance02"
accounts = { dev = "111111111111" }
"#;
    const SQL: &[(&str, &str)] = &[("sql/totals.sql", "SELECT 1 AS n")];

    #[test]
    fn a_consumed_product_is_a_job_input() {
        let d = diagnostics(BASE, SQL);
        assert!(d.is_empty(), "{d:#?}");
    }

    #[test]
    fn an_undeclared_product_input_says_how_to_declare_it() {
        let d = one_at(
            &diagnostics(
                &BASE.replace("inputs = [\"f02.daily_sales\"]", "inputs = [\"f02.daily_sale\"]"),
                SQL,
            ),
            "jobs[0].inputs[0]",
            &["`f02.daily_sale` is neither a table of this project nor a product it consumes"],
        );
        assert!(d.help.unwrap().contains("f02.daily_sales"));
    }

    #[test]
    fn pins_paths_and_accounts_are_checked() {
        for (from, to, field, wanted) in [
            (
                "f02.daily_sales@1",
                "f02.daily_sales",
                "consumes[0].product",
                "no major version",
            ),
            (
                "f02.daily_sales@1",
                "f02.daily_sales@0",
                "consumes[0].product",
                "not a major version",
            ),
            ("path = \"../finance02\"\n", "", "consumes[0].product", "has no path"),
            ("\"../finance02\"", "\"/abs/finance02\"", "consumes[0].path", "absolute"),
            (
                "dev = \"111111111111\"",
                "dev = \"1111\"",
                "consumes[0].accounts.dev",
                "not an AWS account",
            ),
            (
                "dev = \"111111111111\"",
                "local = \"111111111111\"",
                "consumes[0].accounts.local",
                "not a cloud environment",
            ),
        ] {
            let text = BASE.replacen(from, to, 1);
            let d = diagnostics(&text, SQL);
            // A bad pin also leaves the job's input undeclared.
            let d: Vec<_> = d
                .into_iter()
                .filter(|d| d.location.field != "jobs[0].inputs[0]")
                .collect();
            one_at(&d, field, &[wanted]);
        }
    }

    #[test]
    fn a_domain_does_not_consume_itself() {
        let d = diagnostics(&BASE.replace("f02.", "f01."), SQL);
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(d[0].message.contains("is a product of this domain"), "{}", d[0]);
    }
}
