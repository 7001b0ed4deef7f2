//! Job versions: a fingerprint of what determines a job's output, committed with its state
//! (summary property `mesh.state.<job>.fingerprint`, in the same snapshot as the data and the
//! bookmarks or intervals it describes).
//!
//! The fingerprint has one part per thing that can make the rows already written differ from
//! what the job computes now, so a change names its cause:
//! - `sql`: the SQL after normalisation (comments dropped, whitespace collapsed, keywords and
//!   identifiers lower-cased outside quotes): reformatting a query is no change;
//! - `inputs`: the declared inputs and which of them are read incrementally;
//! - `mode`: the write mode, merge keys, delete condition and duplicate rule, and a time-range
//!   job's column and grain;
//! - `schema`: the output table's columns (name, type, nullability).
//!
//! Only stateful jobs (incremental or time-range) commit one: a job without state recomputes
//! its whole output every run, so nothing it wrote before can be stale.

use std::fmt::Write as _;
use std::path::Path;

use mesh_domain::{Job, Project, WriteMode};

/// The summary property holding a job's fingerprint.
pub fn fingerprint_key(job: &str) -> String {
    format!("{}{job}.fingerprint", mesh_iceberg::STATE_PREFIX)
}

/// The parts of a fingerprint, in the order they are encoded.
pub const PARTS: [&str; 4] = ["sql", "inputs", "mode", "schema"];

/// A job's fingerprint: `sql:<hash> inputs:<hash> mode:<hash> schema:<hash>` (16 hex digits
/// each, FNV-1a 64: stable across builds and platforms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    /// The fingerprint of `job` as the model (and its SQL file `sql`) declares it.
    pub fn of(project: &Project, job: &Job, sql: &str) -> Fingerprint {
        let mut inputs: Vec<String> = job
            .inputs
            .iter()
            .map(|i| {
                let incremental = job.incremental.as_ref().is_some_and(|x| x.inputs.contains(i));
                format!("{i}{}", if incremental { " incremental" } else { "" })
            })
            .collect();
        inputs.sort();
        let mut mode = job.mode.as_str().to_string();
        if let WriteMode::Merge(m) = &job.mode {
            let keys: Vec<&str> = m.keys.iter().map(|k| k.as_str()).collect();
            let _ = write!(
                mode,
                " keys={} delete_when={} on_duplicate={:?}",
                keys.join(","),
                m.delete_when.as_deref().map(normalize_sql).unwrap_or_default(),
                m.on_duplicate
            );
        }
        if let Some(tr) = &job.time_range {
            let _ = write!(mode, " time_range={}/{}", tr.column, tr.grain);
        }
        let schema = project
            .table(&job.output)
            .map(|t| {
                t.columns
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {} {}",
                            c.name,
                            c.data_type,
                            if c.nullable { "null" } else { "not null" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let parts = [normalize_sql(sql), inputs.join(", "), mode, schema];
        let encoded: Vec<String> = PARTS
            .iter()
            .zip(&parts)
            .map(|(name, p)| format!("{name}:{:016x}", fnv1a(p.as_bytes())))
            .collect();
        Fingerprint(encoded.join(" "))
    }

    /// The fingerprint of `job`, its SQL read from the domain at `root`; `None` when the file
    /// cannot be read (the run itself reports that).
    pub fn of_job(root: &Path, project: &Project, job: &Job) -> Option<Fingerprint> {
        let sql = std::fs::read_to_string(root.join(&job.sql)).ok()?;
        Some(Fingerprint::of(project, job, &sql))
    }

    /// The parts that differ from `other` (another encoding: every part).
    pub fn changed_parts(&self, other: &str) -> Vec<&'static str> {
        let parse = |s: &str| -> Vec<(String, String)> {
            s.split_whitespace()
                .filter_map(|p| p.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())))
                .collect()
        };
        let (mine, theirs) = (parse(&self.0), parse(other));
        PARTS
            .iter()
            .filter(|name| {
                let get = |v: &[(String, String)]| v.iter().find(|(n, _)| n == *name).map(|(_, h)| h.clone());
                get(&mine) != get(&theirs)
            })
            .copied()
            .collect()
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What each fingerprint part means, for messages.
pub fn describe_part(part: &str) -> &'static str {
    match part {
        "sql" => "its SQL",
        "inputs" => "its inputs",
        "mode" => "its write mode, keys or time range",
        "schema" => "its output table's columns",
        _ => "its definition",
    }
}

/// A stateful job whose definition changed since its state was committed, under a policy
/// that does not let a run go on.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("{} changed since its state was committed in {output} (on_change = \"{policy}\"); its next run would mix rows computed by the old and the new definition\n  help: mesh run --job {job} --full-refresh recomputes {output} from scratch; or set on_change = \"forward_only\" in the job to keep the rows already written", parts.iter().map(|p| describe_part(p)).collect::<Vec<_>>().join(", "))]
    Changed {
        job: String,
        output: String,
        policy: &'static str,
        parts: Vec<&'static str>,
    },
    #[error(transparent)]
    State(#[from] mesh_iceberg::Error),
}

/// Adds the job's fingerprint to the state its run commits (expecting the value read, as for
/// bookmarks). A stateful job whose committed fingerprint differs goes on only under
/// `on_change = "forward_only"`; `mesh run` resets the state of `full_refresh` jobs (and of
/// `--full-refresh`) before they run, so a difference met here under those is refused too.
pub fn record(
    root: &Path,
    project: &Project,
    job: &Job,
    output: Option<&mesh_iceberg::Table>,
    state: &mut mesh_iceberg::CommitProperties,
) -> Result<(), VersionError> {
    if !job.is_stateful() {
        return Ok(());
    }
    let Some(now) = Fingerprint::of_job(root, project, job) else {
        return Ok(()); // the SQL file cannot be read: the run reports it
    };
    let key = fingerprint_key(job.name.as_str());
    let prev = match output.map(|t| t.job_state(&key)).transpose() {
        Ok(v) => v.flatten(),
        // History that lost the state: the bookmark or interval lookups report it, naming the
        // restore; the fingerprint is not recorded until the state is found again.
        Err(mesh_iceberg::Error::StateLost { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if let Some(was) = prev.as_deref().filter(|v| !v.is_empty()) {
        let parts = now.changed_parts(was);
        if !parts.is_empty() && job.on_change() != mesh_domain::OnChange::ForwardOnly {
            return Err(VersionError::Changed {
                job: job.name.to_string(),
                output: job.output.to_string(),
                policy: job.on_change().as_str(),
                parts,
            });
        }
    }
    state.set.insert(key.clone(), now.0);
    state.expect.insert(key, prev);
    Ok(())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// SQL with comments dropped, runs of whitespace made one space (none at the ends) and
/// everything outside quotes lower-cased; string literals and quoted identifiers are kept as
/// written.
pub fn normalize_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut pending_space = false;
    let push_space = |out: &mut String, pending: &mut bool| {
        if *pending && !out.is_empty() {
            out.push(' ');
        }
        *pending = false;
    };
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
                pending_space = true;
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = '\0';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                pending_space = true;
            }
            '\'' | '"' | '`' => {
                push_space(&mut out, &mut pending_space);
                out.push(c);
                while let Some(n) = chars.next() {
                    out.push(n);
                    if n == '\\' {
                        if let Some(esc) = chars.next() {
                            out.push(esc);
                        }
                        continue;
                    }
                    if n == c {
                        // A doubled quote is an escaped quote inside the literal.
                        if chars.peek() == Some(&c) {
                            out.push(chars.next().expect("peeked"));
                            continue;
                        }
                        break;
                    }
                }
            }
            c if c.is_whitespace() => pending_space = true,
            c => {
                push_space(&mut out, &mut pending_space);
                out.extend(c.to_lowercase());
            }
        }
    }
    // A trailing `;` is no change either.
    while out.ends_with(';') || out.ends_with(' ') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_and_comments_are_no_change() {
        let a = "SELECT a, b\nFROM t -- the table\nWHERE x = 'A  b' /* keep */;\n";
        let b = "select   a,  b from T\n\n  where X = 'A  b'";
        assert_eq!(normalize_sql(a), normalize_sql(b));
        assert_eq!(normalize_sql(a), "select a, b from t where x = 'A  b'");
        // Literals keep their case and spacing; a changed literal is a change.
        assert_ne!(normalize_sql("SELECT 'a'"), normalize_sql("SELECT 'A'"));
        assert_eq!(
            normalize_sql("SELECT 'it''s -- no comment'"),
            "select 'it''s -- no comment'"
        );
        assert_ne!(normalize_sql("SELECT a + 1"), normalize_sql("SELECT a + 2"));
    }

    #[test]
    fn changed_parts_name_the_cause() {
        let f = Fingerprint("sql:01 inputs:02 mode:03 schema:04".into());
        assert_eq!(
            f.changed_parts("sql:01 inputs:02 mode:03 schema:04"),
            Vec::<&str>::new()
        );
        assert_eq!(
            f.changed_parts("sql:99 inputs:02 mode:03 schema:05"),
            vec!["sql", "schema"]
        );
        assert_eq!(f.changed_parts("garbage"), PARTS.to_vec());
    }
}
