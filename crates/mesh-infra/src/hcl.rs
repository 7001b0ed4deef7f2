//! A small HCL writer: just the subset Terraform configurations need (blocks, attributes,
//! strings, numbers, booleans, references, function calls, lists, objects), with correct string
//! escaping and `terraform fmt` layout, so the output is stable and reviewable.

use std::fmt::Write;

/// An HCL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Int(i64),
    Bool(bool),
    /// A traversal such as `aws_s3_bucket.raw.arn`; only built by [`Expr::reference`].
    Ref(String),
    /// `"${path.module}/<rest>"`: a file of the configuration.
    ModulePath(String),
    /// `"${<traversal>}<rest>"`: a reference followed by literal text (e.g. `arn:*`).
    RefSuffix(String, String),
    Call(String, Vec<Expr>),
    List(Vec<Expr>),
    Object(Vec<(String, Expr)>),
}

impl Expr {
    pub fn str(s: impl Into<String>) -> Expr {
        Expr::Str(s.into())
    }

    /// A reference to another object of the configuration: `kind.name.attr`.
    pub fn reference(parts: &[&str]) -> Expr {
        for p in parts {
            assert!(is_identifier(p), "`{p}` is not an HCL identifier");
        }
        Expr::Ref(parts.join("."))
    }

    pub fn strs<I, S>(items: I) -> Expr
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Expr::List(items.into_iter().map(|s| Expr::Str(s.into())).collect())
    }

    /// JSON as an HCL value (for `jsonencode(...)`): objects keep their key order.
    pub fn from_json(v: &serde_json::Value) -> Expr {
        match v {
            serde_json::Value::Null => Expr::Ref("null".into()),
            serde_json::Value::Bool(b) => Expr::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Expr::Int(i),
                // Policies and definitions hold no fractions; keep other numbers exact as text.
                None => Expr::Ref(n.to_string()),
            },
            serde_json::Value::String(s) => Expr::Str(s.clone()),
            serde_json::Value::Array(a) => Expr::List(a.iter().map(Expr::from_json).collect()),
            serde_json::Value::Object(o) => {
                Expr::Object(o.iter().map(|(k, v)| (k.clone(), Expr::from_json(v))).collect())
            }
        }
    }
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Escapes text for an HCL quoted string: quotes, backslashes, control characters, and the
/// template sequences `${` and `%{`, which HCL would otherwise interpolate.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Attr(String, Expr),
    Block(Block),
    Comment(String),
}

/// The inside of a block (or a whole file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Body {
    items: Vec<Item>,
}

/// `kind "label" "label" { body }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    kind: String,
    labels: Vec<String>,
    body: Body,
}

impl Body {
    pub fn new() -> Body {
        Body::default()
    }
    pub fn attr(mut self, key: &str, value: Expr) -> Body {
        self.push_attr(key, value);
        self
    }
    pub fn push_attr(&mut self, key: &str, value: Expr) {
        assert!(is_identifier(key), "`{key}` is not an HCL attribute name");
        self.items.push(Item::Attr(key.to_string(), value));
    }
    pub fn block(mut self, block: Block) -> Body {
        self.items.push(Item::Block(block));
        self
    }
    pub fn push_block(&mut self, block: Block) {
        self.items.push(Item::Block(block));
    }
    /// A `#` comment line; says why something is (or is not) there.
    pub fn comment(mut self, text: &str) -> Body {
        self.push_comment(text);
        self
    }
    pub fn push_comment(&mut self, text: &str) {
        for line in text.lines() {
            self.items.push(Item::Comment(line.to_string()));
        }
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Attributes in order (for checks that walk the configuration, e.g. against a schema).
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &Expr)> {
        self.items.iter().filter_map(|i| match i {
            Item::Attr(k, v) => Some((k.as_str(), v)),
            _ => None,
        })
    }
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.items.iter().filter_map(|i| match i {
            Item::Block(b) => Some(b),
            _ => None,
        })
    }

    /// The file text: top-level blocks separated by a blank line.
    pub fn to_file(&self) -> String {
        let mut out = String::new();
        write_body(&mut out, self, 0, true);
        out
    }
}

impl Block {
    pub fn new(kind: &str, labels: &[&str]) -> Block {
        assert!(is_identifier(kind), "`{kind}` is not an HCL block type");
        Block {
            kind: kind.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            body: Body::new(),
        }
    }
    pub fn resource(kind: &str, name: &str) -> Block {
        assert!(is_identifier(name), "`{name}` is not a Terraform resource name");
        Block::new("resource", &[kind, name])
    }
    pub fn attr(mut self, key: &str, value: Expr) -> Block {
        self.body.push_attr(key, value);
        self
    }
    pub fn block(mut self, block: Block) -> Block {
        self.body.push_block(block);
        self
    }
    pub fn comment(mut self, text: &str) -> Block {
        self.body.push_comment(text);
        self
    }
    pub fn body_mut(&mut self) -> &mut Body {
        &mut self.body
    }
    pub fn kind(&self) -> &str {
        &self.kind
    }
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
    pub fn body(&self) -> &Body {
        &self.body
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// Writes a body the way `terraform fmt` lays it out: the `=` of consecutive attributes is
/// aligned; a multi-line value ends its alignment group; blocks and comments end it too.
fn write_body(out: &mut String, body: &Body, level: usize, top: bool) {
    let mut i = 0;
    let mut first = true;
    while i < body.items.len() {
        match &body.items[i] {
            Item::Attr(..) => {
                // The group: consecutive single-line attributes. A line that opens a multi-line
                // value is not aligned and ends the group (hclwrite's rule).
                let mut end = i;
                let mut rendered = Vec::new();
                while end < body.items.len() {
                    let Item::Attr(k, v) = &body.items[end] else { break };
                    let text = expr(v, level);
                    let multi = text.contains('\n');
                    if multi && !rendered.is_empty() {
                        break;
                    }
                    rendered.push((k, text));
                    end += 1;
                    if multi {
                        break;
                    }
                }
                if top && !first {
                    out.push('\n');
                }
                let width = rendered.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                let width = if rendered.len() == 1 { 0 } else { width };
                for (k, text) in rendered {
                    indent(out, level);
                    let _ = writeln!(out, "{k:width$} = {text}");
                }
                i = end;
            }
            Item::Comment(c) => {
                if top && !first && !matches!(body.items[i - 1], Item::Comment(_)) {
                    out.push('\n');
                }
                indent(out, level);
                if c.is_empty() {
                    out.push_str("#\n");
                } else {
                    let _ = writeln!(out, "# {c}");
                }
                i += 1;
            }
            Item::Block(b) => {
                let after_comment = i > 0 && matches!(body.items[i - 1], Item::Comment(_));
                if top && !first && !after_comment {
                    out.push('\n');
                }
                indent(out, level);
                out.push_str(&b.kind);
                for l in &b.labels {
                    out.push(' ');
                    out.push_str(&quote(l));
                }
                if b.body.is_empty() {
                    out.push_str(" {\n");
                } else {
                    out.push_str(" {\n");
                    write_body(out, &b.body, level + 1, false);
                }
                indent(out, level);
                out.push_str("}\n");
                i += 1;
            }
        }
        first = false;
    }
}

/// An expression written at `level` (its closing bracket aligns with the attribute).
fn expr(e: &Expr, level: usize) -> String {
    match e {
        Expr::Str(s) => quote(s),
        Expr::Int(n) => n.to_string(),
        Expr::Bool(b) => b.to_string(),
        Expr::Ref(r) => r.clone(),
        Expr::ModulePath(rest) => format!("\"${{path.module}}/{}\"", escape(rest)),
        Expr::RefSuffix(r, rest) => format!("\"${{{r}}}{}\"", escape(rest)),
        Expr::Call(f, args) => {
            let args: Vec<String> = args.iter().map(|a| expr(a, level)).collect();
            format!("{f}({})", args.join(", "))
        }
        Expr::List(items) => {
            if items.is_empty() {
                return "[]".into();
            }
            let simple = items
                .iter()
                .all(|i| matches!(i, Expr::Str(_) | Expr::Int(_) | Expr::Bool(_) | Expr::Ref(_)));
            let inline: Vec<String> = items.iter().map(|i| expr(i, level)).collect();
            let one_line = format!("[{}]", inline.join(", "));
            if simple && one_line.len() <= 100 {
                return one_line;
            }
            let mut out = String::from("[\n");
            for i in items {
                indent(&mut out, level + 1);
                out.push_str(&expr(i, level + 1));
                out.push_str(",\n");
            }
            indent(&mut out, level);
            out.push(']');
            out
        }
        Expr::Object(fields) => {
            if fields.is_empty() {
                return "{}".into();
            }
            let mut out = String::from("{\n");
            // Object keys align like attributes, with the same multi-line rule.
            let keys: Vec<String> = fields
                .iter()
                .map(|(k, _)| if is_identifier(k) { k.clone() } else { quote(k) })
                .collect();
            let values: Vec<String> = fields.iter().map(|(_, v)| expr(v, level + 1)).collect();
            let mut start = 0;
            while start < fields.len() {
                let mut end = start + 1;
                if !values[start].contains('\n') {
                    while end < fields.len() && !values[end].contains('\n') {
                        end += 1;
                    }
                }
                let width = keys[start..end].iter().map(|k| k.len()).max().unwrap_or(0);
                for j in start..end {
                    indent(&mut out, level + 1);
                    let _ = writeln!(out, "{:width$} = {}", keys[j], values[j]);
                }
                start = end;
            }
            indent(&mut out, level);
            out.push('}');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_templates() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("${var.x} %{if}"), "$${var.x} %%{if}");
        assert_eq!(escape("$x %d"), "$x %d");
        assert_eq!(escape("l1\nl2\t\u{1}"), "l1\\nl2\\t\\u0001");
    }

    #[test]
    fn aligns_like_terraform_fmt() {
        let body = Body::new().block(
            Block::resource("aws_s3_bucket", "raw")
                .attr("bucket", Expr::str("f01-raw-dev"))
                .attr("force_destroy", Expr::Bool(false))
                .attr(
                    "tags",
                    Expr::Object(vec![("a".into(), Expr::str("1")), ("long_key".into(), Expr::str("2"))]),
                )
                .attr("x", Expr::Int(1))
                .block(Block::new("lifecycle", &[]).attr("prevent_destroy", Expr::Bool(true))),
        );
        assert_eq!(
            body.to_file(),
            r#"resource "aws_s3_bucket" "raw" {
  bucket        = "f01-raw-dev"
  force_destroy = false
  tags = {
    a        = "1"
    long_key = "2"
  }
  x = 1
  lifecycle {
    prevent_destroy = true
  }
}
"#
        );
    }

    #[test]
    fn quotes_keys_that_are_not_identifiers() {
        let e = Expr::from_json(&serde_json::json!({"s3:prefix": ["pj01/*"], "Ok": true}));
        assert_eq!(
            expr(&e, 0),
            "{\n  Ok          = true\n  \"s3:prefix\" = [\"pj01/*\"]\n}"
        );
    }
}
