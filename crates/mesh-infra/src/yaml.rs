//! A small YAML writer for the generated GitHub workflows: block mappings and sequences,
//! literal blocks for scripts, comments. Strings are written plain only when YAML cannot read
//! them as anything else (a number, a boolean, a flow indicator), otherwise double-quoted.

/// A YAML value. Mappings keep their order, as GitHub shows them.
#[derive(Debug, Clone, PartialEq)]
pub enum Y {
    Str(String),
    /// A literal block (`|`): shell scripts, kept line for line.
    Block(String),
    Bool(bool),
    Int(i64),
    /// A finite number (data contracts' bounds); written as JSON writes it.
    Float(f64),
    Seq(Vec<Y>),
    Map(Vec<Entry>),
    /// A scalar followed by a comment on the same line (`uses: …@sha # v4.2.0`).
    Commented(Box<Y>, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Y,
    /// Comment lines written above the key.
    pub comment: Option<String>,
}

impl Y {
    pub fn str(s: impl Into<String>) -> Y {
        Y::Str(s.into())
    }
    pub fn strs<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Y {
        Y::Seq(items.into_iter().map(|s| Y::Str(s.into())).collect())
    }
    pub fn map() -> Y {
        Y::Map(Vec::new())
    }
    /// Appends `key: value` to a mapping.
    pub fn kv(self, key: &str, value: Y) -> Y {
        self.entry(key, value, None)
    }
    /// Appends `key: value` with comment lines above it.
    pub fn kvc(self, key: &str, value: Y, comment: &str) -> Y {
        self.entry(key, value, Some(comment.to_string()))
    }
    fn entry(self, key: &str, value: Y, comment: Option<String>) -> Y {
        match self {
            Y::Map(mut entries) => {
                entries.push(Entry {
                    key: key.to_string(),
                    value,
                    comment,
                });
                Y::Map(entries)
            }
            other => panic!("kv on a non-mapping {other:?}"),
        }
    }
    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Y> {
        match self {
            Y::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// The document, ending with a newline.
    pub fn to_document(&self) -> String {
        let mut out = String::new();
        match self {
            Y::Map(entries) => write_map(&mut out, entries, 0),
            other => {
                out.push_str(&inline(other).expect("a scalar document"));
                out.push('\n');
            }
        }
        out
    }
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

/// A value that fits on its key's line, if it does.
fn inline(v: &Y) -> Option<String> {
    match v {
        Y::Str(s) => Some(scalar(s)),
        Y::Bool(b) => Some(b.to_string()),
        Y::Int(i) => Some(i.to_string()),
        // JSON has no NaN or infinity; YAML's spelling of them keeps the document readable.
        Y::Float(f) => Some(serde_json::Number::from_f64(*f).map_or_else(|| ".nan".to_string(), |n| n.to_string())),
        Y::Map(e) if e.is_empty() => Some("{}".into()),
        Y::Seq(items) if items.is_empty() => Some("[]".into()),
        Y::Seq(items) if items.iter().all(|i| matches!(i, Y::Str(_))) => {
            let parts: Vec<String> = items.iter().filter_map(inline).collect();
            let line = format!("[{}]", parts.join(", "));
            (line.len() <= 60).then_some(line)
        }
        Y::Commented(inner, c) => inline(inner).map(|s| format!("{s} # {c}")),
        _ => None,
    }
}

fn write_comment(out: &mut String, comment: &Option<String>, indent: usize) {
    if let Some(c) = comment {
        for line in c.lines() {
            out.push_str(&pad(indent));
            if line.is_empty() {
                out.push_str("#\n");
            } else {
                out.push_str(&format!("# {line}\n"));
            }
        }
    }
}

fn write_map(out: &mut String, entries: &[Entry], indent: usize) {
    for e in entries {
        write_comment(out, &e.comment, indent);
        out.push_str(&pad(indent));
        out.push_str(&e.key);
        out.push(':');
        write_value(out, &e.value, indent);
    }
}

/// Writes what follows `key:` (or `-`): the rest of the line and any nested lines.
fn write_value(out: &mut String, v: &Y, indent: usize) {
    if let Some(s) = inline(v) {
        out.push(' ');
        out.push_str(&s);
        out.push('\n');
        return;
    }
    match v {
        Y::Block(text) => {
            out.push_str(" |\n");
            for line in text.trim_end_matches('\n').lines() {
                if !line.is_empty() {
                    out.push_str(&pad(indent + 2));
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        Y::Map(entries) => {
            out.push('\n');
            write_map(out, entries, indent + 2);
        }
        Y::Seq(items) => {
            out.push('\n');
            write_seq(out, items, indent + 2);
        }
        _ => unreachable!("scalars are inline"),
    }
}

fn write_seq(out: &mut String, items: &[Y], indent: usize) {
    for item in items {
        match item {
            Y::Map(entries) if !entries.is_empty() => {
                // The first key shares the dash's line; the others align under it.
                let mut buf = String::new();
                write_map(&mut buf, entries, indent + 2);
                let mut dashed = false;
                for line in buf.lines() {
                    if !dashed && !line.trim_start().starts_with('#') {
                        out.push_str(&pad(indent));
                        out.push_str("- ");
                        out.push_str(&line[indent + 2..]);
                        dashed = true;
                    } else {
                        out.push_str(line);
                    }
                    out.push('\n');
                }
            }
            other => {
                out.push_str(&pad(indent));
                out.push('-');
                write_value(out, other, indent);
            }
        }
    }
}

/// Words YAML 1.1 (which some readers, PyYAML among them, still use) reads as booleans or null.
const RESERVED: [&str; 12] = [
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", "nan", "inf",
];

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    (first.is_ascii_alphanumeric() || matches!(first, '_' | '.' | '/'))
        && !s.ends_with(' ')
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ' ' | '@' | '+' | '=' | '(' | ')')
        })
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
        && s.parse::<f64>().is_err()
        && !s.starts_with("0x")
        && !s.starts_with("0o")
}

/// A scalar as YAML reads it back unchanged.
pub fn scalar(s: &str) -> String {
    if plain_ok(s) {
        return s.to_string();
    }
    // YAML's double-quoted style accepts JSON's escapes.
    serde_json::to_string(s).expect("a string serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_that_yaml_would_retype_are_quoted() {
        for s in [
            "1.95",
            "3.11",
            "20",
            "on",
            "No",
            "true",
            "",
            " x",
            "a: b",
            "a #b",
            "${{ github.token }}",
            "*",
            "[x]",
        ] {
            assert!(scalar(s).starts_with('"'), "{s:?} -> {}", scalar(s));
        }
        for s in ["ubuntu-24.04", "infra/envs/dev", "deploy prod", "actions/checkout"] {
            assert_eq!(scalar(s), s);
        }
    }

    #[test]
    fn nested_documents_indent_and_comment() {
        let doc = Y::map()
            .kvc("name", Y::str("ci"), "Header comment")
            .kv("on", Y::map().kv("push", Y::map().kv("branches", Y::strs(["dev"]))))
            .kv(
                "steps",
                Y::Seq(vec![
                    Y::map().kv(
                        "uses",
                        Y::Commented(Box::new(Y::str("actions/checkout@abc")), "v7.0.1".into()),
                    ),
                    Y::map()
                        .kvc("name", Y::str("script"), "why")
                        .kv("run", Y::Block("set -e\n\necho hi\n".into())),
                ]),
            );
        assert_eq!(
            doc.to_document(),
            "# Header comment\nname: ci\non:\n  push:\n    branches: [dev]\nsteps:\n  - uses: actions/checkout@abc # v7.0.1\n    # why\n  - name: script\n    run: |\n      set -e\n\n      echo hi\n"
        );
    }
}
