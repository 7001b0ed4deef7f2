//! Column names in a `sql` check that the job's output table does not have.
//!
//! This is a conservative identifier scan, not a SQL parser: it reads the query's tokens and
//! only answers when it can tell what every bare word is. It answers nothing (`None`) when the
//! query reads anything but `output` (another table, a subquery in `FROM`, a comma join, a
//! `WITH`, or any `FROM` that is not a table, as in `EXTRACT(YEAR FROM ts)`), or when it cannot
//! tokenize the text; the engine reports those when the check runs. Otherwise a word is taken
//! for a column unless it is a SQL keyword, a function (followed by `(`), a type after `::`, a
//! name after `AS`, an implicit alias (a word right after an expression: `SUM(x) total`), a
//! window name, a lambda parameter (`x -> …`), a field after `alias.`, or `output` and its
//! alias. Unquoted words compare in
//! lower case, as DataFusion and Spark fold them; quoted ones (`"x"`, `` `x` ``) exactly.

/// The words of `sql` that name columns not in `columns`, each once in order of appearance;
/// `None` when the scan cannot tell (see the module documentation).
pub fn unknown_columns(sql: &str, columns: &[&str]) -> Option<Vec<String>> {
    let toks = tokenize(sql)?;
    let word = |k: usize| match toks.get(k) {
        Some(Tok::Word(w, false)) => Some(w.as_str()),
        _ => None,
    };
    let is_kw = |k: usize| word(k).is_some_and(is_keyword);
    let is_output = |k: usize| matches!(toks.get(k), Some(Tok::Word(w, _)) if w == "output");

    // Pass 1: what `output` is called, and every alias the query defines.
    let mut table_aliases: Vec<String> = vec!["output".into()];
    let mut aliases: Vec<String> = Vec::new();
    for k in 0..toks.len() {
        match word(k) {
            Some("with") => return None,
            Some(kw @ ("from" | "join")) => {
                if !is_output(k + 1) || toks.get(k + 2) == Some(&Tok::Punct('.')) {
                    return None;
                }
                let mut next = k + 2;
                if word(next) == Some("as") {
                    next += 1;
                }
                if let Some(Tok::Word(a, quoted)) = toks.get(next) {
                    if *quoted || !is_keyword(a) {
                        table_aliases.push(a.clone());
                        next += 1;
                    }
                }
                if kw == "from" && toks.get(next) == Some(&Tok::Punct(',')) {
                    return None;
                }
            }
            _ => {}
        }
        if let Some(Tok::Word(w, quoted)) = toks.get(k) {
            if *quoted || !is_keyword(w) {
                let prev = k.checked_sub(1);
                let after_as = prev.is_some_and(|p| word(p) == Some("as"));
                let after_window = prev.is_some_and(|p| matches!(word(p), Some("over" | "window")));
                let implicit = prev.is_some_and(|p| match &toks[p] {
                    Tok::Word(_, true) | Tok::Num | Tok::Str | Tok::Param | Tok::Punct(')') => true,
                    Tok::Word(_, false) => !is_kw(p),
                    _ => false,
                });
                let before_call = toks.get(k + 1) == Some(&Tok::Punct('('));
                // `x -> x + 1`: a lambda's parameter (Spark's higher-order functions).
                let lambda = toks.get(k + 1) == Some(&Tok::Punct('-')) && toks.get(k + 2) == Some(&Tok::Punct('>'));
                if after_as || after_window || lambda || (implicit && !before_call) {
                    aliases.push(w.clone());
                }
            }
        }
    }

    // Pass 2: every other bare word is a column.
    let mut unknown: Vec<String> = Vec::new();
    for (k, t) in toks.iter().enumerate() {
        let Tok::Word(w, quoted) = t else { continue };
        if !quoted && is_keyword(w) {
            continue;
        }
        let prev = k.checked_sub(1).map(|p| &toks[p]);
        let next = toks.get(k + 1);
        if next == Some(&Tok::Punct('(')) && !quoted {
            continue;
        }
        if matches!(prev, Some(Tok::Cast)) || (k >= 1 && word(k - 1) == Some("as")) {
            continue;
        }
        if prev == Some(&Tok::Punct('.')) {
            // `q.w`: a column when `q` is `output` or its alias, else a field or unknown: skip.
            let qualifier = k.checked_sub(2).and_then(|q| match &toks[q] {
                Tok::Word(q, _) => Some(q.as_str()),
                _ => None,
            });
            if !qualifier.is_some_and(|q| table_aliases.iter().any(|a| a == q)) {
                continue;
            }
        } else if next == Some(&Tok::Punct('.')) {
            // A qualifier: `output`, its alias, or a column with fields.
            continue;
        } else if table_aliases.contains(w) || aliases.contains(w) {
            continue;
        }
        if !columns.contains(&w.as_str()) && !unknown.contains(w) {
            unknown.push(w.clone());
        }
    }
    Some(unknown)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An identifier or keyword: lower-cased unless quoted (the flag).
    Word(String, bool),
    Num,
    Str,
    /// `${name}`, a run parameter: a value.
    Param,
    /// `::`
    Cast,
    Punct(char),
}

/// The tokens of `sql`, or `None` for an unterminated string, quoted name or comment.
fn tokenize(sql: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut k = 0;
    // The end of a quoted run starting at `k` (the quote), with the quote doubled inside.
    let quoted = |k: usize, q: char| -> Option<(String, usize)> {
        let mut s = String::new();
        let mut j = k + 1;
        loop {
            match chars.get(j) {
                None => return None,
                Some(c) if *c == q && chars.get(j + 1) == Some(&q) => {
                    s.push(q);
                    j += 2;
                }
                Some(c) if *c == q => return Some((s, j + 1)),
                Some(c) => {
                    s.push(*c);
                    j += 1;
                }
            }
        }
    };
    while k < chars.len() {
        let c = chars[k];
        let next = chars.get(k + 1).copied();
        if c.is_whitespace() {
            k += 1;
        } else if c == '-' && next == Some('-') {
            while k < chars.len() && chars[k] != '\n' {
                k += 1;
            }
        } else if c == '/' && next == Some('*') {
            let end = (k + 2..chars.len().saturating_sub(1)).find(|j| chars[*j] == '*' && chars[j + 1] == '/')?;
            k = end + 2;
        } else if c == '\'' {
            let (_, end) = quoted(k, '\'')?;
            out.push(Tok::Str);
            k = end;
        } else if c == '"' || c == '`' {
            let (name, end) = quoted(k, c)?;
            out.push(Tok::Word(name, true));
            k = end;
        } else if c == '$' && next == Some('{') {
            let end = (k + 2..chars.len()).find(|j| chars[*j] == '}')?;
            out.push(Tok::Param);
            k = end + 1;
        } else if c == ':' && next == Some(':') {
            out.push(Tok::Cast);
            k += 2;
        } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            // Numbers, with exponents and suffixes (`1e6`, `1.5`, `10L`).
            k += 1;
            while k < chars.len() && (chars[k].is_alphanumeric() || chars[k] == '.' || chars[k] == '_') {
                // `1e-3`: a sign right after the exponent belongs to the number.
                if matches!(chars[k], 'e' | 'E') && matches!(chars.get(k + 1), Some('+' | '-')) {
                    k += 1;
                }
                k += 1;
            }
            out.push(Tok::Num);
        } else if c.is_alphabetic() || c == '_' {
            let start = k;
            while k < chars.len() && (chars[k].is_alphanumeric() || chars[k] == '_' || chars[k] == '$') {
                k += 1;
            }
            let w: String = chars[start..k].iter().collect();
            out.push(Tok::Word(w.to_lowercase(), false));
        } else {
            out.push(Tok::Punct(c));
            k += 1;
        }
    }
    Some(out)
}

/// SQL keywords and parameterless functions of DataFusion and Spark SQL that can stand where a
/// column could: never taken for a column.
fn is_keyword(w: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "all",
        "and",
        "anti",
        "any",
        "array",
        "as",
        "asc",
        "at",
        "between",
        "bigint",
        "binary",
        "bool",
        "boolean",
        "both",
        "by",
        "bytea",
        "case",
        "cast",
        "char",
        "character",
        "collate",
        "cross",
        "cube",
        "current",
        "current_date",
        "current_time",
        "current_timestamp",
        "current_user",
        "date",
        "day",
        "days",
        "decimal",
        "desc",
        "distinct",
        "div",
        "double",
        "dow",
        "doy",
        "else",
        "end",
        "epoch",
        "escape",
        "except",
        "exclude",
        "exists",
        "extract",
        "false",
        "fetch",
        "filter",
        "first",
        "float",
        "following",
        "for",
        "from",
        "full",
        "group",
        "grouping",
        "groups",
        "having",
        "hour",
        "hours",
        "if",
        "ignore",
        "ilike",
        "in",
        "inner",
        "int",
        "integer",
        "intersect",
        "interval",
        "is",
        "isnull",
        "join",
        "last",
        "lateral",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "long",
        "map",
        "microsecond",
        "microseconds",
        "millisecond",
        "milliseconds",
        "minus",
        "minute",
        "minutes",
        "mod",
        "month",
        "months",
        "nanosecond",
        "natural",
        "next",
        "no",
        "not",
        "notnull",
        "null",
        "nulls",
        "numeric",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "others",
        "outer",
        "over",
        "overlaps",
        "partition",
        "precision",
        "preceding",
        "qualify",
        "quarter",
        "range",
        "real",
        "regexp",
        "respect",
        "right",
        "rlike",
        "rollup",
        "row",
        "rows",
        "second",
        "seconds",
        "select",
        "semi",
        "session_user",
        "sets",
        "similar",
        "smallint",
        "some",
        "string",
        "struct",
        "tablesample",
        "text",
        "then",
        "ties",
        "time",
        "timestamp",
        "timestamp_ltz",
        "timestamp_ntz",
        "timestamptz",
        "tinyint",
        "to",
        "trailing",
        "leading",
        "true",
        "try_cast",
        "unbounded",
        "union",
        "unknown",
        "unnest",
        "user",
        "using",
        "values",
        "varchar",
        "varying",
        "week",
        "weeks",
        "when",
        "where",
        "window",
        "with",
        "within",
        "year",
        "years",
        "zone",
    ];
    KEYWORDS.contains(&w)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: &[&str] = &["order_date", "country", "orders", "amount", "status"];

    #[track_caller]
    fn unknown(sql: &str) -> Vec<String> {
        unknown_columns(sql, COLS).unwrap_or_else(|| panic!("no answer for {sql}"))
    }

    #[test]
    fn misspelt_columns_are_found() {
        assert_eq!(unknown("SELECT * FROM output WHERE amout < 0"), ["amout"]);
        assert_eq!(
            unknown("select * from output where AMOUT < 0 or Amout is null"),
            ["amout"]
        );
        assert_eq!(
            unknown("SELECT country, SUM(amont) AS total FROM output GROUP BY contry HAVING SUM(amont) < 0"),
            ["amont", "contry"]
        );
        assert_eq!(unknown("SELECT * FROM output o WHERE o.statuss = 'X'"), ["statuss"]);
        assert_eq!(
            unknown("SELECT * FROM output AS o WHERE o.amount < 0 AND o.cntry IS NULL"),
            ["cntry"]
        );
        assert_eq!(unknown("SELECT * FROM output WHERE \"Amount\" < 0"), ["Amount"]);
        assert_eq!(
            unknown("SELECT * FROM output WHERE amount > (SELECT AVG(amount) FROM output WHERE ordrs > 1)"),
            ["ordrs"]
        );
        assert_eq!(unknown("SELECT * FROM output WHERE CAST(amnt AS DOUBLE) < 0"), ["amnt"]);
        assert_eq!(unknown("SELECT * FROM output WHERE amnt::double < 0"), ["amnt"]);
        assert_eq!(
            unknown("SELECT * FROM output WHERE order_dat < DATE '2020-01-01'"),
            ["order_dat"]
        );
    }

    #[test]
    fn what_is_not_a_column_is_not_reported() {
        for sql in [
            "SELECT * FROM output WHERE amount < 0",
            "SELECT * FROM output WHERE amount < 0;",
            "SELECT country, COUNT(*) AS n FROM output GROUP BY country HAVING n > 1",
            "SELECT country, COUNT(*) n FROM output GROUP BY country HAVING COUNT(*) > 1 ORDER BY n DESC NULLS LAST",
            "SELECT * FROM output WHERE status NOT IN ('NEW', 'it''s') AND amount IS NOT NULL",
            "SELECT * FROM output WHERE order_date > CURRENT_DATE - INTERVAL '3' DAY",
            "SELECT * FROM output WHERE order_date < DATE '${run_date}' -- a comment naming nothing\n",
            "SELECT * FROM output /* amout */ WHERE amount BETWEEN -1e-3 AND 1.5e6",
            "SELECT * FROM output WHERE CAST(amount AS DECIMAL(18, 2)) < 0 AND amount::double < 0",
            "SELECT o.* FROM output o WHERE o.amount < 0",
            "SELECT * FROM output WHERE date_trunc('month', order_date) <> order_date",
            "SELECT * FROM (SELECT 1 AS one) t",
            "SELECT amount, ROW_NUMBER() OVER (PARTITION BY country ORDER BY amount) AS rn FROM output QUALIFY rn > 1",
            "SELECT * FROM output WHERE CASE WHEN status = 'X' THEN TRUE ELSE FALSE END",
            "SELECT * FROM output WHERE \"amount\" < 0 AND `country` = ''",
            "SELECT * FROM output WHERE exists(array(amount), x -> x < 0)",
        ] {
            match unknown_columns(sql, COLS) {
                None => {}
                Some(u) => assert!(u.is_empty(), "{sql}: {u:?}"),
            }
        }
    }

    #[test]
    fn queries_over_other_tables_are_not_judged() {
        for sql in [
            "SELECT * FROM output o JOIN f01_refined.orders_clean c ON o.country = c.cntry",
            "SELECT * FROM output, other WHERE x = 1",
            "SELECT * FROM output o, other WHERE x = 1",
            "WITH t AS (SELECT amount AS x FROM output) SELECT * FROM t WHERE x < 0",
            "SELECT * FROM (SELECT amount AS x FROM output) WHERE x < 0",
            "SELECT * FROM output WHERE EXTRACT(YEAR FROM order_date) < 2000 AND yr = 1",
            "SELECT * FROM output.amount",
            "SELECT * FROM output WHERE status = 'unterminated",
            "SELECT * FROM output /* unterminated",
            "SELECT * FROM output WHERE \"unterminated",
        ] {
            assert_eq!(unknown_columns(sql, COLS), None, "{sql}");
        }
    }
}
