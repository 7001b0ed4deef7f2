//! Binding run parameters into job SQL as values, never as SQL text.
//!
//! Each `${name}` is first checked against its declared type (`string` by default; see
//! [`mesh_domain::ParamType`]), then placed by where it stands, as the engine's own tokenizer
//! sees the text (DataFusion's, so the binding and the engine cannot disagree about where a
//! string literal starts and ends):
//!
//! - outside quotes it becomes a literal of its type: `'text'` (quotes doubled), `42`,
//!   `DATE '2026-11-27'`, `TIMESTAMP '2026-11-27 06:00:00'`;
//! - inside a plain single-quoted string (`'${run_date}'`, `'sales-${region}'`) it is replaced
//!   by the value with its quotes doubled, so it stays inside that string;
//! - in a comment it is left as written;
//! - anywhere else (inside a name, a double-quoted identifier, an `E'…'` or `$$` string) it is
//!   an error, because no escaping is both safe and obvious there.
//!
//! `--param "cur=NOPE' OR '1'='1"` therefore compares `cur` with that whole text.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
use mesh_domain::ParamType;

/// Why a job's SQL could not be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter `${{{0}}}` has no value")]
    Missing(String),
    #[error("an unclosed `${{` (write `${{name}}`)")]
    Unclosed,
    #[error("`${{{0}}}` is not a parameter name (letters, digits and _)")]
    BadName(String),
    #[error("parameter `{name}` = `{value}` is not a valid {ty}: {why}")]
    BadValue {
        name: String,
        ty: ParamType,
        value: String,
        why: String,
    },
    #[error("parameter `${{{name}}}` stands inside {context}: parameters are values; use it as an expression (`${{{name}}}`) or inside a plain '…' string")]
    Unsupported { name: String, context: &'static str },
    #[error("the SQL does not tokenize: {0}")]
    Tokenize(String),
}

/// A parameter's text in SQL positions where a value is expected.
fn literal(value: &str, ty: ParamType) -> String {
    let quoted = format!("'{}'", value.replace('\'', "''"));
    match ty {
        ParamType::String => quoted,
        // Parsed already; normalised (no `+`, no leading zeros), and a negative number in
        // parentheses so `x-${n}` cannot become the comment `x--5`.
        ParamType::Int => match mesh_domain::param::parse_int(value) {
            Some(n) if n < 0 => format!("({n})"),
            Some(n) => n.to_string(),
            None => unreachable!("checked before"),
        },
        ParamType::Date => format!("DATE {quoted}"),
        ParamType::Timestamp => format!("TIMESTAMP {quoted}"),
    }
}

fn sentinel(i: usize) -> String {
    format!("__mesh_param_{i}__")
}

/// Binds `${name}` to `params`, typed by `types` (absent = string). See the module docs.
pub fn bind(
    sql: &str,
    params: &BTreeMap<String, String>,
    types: &BTreeMap<String, ParamType>,
) -> Result<String, ParamError> {
    if !sql.contains("${") {
        return Ok(sql.to_string());
    }
    // 1. Each placeholder becomes a sentinel word; the names in order of appearance.
    let mut names: Vec<String> = Vec::new();
    let mut text = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(ParamError::Unclosed)?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ParamError::BadName(
                mesh_domain::diagnostic::truncate(name).into_owned(),
            ));
        }
        text.push_str(&sentinel(names.len()));
        names.push(name.to_string());
        rest = &after[end + 1..];
    }
    text.push_str(rest);

    // 2. Every value is checked against its type before anything is bound.
    let mut values = Vec::with_capacity(names.len());
    for name in &names {
        let value = params.get(name).ok_or_else(|| ParamError::Missing(name.clone()))?;
        let ty = types.get(name).copied().unwrap_or_default();
        ty.check(value).map_err(|why| ParamError::BadValue {
            name: name.clone(),
            ty,
            value: mesh_domain::diagnostic::truncate(value).into_owned(),
            why,
        })?;
        values.push((value.as_str(), ty));
    }

    // 3. Tokenize as the engine does and replace each sentinel by what its position allows.
    let tokens = Tokenizer::new(&GenericDialect {}, &text)
        .with_unescape(false)
        .tokenize_with_location()
        .map_err(|e| ParamError::Tokenize(e.to_string()))?;
    let offsets = LineOffsets::new(&text);
    let mut out = String::with_capacity(text.len() + 64);
    for (i, t) in tokens.iter().enumerate() {
        let start = offsets.byte(t.span.start.line, t.span.start.column);
        let end = tokens
            .get(i + 1)
            .map(|n| offsets.byte(n.span.start.line, n.span.start.column))
            .unwrap_or(text.len());
        let src = &text[start..end];
        let Some(first) = find_sentinel(src, names.len()) else {
            out.push_str(src);
            continue;
        };
        let unsupported = |context| ParamError::Unsupported {
            name: names[first].clone(),
            context,
        };
        match &t.token {
            Token::Word(w) if w.quote_style.is_none() && src == sentinel(first) => {
                let (value, ty) = values[first];
                out.push_str(&literal(value, ty));
            }
            Token::SingleQuotedString(_) if src.starts_with('\'') => {
                out.push_str(&replace_sentinels(src, names.len(), |k| {
                    values[k].0.replace('\'', "''")
                }));
            }
            Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)) => {
                out.push_str(&replace_sentinels(src, names.len(), |k| format!("${{{}}}", names[k])));
            }
            Token::Word(w) if w.quote_style.is_some() => return Err(unsupported("a quoted identifier")),
            Token::Word(_) => return Err(unsupported("a name (parameters cannot build identifiers)")),
            _ => return Err(unsupported("a special literal (E'…', X'…', $$…$$ or similar)")),
        }
    }
    Ok(out)
}

/// Index of the first sentinel in `s`, if any.
fn find_sentinel(s: &str, n: usize) -> Option<usize> {
    s.match_indices("__mesh_param_")
        .find_map(|(at, _)| (0..n).find(|k| s[at..].starts_with(&sentinel(*k))))
}

fn replace_sentinels(s: &str, n: usize, value: impl Fn(usize) -> String) -> String {
    let mut out = s.to_string();
    // Highest index first, so `__mesh_param_1__` is not mistaken inside `__mesh_param_10__`.
    for k in (0..n).rev() {
        let pat = sentinel(k);
        if out.contains(&pat) {
            out = out.replace(&pat, &value(k));
        }
    }
    out
}

/// Maps the tokenizer's 1-based (line, column in characters) to byte offsets.
struct LineOffsets<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineOffsets<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineOffsets { text, starts }
    }

    fn byte(&self, line: u64, column: u64) -> usize {
        let Some(&start) = self.starts.get((line as usize).saturating_sub(1)) else {
            return self.text.len();
        };
        self.text[start..]
            .char_indices()
            .nth((column as usize).saturating_sub(1))
            .map(|(i, _)| start + i)
            .unwrap_or(self.text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn t(pairs: &[(&str, ParamType)]) -> BTreeMap<String, ParamType> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn quoted_placeholders_keep_working_and_stay_inside_their_string() {
        let params = p(&[("run_date", "2026-11-27"), ("cur", "NOPE' OR '1'='1")]);
        let none = BTreeMap::new();
        assert_eq!(
            bind("WHERE d = '${run_date}'", &params, &none).unwrap(),
            "WHERE d = '2026-11-27'"
        );
        assert_eq!(
            bind("WHERE currency = '${cur}'", &params, &none).unwrap(),
            "WHERE currency = 'NOPE'' OR ''1''=''1'"
        );
        assert_eq!(
            bind("WHERE c = ${cur}", &params, &none).unwrap(),
            "WHERE c = 'NOPE'' OR ''1''=''1'"
        );
        assert_eq!(
            bind("SELECT 'a-${run_date}-b', 'it''s ${cur}'", &params, &none).unwrap(),
            "SELECT 'a-2026-11-27-b', 'it''s NOPE'' OR ''1''=''1'"
        );
        assert_eq!(
            bind("SELECT 1 -- for ${run_date}\n/* ${cur} */", &params, &none).unwrap(),
            "SELECT 1 -- for ${run_date}\n/* ${cur} */"
        );
        assert_eq!(bind("no params", &params, &none).unwrap(), "no params");
    }

    #[test]
    fn typed_values_become_typed_literals() {
        let params = p(&[
            ("d", "2026-11-27"),
            ("n", "-5"),
            ("ts", "2026-11-27 06:00:00"),
            ("k", "+007"),
        ]);
        let types = t(&[
            ("d", ParamType::Date),
            ("n", ParamType::Int),
            ("ts", ParamType::Timestamp),
            ("k", ParamType::Int),
        ]);
        assert_eq!(
            bind("SELECT ${d}, x-${n}, ${ts}, ${k}, '${d}'", &params, &types).unwrap(),
            "SELECT DATE '2026-11-27', x-(-5), TIMESTAMP '2026-11-27 06:00:00', 7, '2026-11-27'"
        );
        let bad = p(&[("n", "1 OR 1=1")]);
        let e = bind("LIMIT ${n}", &bad, &t(&[("n", ParamType::Int)])).unwrap_err();
        assert!(matches!(e, ParamError::BadValue { .. }), "{e}");
        assert!(e.to_string().contains("is not a valid int"), "{e}");
        let bad = p(&[("d", "2026-11-27' OR '1'='1")]);
        assert!(bind("WHERE d = '${d}'", &bad, &t(&[("d", ParamType::Date)])).is_err());
    }

    #[test]
    fn placeholders_never_build_code() {
        let params = p(&[("x", "a"), ("y", "b")]);
        let none = BTreeMap::new();
        for sql in [
            "SELECT * FROM t_${x}",
            "SELECT \"${x}\" FROM t",
            "SELECT E'${x}'",
            "SELECT $$ ${x} $$",
        ] {
            let e = bind(sql, &params, &none).unwrap_err();
            assert!(matches!(e, ParamError::Unsupported { .. }), "{sql}: {e}");
        }
        assert_eq!(
            bind("SELECT ${nope}", &params, &none).unwrap_err(),
            ParamError::Missing("nope".into())
        );
        assert_eq!(bind("SELECT ${x", &params, &none).unwrap_err(), ParamError::Unclosed);
        assert!(matches!(
            bind("SELECT ${x' OR 1}", &params, &none).unwrap_err(),
            ParamError::BadName(_)
        ));
        // Multi-byte text before a placeholder keeps offsets right.
        assert_eq!(
            bind("SELECT 'é€😀', ${x}, '${y}'", &params, &none).unwrap(),
            "SELECT 'é€😀', 'a', 'b'"
        );
        let spark_var = p(&[("x", "${spark.hadoop.fs.s3a.secret.key}")]);
        assert!(bind("SELECT '${x}'", &spark_var, &none).is_err());
    }

    #[test]
    fn the_local_engine_parses_with_the_generic_dialect() {
        // The binding tokenizes as DataFusion does: if its default dialect changed, string
        // boundaries could differ between binding and execution.
        let options = datafusion::config::ConfigOptions::default();
        assert_eq!(options.sql_parser.dialect.to_string().to_ascii_lowercase(), "generic");
    }
}
