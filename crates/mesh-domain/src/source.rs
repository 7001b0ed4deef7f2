//! Finding the line of a field in the file it came from, so every message can point at it.

use std::ops::Range;

use crate::diagnostic::line_of;

/// A parsed source file that can map a field path (`jobs[1].merge.keys[0]`) to a line.
pub enum SourceMap<'a> {
    Toml {
        text: &'a str,
        // Boxed: a parsed document is far larger than the JSON variant.
        doc: Option<Box<toml_edit::ImDocument<&'a str>>>,
    },
    Json {
        text: &'a str,
    },
}

#[derive(Debug, PartialEq)]
enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            if let Ok(i) = stripped[..end].parse() {
                out.push(Segment::Index(i));
            }
            rest = &stripped[end + 1..];
        }
    }
    out
}

impl<'a> SourceMap<'a> {
    pub fn toml(text: &'a str) -> SourceMap<'a> {
        SourceMap::Toml {
            text,
            doc: toml_edit::ImDocument::parse(text).ok().map(Box::new),
        }
    }

    pub fn json(text: &'a str) -> SourceMap<'a> {
        SourceMap::Json { text }
    }

    /// The line of the deepest part of `path` that exists in the file.
    pub fn line(&self, path: &str) -> Option<usize> {
        match self {
            SourceMap::Toml { text, doc } => {
                let span = toml_span(doc.as_deref()?, &segments(path))?;
                Some(line_of(text, span.start))
            }
            SourceMap::Json { text } => {
                // domain.json is flat: the first key of the path is enough to find its line.
                let key = match segments(path).first() {
                    Some(Segment::Key(k)) => *k,
                    _ => return None,
                };
                let needle = format!("\"{key}\"");
                text.find(&needle).map(|off| line_of(text, off))
            }
        }
    }
}

enum Node<'d> {
    Item(&'d toml_edit::Item),
    Value(&'d toml_edit::Value),
    Table(&'d toml_edit::Table),
}

fn toml_span(doc: &toml_edit::ImDocument<&str>, path: &[Segment<'_>]) -> Option<Range<usize>> {
    let mut node = Node::Table(doc.as_table());
    let mut best: Option<Range<usize>> = None;
    for seg in path {
        let (next, key_span) = match (&node, seg) {
            (Node::Table(t), Segment::Key(k)) => (t.get(k).map(Node::Item), t.key(k).and_then(|k| k.span())),
            (Node::Item(toml_edit::Item::Table(t)), Segment::Key(k)) => {
                (t.get(k).map(Node::Item), t.key(k).and_then(|k| k.span()))
            }
            (Node::Item(toml_edit::Item::Value(toml_edit::Value::InlineTable(t))), Segment::Key(k))
            | (Node::Value(toml_edit::Value::InlineTable(t)), Segment::Key(k)) => {
                (t.get(k).map(Node::Value), t.key(k).and_then(|k| k.span()))
            }
            (Node::Item(toml_edit::Item::ArrayOfTables(a)), Segment::Index(i)) => {
                (a.get(*i).map(Node::Table), a.get(*i).and_then(|t| t.span()))
            }
            (Node::Item(toml_edit::Item::Value(toml_edit::Value::Array(a))), Segment::Index(i))
            | (Node::Value(toml_edit::Value::Array(a)), Segment::Index(i)) => {
                (a.get(*i).map(Node::Value), a.get(*i).and_then(|v| v.span()))
            }
            _ => (None, None),
        };
        let Some(next) = next else { break };
        let own_span = match &next {
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
            Node::Table(t) => t.span(),
        };
        best = key_span.or(own_span).or(best);
        node = next;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"name = "sales"

[[tables]]
name = "a"
columns = [
  { name = "x", type = "string" },
  { name = "y", type = "nope" },
]

[[jobs]]
name = "j"
[jobs.merge]
keys = ["k"]
"#;

    #[test]
    fn finds_nested_lines() {
        let map = SourceMap::toml(DOC);
        assert_eq!(map.line("name"), Some(1));
        assert_eq!(map.line("tables[0].name"), Some(4));
        assert_eq!(map.line("tables[0].columns[1].type"), Some(7));
        assert_eq!(map.line("jobs[0].merge.keys"), Some(13));
        // A missing field falls back to the deepest part that exists.
        assert_eq!(map.line("jobs[0].missing"), map.line("jobs[0]"));
    }

    #[test]
    fn json_keys() {
        let map = SourceMap::json("{\n  \"domain_name\": \"x\",\n  \"domain_abbr\": \"Y\"\n}");
        assert_eq!(map.line("domain_abbr"), Some(3));
    }
}
