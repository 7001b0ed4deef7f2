//! `[[products]]` of a `project.toml`: the table each publishes (refined or curated, of the same
//! project), its major version, description, freshness promise and consumers; then, across
//! projects, unique product names, consumers' accounts against the domain's own, and the AWS
//! names a product derives.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::daily::parse_lag;
use super::job::resolve_ref;
use super::unchecked::{UncheckedProduct, UncheckedTable};
use super::{FileCx, PROJECT_FILE};
use crate::diagnostic::{did_you_mean, Diagnostic, Diagnostics};
use crate::env::Env;
use crate::ident::DomainAbbr;
use crate::model::{Domain, Layer, Table};
use crate::naming::NameKind;
use crate::product::{Consumer, Freshness, Product};
use crate::source::SourceMap;

/// The products of one project; `None` entries were reported.
pub(super) fn check_products(
    cx: &mut FileCx<'_>,
    tables: &[Table],
    declared: &[UncheckedTable],
    products: &[UncheckedProduct],
) -> Vec<Product> {
    let mut out = Vec::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut published: HashMap<String, usize> = HashMap::new();
    for (i, p) in products.iter().enumerate() {
        if let Some(first) = names.insert(p.name.as_str(), i) {
            cx.err_help(
                format!("products[{i}].name"),
                format!("product `{}` is declared twice (first as products[{first}])", p.name),
                "product names must be unique in the domain: rename or remove one",
            );
        }
        if let Some(product) = check_product(cx, i, tables, declared, p) {
            if let Some(first) = published.insert(product.table.to_string(), i) {
                cx.err_help(
                    format!("products[{i}].table"),
                    format!(
                        "table `{}` is already published as products[{first}] (`{}`)",
                        product.table, products[first].name
                    ),
                    "a table is one product: consumers of a new major version read a new table, so publish that table instead",
                );
                continue;
            }
            out.push(product);
        }
    }
    out
}

fn check_product(
    cx: &mut FileCx<'_>,
    i: usize,
    tables: &[Table],
    declared: &[UncheckedTable],
    p: &UncheckedProduct,
) -> Option<Product> {
    let before = cx.diags.len();
    let f = |field: &str| format!("products[{i}].{field}");
    let name = cx.name(&f("name"), &p.name);
    let table = resolve_ref(cx, f("table"), &p.table, tables, declared);
    if let Some(t) = &table {
        if t.layer == Layer::Raw {
            let built: Vec<String> = tables
                .iter()
                .filter(|t| t.layer.is_iceberg())
                .map(|t| t.reference().to_string())
                .collect();
            cx.err_help(
                f("table"),
                format!(
                    "`{t}` is a raw table: raw files are landed as they come, with no schema evolution or snapshots a consumer could rely on"
                ),
                if built.is_empty() {
                    "publish a refined or curated table built from it by a job".to_string()
                } else {
                    format!("publish a refined or curated table instead: {}", built.join(", "))
                },
            );
        }
    }
    let version = match p.version {
        None => {
            cx.err_help(
                f("name"),
                format!("product `{}` has no version", p.name),
                "add `version = 1`: the major version, raised on every change that breaks consumers",
            );
            None
        }
        Some(v) if (1..=i64::from(u32::MAX)).contains(&v) => Some(v as u32),
        Some(v) => {
            cx.err_help(
                f("version"),
                format!("`{v}` is not a major version"),
                "use a whole number from 1, e.g. version = 1",
            );
            None
        }
    };
    let description = match p.description.as_deref().map(str::trim) {
        Some(d) if !d.is_empty() => Some(d.to_string()),
        _ => {
            cx.err_help(
                if p.description.is_some() {
                    f("description")
                } else {
                    f("name")
                },
                format!("product `{}` has no description", p.name),
                "add `description = \"…\"`: what the data is and what it is for, as other domains will read it",
            );
            None
        }
    };
    let freshness = match p.freshness.as_deref() {
        None => {
            cx.err_help(
                f("name"),
                format!("product `{}` has no freshness promise", p.name),
                "add `freshness = \"26h\"`: the table's latest commit is never older than this (a daily job plus 2 h of margin)",
            );
            None
        }
        Some(s) => match parse_lag(s) {
            Ok(0) => {
                cx.err_help(
                    f("freshness"),
                    "a freshness of 0 cannot be kept: the latest commit is always some time old",
                    "write how old the latest commit may be, e.g. freshness = \"26h\" for a daily job",
                );
                None
            }
            Ok(seconds) => Some(Freshness { seconds }),
            Err(why) => {
                cx.err_help(
                    f("freshness"),
                    format!("`{s}` is not a duration: {why}"),
                    "write a number and a unit, e.g. freshness = \"26h\", \"90m\" or \"2d\" (at most 366 days)",
                );
                None
            }
        },
    };
    let consumers = check_consumers(cx, i, p);

    if cx.diags.len() > before {
        return None;
    }
    Some(Product {
        name: name?,
        table: table?,
        version: version?,
        description: description?,
        freshness: freshness?,
        consumers,
    })
}

fn check_consumers(cx: &mut FileCx<'_>, i: usize, p: &UncheckedProduct) -> Vec<Consumer> {
    let mut out = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (ci, c) in p.consumers.iter().enumerate() {
        let f = |field: &str| format!("products[{i}].consumers[{ci}].{field}");
        let domain = match DomainAbbr::parse(&c.domain) {
            Ok(d) => Some(d),
            Err(e) => {
                cx.err_help(
                    f("domain"),
                    e.to_string(),
                    "write the consumer domain's domain_abbr, as in its domain.json",
                );
                None
            }
        };
        if let Some(first) = seen.insert(c.domain.as_str(), ci) {
            cx.err_help(
                f("domain"),
                format!("domain `{}` is listed twice (first as consumers[{first}])", c.domain),
                "list each consumer domain once, with its account in every environment it reads in",
            );
        }
        if c.accounts.is_empty() {
            cx.err_help(
                f("accounts"),
                format!("consumer `{}` has no AWS account", c.domain),
                "add accounts = { dev = \"444444444444\", prod = \"666666666666\" }: the consumer's account in each environment it reads in",
            );
        }
        let accounts = check_accounts(
            cx,
            &f("accounts"),
            &c.accounts,
            "local has no account",
            "account ids are 12 digits, quoted, e.g. \"444444444444\"",
        );
        if let Some(domain) = domain {
            if accounts.len() == c.accounts.len() && !accounts.is_empty() {
                out.push(Consumer { domain, accounts });
            }
        }
    }
    out
}

/// Rules that need the whole domain: product names unique across projects, consumers that are
/// other domains in other accounts, and the AWS names a product derives within their limits.
pub(super) fn check_domain(root: &Path, domain: &Domain, diags: &mut Diagnostics) {
    let mut names: HashMap<&str, &str> = HashMap::new();
    for p in &domain.projects {
        if p.products.is_empty() {
            continue;
        }
        let file: PathBuf = p.dir.join(PROJECT_FILE);
        let text = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
        let map = SourceMap::toml(&text);
        let mut push = |field: String, msg: String, help: String| {
            let line = map.line(&field);
            diags.push(Diagnostic::new(file.clone(), field, msg).at_line(line).with_help(help));
        };
        for (i, product) in p.products.iter().enumerate() {
            if let Some(other) = names.insert(product.name.as_str(), p.name.as_str()) {
                push(
                    format!("products[{i}].name"),
                    format!(
                        "product `{}` is already published by project `{other}`",
                        product.name
                    ),
                    format!(
                        "product names are unique in the domain (other domains name it `{}.{}`): rename one, e.g. `{}_{}`",
                        domain.abbr, product.name, p.name, product.name
                    ),
                );
            }
            // A resource link in the consumer's catalog names the product in every environment.
            let link = product.resource_link(&domain.abbr);
            if let Err(e) = NameKind::GlueTable.check(&link) {
                push(
                    format!("products[{i}].name"),
                    format!("derived {} `{link}` {e}", NameKind::GlueTable.describe()),
                    "shorten the product name".into(),
                );
            }
            for (ci, c) in product.consumers.iter().enumerate() {
                if c.domain == domain.abbr {
                    push(
                        format!("products[{i}].consumers[{ci}].domain"),
                        format!("`{}` is this domain: its projects read the table directly", c.domain),
                        "remove this consumer; list other domains only".into(),
                    );
                }
                for (env, id) in &c.accounts {
                    if domain.accounts.get(env) == Some(id) {
                        push(
                            format!("products[{i}].consumers[{ci}].accounts.{env}"),
                            format!(
                                "`{id}` is this domain's own {env} account (domain.json aws_accounts.{env}): sharing a table with its own account grants nothing"
                            ),
                            format!("write the {env} account of domain `{}`", c.domain),
                        );
                    }
                }
            }
        }
    }
}

/// An `accounts = { dev = "…", prod = "…" }` table: keys are cloud environments, values 12-digit
/// AWS account ids; each bad entry is reported at `field.env` (`local_note`: why `local` has no
/// entry; `id_help`: the fix of a bad id). Returns the good entries.
pub(super) fn check_accounts(
    cx: &mut FileCx<'_>,
    field: &str,
    accounts: &BTreeMap<String, String>,
    local_note: &str,
    id_help: &str,
) -> BTreeMap<Env, String> {
    let mut out = BTreeMap::new();
    for (env, id) in accounts {
        let Some(e) = env.parse::<Env>().ok().filter(|e| e.is_cloud()) else {
            let help = did_you_mean(env, ["dev", "int", "prod"])
                .unwrap_or_else(|| format!("use the keys dev, int and prod ({local_note})"));
            cx.err_help(
                format!("{field}.{env}"),
                format!("`{env}` is not a cloud environment"),
                help,
            );
            continue;
        };
        if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
            cx.err_help(
                format!("{field}.{env}"),
                format!("`{id}` is not an AWS account id"),
                id_help,
            );
            continue;
        }
        out.insert(e, id.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{diagnostics, one_at, projects};

    const BASE: &str = r#"name = "shop"
project_slug = "pj01"
owner = "team"
classification = "internal"

[[tables]]
name = "events"
layer = "raw"
format = "csv"
columns = [{ name = "id", type = "long", nullable = false }]

[[tables]]
name = "daily"
layer = "curated"
columns = [{ name = "id", type = "long", nullable = false }]
"#;

    fn with(products: &str) -> String {
        format!("{BASE}\n{products}")
    }

    const GOOD: &str = r#"[[products]]
name = "daily"
table = "curated.daily"
version = 1
description = "Daily totals."
freshness = "26h"
consumers = [{ domain = "m02", accounts = { dev = "444444444444", prod = "666666666666" } }]
"#;

    #[test]
    fn a_product_loads() {
        let d = diagnostics(&with(GOOD), &[]);
        assert!(d.is_empty(), "{d:#?}");
    }

    #[test]
    fn a_raw_table_cannot_be_a_product() {
        let d = one_at(
            &diagnostics(&with(&GOOD.replace("curated.daily", "raw.events")), &[]),
            "products[0].table",
            &["`raw.events` is a raw table"],
        );
        assert!(d.help.unwrap().contains("curated.daily"));
    }

    #[test]
    fn an_unknown_table_gets_a_suggestion() {
        let d = one_at(
            &diagnostics(&with(&GOOD.replace("curated.daily", "curated.dayly")), &[]),
            "products[0].table",
            &["`curated.dayly` is not declared"],
        );
        assert!(d.help.unwrap().contains("curated.daily"));
    }

    #[test]
    fn accounts_are_12_digits_of_cloud_environments() {
        one_at(
            &diagnostics(&with(&GOOD.replace("444444444444", "4444")), &[]),
            "products[0].consumers[0].accounts.dev",
            &["`4444` is not an AWS account id"],
        );
        let d = one_at(
            &diagnostics(&with(&GOOD.replace("dev =", "deb =")), &[]),
            "products[0].consumers[0].accounts.deb",
            &["`deb` is not a cloud environment"],
        );
        assert!(d.help.unwrap().contains("dev"));
        one_at(
            &diagnostics(&with(&GOOD.replace("dev =", "local =")), &[]),
            "products[0].consumers[0].accounts.local",
            &["not a cloud environment"],
        );
        one_at(
            &diagnostics(&with(&GOOD.replace("m02", "M-02")), &[]),
            "products[0].consumers[0].domain",
            &["domain abbreviation"],
        );
    }

    #[test]
    fn version_description_and_freshness_are_required_and_checked() {
        for (from, to, field, wanted) in [
            ("version = 1\n", "", "products[0].name", "has no version"),
            (
                "version = 1\n",
                "version = 0\n",
                "products[0].version",
                "not a major version",
            ),
            (
                "description = \"Daily totals.\"\n",
                "",
                "products[0].name",
                "has no description",
            ),
            (
                "description = \"Daily totals.\"\n",
                "description = \" \"\n",
                "products[0].description",
                "has no description",
            ),
            ("freshness = \"26h\"\n", "", "products[0].name", "no freshness promise"),
            (
                "freshness = \"26h\"\n",
                "freshness = \"26 hours\"\n",
                "products[0].freshness",
                "not a duration",
            ),
            (
                "freshness = \"26h\"\n",
                "freshness = \"0\"\n",
                "products[0].freshness",
                "cannot be kept",
            ),
        ] {
            one_at(&diagnostics(&with(&GOOD.replace(from, to)), &[]), field, &[wanted]);
        }
    }

    #[test]
    fn names_are_unique_in_the_project_and_the_domain() {
        let twice = format!("{GOOD}\n{GOOD}");
        let d = diagnostics(&with(&twice), &[]);
        assert!(
            d.iter()
                .any(|d| d.location.field == "products[1].name" && d.message.contains("declared twice")),
            "{d:#?}"
        );
        // The same name in another project of the domain.
        let other = with(GOOD)
            .replace("name = \"shop\"", "name = \"depot\"")
            .replace("pj01", "pj02")
            .replace("name = \"daily\"\nlayer", "name = \"daily2\"\nlayer")
            .replace("name = \"events\"", "name = \"events2\"")
            .replace("curated.daily\"", "curated.daily2\"");
        let d = projects(&[("shop", &with(GOOD), &[]), ("depot", &other, &[])]);
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(
            d[0].message.contains("already published by project `depot`"),
            "{}",
            d[0]
        );
        assert!(d[0].location.line.is_some() && d[0].help.is_some(), "{}", d[0]);
    }

    #[test]
    fn a_consumer_is_another_domain() {
        let d = diagnostics(&with(&GOOD.replace("m02", "f01")), &[]);
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].location.field, "products[0].consumers[0].domain");
        assert!(d[0].message.contains("is this domain"), "{}", d[0]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let d = diagnostics(&with(&GOOD.replace("version = 1", "version = 1\nowner = \"x\"")), &[]);
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(d[0].message.contains("unknown field `owner`"), "{}", d[0]);
    }
}
