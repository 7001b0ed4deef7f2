//! Typed runtime configuration, resolved in layers (each overrides the one before):
//!
//! 1. defaults, some of which depend on the environment (log level and format);
//! 2. `mesh.toml` at the domain root: top-level keys, then `[env.<ENV>]` tables;
//! 3. `{ABBR}_*` variables (`F01_LAKE_ROOT`), from the process or the domain's `.env` file;
//! 4. the plain variables `ENV`, `LOG_LEVEL`, `LOG_FORMAT`;
//! 5. command-line flags.
//!
//! Every value remembers where it came from, for `mesh config show`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use mesh_domain::{DomainAbbr, Env};
use serde::Serialize;

pub const CONFIG_FILE: &str = "mesh.toml";
pub const DOTENV_FILE: &str = ".env";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Source {
    Default,
    File(String),
    Variable(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(s) => write!(f, "file {s}"),
            Source::Variable(v) => write!(f, "variable {v}"),
            Source::Flag(s) => write!(f, "flag --{s}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub env: Setting<Env>,
    /// Root of the local lake (buckets are folders under it).
    pub lake_root: Setting<PathBuf>,
    /// SQLite file of the local Iceberg catalog.
    pub catalog_path: Setting<PathBuf>,
    pub log_level: Setting<String>,
    pub log_format: Setting<LogFormat>,
    pub max_concurrency: Setting<usize>,
    pub aws_region: Setting<String>,
    /// Override of the S3 endpoint (tests against a local S3 server).
    pub s3_endpoint: Setting<Option<String>>,
    /// Override of the Glue endpoint (tests against a local Glue server).
    pub glue_endpoint: Setting<Option<String>>,
    /// Bytes DataFusion's operators may hold at once, over every query of the process; sorts,
    /// joins and aggregations spill to disk beyond it (see [`parse_memory_limit`]).
    pub memory_limit: Setting<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}\n  help: fix the TOML syntax")]
    Syntax {
        file: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{file}: {message}\n  help: {help}")]
    File {
        file: String,
        message: String,
        help: String,
    },
    #[error("{source_name}: `{value}` is not a valid value for `{key}`\n  help: {help}")]
    Value {
        key: String,
        value: String,
        source_name: Source,
        help: String,
    },
}

/// Keys that can be set in every layer, with their variable suffix.
pub const KEYS: [&str; 10] = [
    "env",
    "lake_root",
    "catalog_path",
    "log_level",
    "log_format",
    "max_concurrency",
    "aws_region",
    "s3_endpoint",
    "glue_endpoint",
    "memory_limit",
];

/// Reads `KEY=VALUE` lines (comments, blank lines, optional quotes and `export`) of a `.env` file.
pub fn read_dotenv(path: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// The inputs of resolution, gathered by the caller so resolution itself is pure and testable.
pub struct Inputs<'a> {
    pub domain_root: &'a Path,
    pub abbr: &'a DomainAbbr,
    pub region: &'a str,
    /// Process variables; `.env` values fill in names the process does not set.
    pub vars: BTreeMap<String, String>,
    /// Flags given on the command line, by key.
    pub flags: BTreeMap<&'static str, String>,
}

impl Inputs<'_> {
    /// Process variables merged with the domain's `.env` (process wins).
    pub fn vars_with_dotenv(domain_root: &Path) -> BTreeMap<String, String> {
        let mut vars = read_dotenv(&domain_root.join(DOTENV_FILE));
        vars.extend(std::env::vars());
        vars
    }
}

type Layer = BTreeMap<String, (String, Source)>;

impl Config {
    pub fn resolve(inputs: &Inputs<'_>) -> Result<Config, ConfigError> {
        let file_path = inputs.domain_root.join(CONFIG_FILE);
        let (file_top, file_envs) = read_file(&file_path)?;
        let prefix = format!("{}_", inputs.abbr.as_str().to_ascii_uppercase());
        let abbr_vars: BTreeMap<String, String> = KEYS
            .iter()
            .filter_map(|k| {
                let name = format!("{prefix}{}", k.to_ascii_uppercase());
                inputs.vars.get(&name).map(|v| (k.to_string(), v.clone()))
            })
            .collect();
        let plain: BTreeMap<String, String> =
            [("env", "ENV"), ("log_level", "LOG_LEVEL"), ("log_format", "LOG_FORMAT")]
                .iter()
                .filter_map(|(k, var)| inputs.vars.get(*var).map(|v| (k.to_string(), v.clone())))
                .collect();

        // Each layer maps a key to its value and exact source; later layers win.
        let tag = |map: BTreeMap<String, String>, source: &dyn Fn(&str) -> Source| -> Layer {
            map.into_iter()
                .map(|(k, v)| {
                    let s = source(&k);
                    (k, (v, s))
                })
                .collect()
        };
        let mut layers: Vec<Layer> = vec![
            tag(file_top, &|_| Source::File(CONFIG_FILE.into())),
            tag(abbr_vars, &|k| {
                Source::Variable(format!("{prefix}{}", k.to_ascii_uppercase()))
            }),
            tag(plain, &|k| Source::Variable(k.to_ascii_uppercase())),
            tag(
                inputs.flags.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
                &|k| Source::Flag(k.replace('_', "-")),
            ),
        ];
        let lookup = |layers: &[Layer], key: &str| layers.iter().rev().find_map(|l| l.get(key).cloned());

        let env = match lookup(&layers, "env") {
            None => Setting {
                value: Env::Local,
                source: Source::Default,
            },
            Some((v, source)) => {
                let value = v.parse::<Env>().map_err(|_| ConfigError::Value {
                    key: "env".into(),
                    value: v.clone(),
                    source_name: source.clone(),
                    help: "use local, dev, int or prod".into(),
                })?;
                Setting { value, source }
            }
        };
        // Now that the environment is known, its file table applies on top of the file's top level.
        if let Some(env_table) = file_envs.get(env.value.as_str()) {
            let source = Source::File(format!("{CONFIG_FILE} [env.{}]", env.value));
            layers.insert(1, tag(env_table.clone(), &|_| source.clone()));
        }
        let get = |key: &str| lookup(&layers, key);
        let string = |key: &str, default: String| -> Setting<String> {
            match get(key) {
                Some((value, source)) => Setting { value, source },
                None => Setting {
                    value: default,
                    source: Source::Default,
                },
            }
        };
        let path = |key: &str, default: PathBuf| -> Setting<PathBuf> {
            match get(key) {
                Some((v, source)) => {
                    let p = PathBuf::from(v);
                    let value = if p.is_absolute() { p } else { inputs.domain_root.join(p) };
                    Setting { value, source }
                }
                None => Setting {
                    value: default,
                    source: Source::Default,
                },
            }
        };
        let optional = |key: &str| -> Setting<Option<String>> {
            match get(key) {
                Some((v, source)) => Setting {
                    value: Some(v).filter(|s| !s.is_empty()),
                    source,
                },
                None => Setting {
                    value: None,
                    source: Source::Default,
                },
            }
        };

        let lake_root = path("lake_root", inputs.domain_root.join(crate::layout::DEFAULT_LAKE_DIR));
        let catalog_path = path("catalog_path", inputs.domain_root.join(".mesh/catalog.db"));
        let default_level = match env.value {
            Env::Local | Env::Dev => "info",
            Env::Int | Env::Prod => "warn",
        };
        let log_level = string("log_level", default_level.into());
        let valid_levels = ["trace", "debug", "info", "warn", "error"];
        if !valid_levels.contains(&log_level.value.to_ascii_lowercase().as_str()) {
            return Err(ConfigError::Value {
                key: "log_level".into(),
                value: log_level.value.clone(),
                source_name: log_level.source.clone(),
                help: "use trace, debug, info, warn or error".into(),
            });
        }
        let default_format = if env.value == Env::Local { "text" } else { "json" };
        let fmt = string("log_format", default_format.into());
        let log_format = Setting {
            value: match fmt.value.to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Value {
                        key: "log_format".into(),
                        value: fmt.value,
                        source_name: fmt.source,
                        help: "use text or json".into(),
                    })
                }
            },
            source: fmt.source,
        };
        let mc = string("max_concurrency", "4".into());
        let max_concurrency = Setting {
            value: mc
                .value
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| ConfigError::Value {
                    key: "max_concurrency".into(),
                    value: mc.value.clone(),
                    source_name: mc.source.clone(),
                    help: "use a number from 1 to 64".into(),
                })?,
            source: mc.source,
        };
        let ml = string("memory_limit", DEFAULT_MEMORY_LIMIT.into());
        let memory_limit = Setting {
            value: parse_memory_limit(&ml.value, machine_memory()).ok_or_else(|| ConfigError::Value {
                key: "memory_limit".into(),
                value: ml.value.clone(),
                source_name: ml.source.clone(),
                help: "use a size such as 2GiB, 512MiB or 1000000000 (bytes), or a share of the machine's memory such as 0.5".into(),
            })?,
            source: ml.source,
        };
        Ok(Config {
            memory_limit,
            env,
            lake_root,
            catalog_path,
            log_level,
            log_format,
            max_concurrency,
            aws_region: string("aws_region", inputs.region.to_string()),
            s3_endpoint: optional("s3_endpoint"),
            glue_endpoint: optional("glue_endpoint"),
        })
    }

    /// `key = value  (source)` lines for `mesh config show`.
    pub fn lines(&self) -> Vec<(String, String, String)> {
        let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "(none)".into());
        vec![
            ("env".into(), self.env.value.to_string(), self.env.source.to_string()),
            (
                "lake_root".into(),
                self.lake_root.value.display().to_string(),
                self.lake_root.source.to_string(),
            ),
            (
                "catalog_path".into(),
                self.catalog_path.value.display().to_string(),
                self.catalog_path.source.to_string(),
            ),
            (
                "log_level".into(),
                self.log_level.value.clone(),
                self.log_level.source.to_string(),
            ),
            (
                "log_format".into(),
                match self.log_format.value {
                    LogFormat::Text => "text",
                    LogFormat::Json => "json",
                }
                .to_string(),
                self.log_format.source.to_string(),
            ),
            (
                "max_concurrency".into(),
                self.max_concurrency.value.to_string(),
                self.max_concurrency.source.to_string(),
            ),
            (
                "aws_region".into(),
                self.aws_region.value.clone(),
                self.aws_region.source.to_string(),
            ),
            (
                "s3_endpoint".into(),
                show(&self.s3_endpoint.value),
                self.s3_endpoint.source.to_string(),
            ),
            (
                "glue_endpoint".into(),
                show(&self.glue_endpoint.value),
                self.glue_endpoint.source.to_string(),
            ),
            (
                "memory_limit".into(),
                format!(
                    "{} ({} bytes)",
                    human_bytes(self.memory_limit.value),
                    self.memory_limit.value
                ),
                self.memory_limit.source.to_string(),
            ),
        ]
    }
}

type FileTables = (BTreeMap<String, String>, BTreeMap<String, BTreeMap<String, String>>);

fn read_file(path: &Path) -> Result<FileTables, ConfigError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Default::default());
    };
    let file = CONFIG_FILE.to_string();
    let value: toml_value::Table = text
        .parse::<toml_value::Table>()
        .map_err(|source| ConfigError::Syntax {
            file: file.clone(),
            source: Box::new(source),
        })?;
    let mut top = BTreeMap::new();
    let mut envs = BTreeMap::new();
    for (k, v) in value {
        match (k.as_str(), v) {
            ("env", toml_value::Value::Table(t)) => {
                for (env, table) in t {
                    if env.parse::<Env>().is_err() {
                        return Err(ConfigError::File {
                            file,
                            message: format!("[env.{env}] is not an environment"),
                            help: "use [env.local], [env.dev], [env.int] or [env.prod]".into(),
                        });
                    }
                    let toml_value::Value::Table(table) = table else {
                        return Err(ConfigError::File {
                            file,
                            message: format!("env.{env} must be a table"),
                            help: format!("write [env.{env}]"),
                        });
                    };
                    envs.insert(env, flat(&file, table)?);
                }
            }
            (key, v) => {
                let one: toml_value::Table = [(key.to_string(), v)].into_iter().collect();
                top.extend(flat(&file, one)?);
            }
        }
    }
    Ok((top, envs))
}

fn flat(file: &str, t: toml_value::Table) -> Result<BTreeMap<String, String>, ConfigError> {
    t.into_iter()
        .map(|(k, v)| {
            if !KEYS.contains(&k.as_str()) || (k == "env" && !matches!(v, toml_value::Value::String(_))) {
                return Err(ConfigError::File {
                    file: file.to_string(),
                    message: format!("unknown key `{k}`"),
                    help: format!("the keys are: {}", KEYS.join(", ")),
                });
            }
            // Each key has one type; `lake_root = 5` must not become the folder `5`.
            let s = match (k.as_str(), v) {
                (_, toml_value::Value::String(s)) => s,
                ("max_concurrency" | "memory_limit", toml_value::Value::Integer(n)) => n.to_string(),
                ("memory_limit", toml_value::Value::Float(x)) => format!("{x:?}"),
                (key, other) => {
                    let (want, example) = if key == "max_concurrency" {
                        ("an integer", "max_concurrency = 4")
                    } else {
                        ("a string", "lake_root = \".mesh/lake\"")
                    };
                    let shown = other.to_string();
                    return Err(ConfigError::File {
                        file: file.to_string(),
                        message: format!(
                            "`{key}` must be {want}, not the {} {}",
                            other.type_str(),
                            mesh_domain::diagnostic::truncate(&shown)
                        ),
                        help: format!("quote it, e.g. {example}"),
                    });
                }
            };
            Ok((k, s))
        })
        .collect()
}

/// `memory_limit` when no layer sets it: half of the machine's memory.
pub const DEFAULT_MEMORY_LIMIT: &str = "0.5";

/// A `memory_limit` value in bytes: a size with a binary (`KiB`, `MiB`, `GiB`, `TiB`) or
/// decimal (`KB`, `MB`, `GB`, `TB`) unit, e.g. `2GiB` or `1.5 GB`; plain bytes (`1000000`);
/// or a share of `machine` bytes, a number above 0 and at most 1 with a decimal point
/// (`0.5`). `None` when it is none of these or under 1 MiB, which no query can run in.
pub fn parse_memory_limit(text: &str, machine: u64) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    let n: f64 = number.parse().ok().filter(|n: &f64| n.is_finite() && *n > 0.0)?;
    let bytes = match unit.to_ascii_lowercase().as_str() {
        "" if number.contains('.') => (n <= 1.0).then_some(n * machine as f64)?,
        "" | "b" => n,
        "kib" => n * 1024.0,
        "mib" => n * 1024f64.powi(2),
        "gib" => n * 1024f64.powi(3),
        "tib" => n * 1024f64.powi(4),
        "kb" => n * 1e3,
        "mb" => n * 1e6,
        "gb" => n * 1e9,
        "tb" => n * 1e12,
        _ => return None,
    };
    let bytes = bytes as u64;
    (bytes >= 1024 * 1024).then_some(bytes)
}

/// Memory this process may use: the machine's (`/proc/meminfo`), or its cgroup's limit when
/// that is lower (a container; cgroup v2's `memory.max`, else v1's `memory.limit_in_bytes`,
/// whose "no limit" is a huge number that the minimum discards). 8 GiB where neither can be read.
pub fn machine_memory() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|f| std::fs::read_to_string(f).ok())
    .and_then(|v| v.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => t.min(c),
        (Some(t), None) => t,
        (None, Some(c)) => c,
        (None, None) => 8 * 1024 * 1024 * 1024,
    }
}

/// `1.5 GiB`, `512.0 MiB`.
pub fn human_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// The `toml` crate's value types, named for readability here.
mod toml_value {
    pub use toml::value::Table;
    pub use toml::Value;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(
        root: &'a Path,
        abbr: &'a DomainAbbr,
        vars: &[(&str, &str)],
        flags: &[(&'static str, &str)],
    ) -> Inputs<'a> {
        Inputs {
            domain_root: root,
            abbr,
            region: "eu-west-1",
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            flags: flags.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        }
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let abbr = DomainAbbr::parse("f01").unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "max_concurrency = 2\nlog_level = \"debug\"\n[env.dev]\nmax_concurrency = 3\ns3_endpoint = \"http://127.0.0.1:9000\"\n",
        )
        .unwrap();

        let c = Config::resolve(&inputs(dir.path(), &abbr, &[], &[])).unwrap();
        assert_eq!(c.env.value, Env::Local);
        assert_eq!(c.max_concurrency.value, 2);
        assert_eq!(c.max_concurrency.source, Source::File("mesh.toml".into()));
        assert_eq!(c.log_format.value, LogFormat::Text);
        assert_eq!(c.s3_endpoint.value, None);

        let c = Config::resolve(&inputs(
            dir.path(),
            &abbr,
            &[("F01_ENV", "dev"), ("F01_LOG_LEVEL", "warn")],
            &[],
        ))
        .unwrap();
        assert_eq!(c.env.value, Env::Dev);
        assert_eq!(c.env.source, Source::Variable("F01_ENV".into()));
        assert_eq!(c.max_concurrency.value, 3, "[env.dev] applies once ENV is dev");
        assert_eq!(c.s3_endpoint.value.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.log_level.value, "warn");
        assert_eq!(
            c.log_format.value,
            LogFormat::Json,
            "cloud environments log JSON by default"
        );

        let c = Config::resolve(&inputs(
            dir.path(),
            &abbr,
            &[
                ("F01_ENV", "dev"),
                ("ENV", "prod"),
                ("LOG_LEVEL", "error"),
                ("F01_LOG_LEVEL", "warn"),
            ],
            &[("max_concurrency", "7")],
        ))
        .unwrap();
        assert_eq!(c.env.value, Env::Prod, "ENV beats {{ABBR}}_ENV");
        assert_eq!(c.log_level.value, "error");
        assert_eq!(c.log_level.source, Source::Variable("LOG_LEVEL".into()));
        assert_eq!(c.max_concurrency.value, 7);
        assert_eq!(c.max_concurrency.source, Source::Flag("max-concurrency".into()));

        let c = Config::resolve(&inputs(dir.path(), &abbr, &[("ENV", "prod")], &[("env", "local")])).unwrap();
        assert_eq!(c.env.value, Env::Local, "flags beat variables");
    }

    #[test]
    fn bad_values_name_their_source() {
        let dir = tempfile::tempdir().unwrap();
        let abbr = DomainAbbr::parse("f01").unwrap();
        let e = Config::resolve(&inputs(dir.path(), &abbr, &[("ENV", "staging")], &[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("variable ENV") && e.contains("staging") && e.contains("local, dev, int or prod"),
            "{e}"
        );
        std::fs::write(dir.path().join(CONFIG_FILE), "lake = \"x\"\n").unwrap();
        let e = Config::resolve(&inputs(dir.path(), &abbr, &[], &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mesh.toml") && e.contains("unknown key `lake`"), "{e}");
    }

    #[test]
    fn memory_limits_parse_sizes_shares_and_bytes() {
        let gib = 1024 * 1024 * 1024u64;
        let machine = 16 * gib;
        assert_eq!(parse_memory_limit("2GiB", machine), Some(2 * gib));
        assert_eq!(parse_memory_limit("512 MiB", machine), Some(512 * 1024 * 1024));
        assert_eq!(parse_memory_limit("1.5GB", machine), Some(1_500_000_000));
        assert_eq!(parse_memory_limit("0.5", machine), Some(8 * gib));
        assert_eq!(parse_memory_limit("1.0", machine), Some(machine));
        assert_eq!(parse_memory_limit("3000000", machine), Some(3_000_000));
        for bad in [
            "", "0", "0.0", "1.5", "-1GiB", "2 GiBs", "lots", "NaN", "1000", "0.00001",
        ] {
            assert_eq!(parse_memory_limit(bad, machine), None, "{bad}");
        }
        assert!(machine_memory() > 0);
    }

    #[test]
    fn memory_limit_defaults_to_half_the_machine_and_is_set_in_every_layer() {
        let dir = tempfile::tempdir().unwrap();
        let abbr = DomainAbbr::parse("f01").unwrap();
        let c = Config::resolve(&inputs(dir.path(), &abbr, &[], &[])).unwrap();
        assert_eq!(c.memory_limit.value, machine_memory() / 2);
        assert_eq!(c.memory_limit.source, Source::Default);
        assert!(c.lines().iter().any(|(k, _, s)| k == "memory_limit" && s == "default"));

        std::fs::write(dir.path().join(CONFIG_FILE), "memory_limit = 268435456\n").unwrap();
        let c = Config::resolve(&inputs(dir.path(), &abbr, &[], &[])).unwrap();
        assert_eq!(c.memory_limit.value, 256 * 1024 * 1024);
        std::fs::write(dir.path().join(CONFIG_FILE), "memory_limit = \"1GiB\"\n").unwrap();
        let c = Config::resolve(&inputs(dir.path(), &abbr, &[("F01_MEMORY_LIMIT", "64MiB")], &[])).unwrap();
        assert_eq!(c.memory_limit.value, 64 * 1024 * 1024);
        assert_eq!(c.memory_limit.source, Source::Variable("F01_MEMORY_LIMIT".into()));

        let e = Config::resolve(&inputs(dir.path(), &abbr, &[("F01_MEMORY_LIMIT", "lots")], &[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("F01_MEMORY_LIMIT") && e.contains("memory_limit") && e.contains("2GiB"),
            "{e}"
        );
    }

    #[test]
    fn dotenv_parsing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "# comment\nexport ENV=dev\nF01_LAKE_ROOT=\"/tmp/lake\"\n\n",
        )
        .unwrap();
        let vars = read_dotenv(&dir.path().join(".env"));
        assert_eq!(vars.get("ENV").map(String::as_str), Some("dev"));
        assert_eq!(vars.get("F01_LAKE_ROOT").map(String::as_str), Some("/tmp/lake"));
    }
}
