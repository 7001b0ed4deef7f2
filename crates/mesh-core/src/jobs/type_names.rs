//! The engine's messages name types as Arrow does (`Utf8`, `Decimal128(18, 2)`,
//! `Timestamp(µs)`); people write manifests, whose names are `string`, `decimal(18,2)` and
//! `timestamp`. [`in_message`] rewrites the first into the second in a message's text, so
//! every query error reads in the manifest's words.

/// `text` with each Arrow type name as the manifest names the type: `Utf8` → `string`,
/// `Int32` → `int`, `Int64` → `long`, `Float64` → `double`, `Date32` → `date`,
/// `Decimal128(18, 2)` → `decimal(18,2)`, `Timestamp(µs)` → `timestamp`, `Timestamp(µs,
/// "UTC")` → `timestamptz`; literals DataFusion prints as `Utf8("x")` read `'x'`. Names are
/// replaced as whole words only (`BinaryExpr` stays).
pub fn in_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let at_word_start = out.chars().next_back().is_none_or(|p| !is_word(p));
        if at_word_start && c.is_ascii_uppercase() {
            if let Some((replacement, len)) = arrow_type_at(rest) {
                out.push_str(&replacement);
                rest = &rest[len..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The manifest's name of the Arrow type (or literal) `s` starts with, and the length it
/// takes in `s`.
fn arrow_type_at(s: &str) -> Option<(String, usize)> {
    // A string literal as DataFusion shows an expression: Utf8("yyyy").
    for wrapper in ["Utf8(\"", "Utf8View(\"", "LargeUtf8(\""] {
        if let Some(body) = s.strip_prefix(wrapper) {
            let end = body.find("\")")?;
            return Some((format!("'{}'", &body[..end]), wrapper.len() + end + 2));
        }
    }
    for prefix in ["Decimal128(", "Decimal256("] {
        if let Some(body) = s.strip_prefix(prefix) {
            let end = body.find(')')?;
            let (p, sc) = body[..end].split_once(',')?;
            let (p, sc) = (p.trim(), sc.trim());
            if p.parse::<u8>().is_ok() && sc.parse::<i8>().is_ok() {
                return Some((format!("decimal({p},{sc})"), prefix.len() + end + 1));
            }
            return None;
        }
    }
    if let Some(body) = s.strip_prefix("Timestamp(") {
        let end = body.find(')')?;
        let name = if body[..end].contains(',') {
            "timestamptz"
        } else {
            "timestamp"
        };
        return Some((name.to_string(), "Timestamp(".len() + end + 1));
    }
    const WORDS: [(&str, &str); 15] = [
        ("Utf8View", "string"),
        ("LargeUtf8", "string"),
        ("Utf8", "string"),
        ("Int8", "tinyint"),
        ("Int16", "smallint"),
        ("Int32", "int"),
        ("Int64", "long"),
        ("Float16", "float"),
        ("Float32", "float"),
        ("Float64", "double"),
        ("Boolean", "boolean"),
        ("Date32", "date"),
        ("Date64", "date"),
        ("LargeBinary", "binary"),
        ("BinaryView", "binary"),
    ];
    WORDS
        .iter()
        .chain([("Binary", "binary")].iter())
        .find(|(arrow, _)| s.starts_with(arrow) && !s[arrow.len()..].starts_with(is_word))
        .map(|(arrow, name)| (name.to_string(), arrow.len()))
}

#[cfg(test)]
mod tests {
    use super::in_message;

    #[test]
    fn arrow_names_read_as_the_manifest_writes_them() {
        for (arrow, manifest) in [
            (
                "Cannot coerce arithmetic expression Date32 + Utf8 to valid types",
                "Cannot coerce arithmetic expression date + string to valid types",
            ),
            (
                "Cannot infer common argument type for comparison operation Decimal128(18, 2) = Boolean",
                "Cannot infer common argument type for comparison operation decimal(18,2) = boolean",
            ),
            (
                "Cannot coerce arithmetic expression Timestamp(µs) + Timestamp(ns, \"UTC\")",
                "Cannot coerce arithmetic expression timestamp + timestamptz",
            ),
            (
                "sum(Utf8View), Int64, Float64, Float32, Int32",
                "sum(string), long, double, float, int",
            ),
            (
                "date_format(current_date(),Utf8(\"yyyy\"))",
                "date_format(current_date(),'yyyy')",
            ),
            // Whole words only; other text is left alone.
            (
                "BinaryExpr MyUtf8 Utf8s Int64Array",
                "BinaryExpr MyUtf8 Utf8s Int64Array",
            ),
            ("Decimal128(Some(1),5,2)", "Decimal128(Some(1),5,2)"),
            ("Binary, LargeBinary", "binary, binary"),
        ] {
            assert_eq!(in_message(arrow), manifest);
        }
    }
}
