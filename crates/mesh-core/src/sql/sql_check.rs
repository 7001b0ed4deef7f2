//! SQL that reaches an engine is exactly one query. Job SQL and `mesh sql` are read-only by
//! construction: a whitelist (one `SELECT` / `WITH … SELECT` / `VALUES`, no `SELECT … INTO`)
//! checked on the parsed statement, not a list of forbidden words, then DataFusion's own
//! plan verifier ([`read_only`]) as a second guard when the statement is planned.
//!
//! Expressions nest at most [`MAX_DEPTH`] deep: DataFusion's planner and optimizer recurse
//! over the expression tree, and 800 chained `OR`s overflowed a worker thread's stack (exit
//! 134, no run record). A limit with a message is better than an abort.

use std::ops::ControlFlow;

use datafusion::execution::context::SQLOptions;
use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Spanned, Statement, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::DatabricksDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Deepest expression nesting accepted (`a OR b OR c …` nests one level per operator). Real
/// queries stay far below; the engines' recursion stays well inside a 2 MiB worker stack.
pub const MAX_DEPTH: usize = 256;

/// Why a SQL text is refused, and on which line (1-based) when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlIssue {
    pub message: String,
    pub line: Option<usize>,
}

impl SqlIssue {
    fn new(message: impl Into<String>, line: Option<usize>) -> SqlIssue {
        SqlIssue {
            message: message.into(),
            line,
        }
    }
}

/// `${name}` placeholders become the bare name, so the text parses with the same lines.
pub fn neutralise_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                out.push_str(&after[..end]);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn line_of(s: &impl Spanned) -> Option<usize> {
    let line = s.span().start.line as usize;
    (line > 0).then_some(line)
}

fn error_line(message: &str) -> Option<usize> {
    let at = message.find("Line: ")?;
    message[at + 6..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .ok()
}

/// The 1-based line where each statement starts (its first token that is not whitespace or a
/// comment), from the tokens: statement spans are not known for every statement kind.
fn statement_lines(sql: &str, dialect: &dyn datafusion::sql::sqlparser::dialect::Dialect) -> Vec<usize> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize_with_location() else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut want = true;
    for t in tokens {
        match t.token {
            Token::Whitespace(_) | Token::EOF => {}
            Token::SemiColon => want = true,
            _ if want => {
                lines.push(t.span.start.line as usize);
                want = false;
            }
            _ => {}
        }
    }
    lines
}

/// The first words of a statement (`DROP TABLE`, `COPY`), to name what was refused.
fn kind(statement: &str) -> String {
    let words: Vec<&str> = statement.split_whitespace().take(2).collect();
    let first = words.first().copied().unwrap_or("").to_ascii_uppercase();
    let second = words.get(1).copied().unwrap_or("").to_ascii_uppercase();
    if matches!(
        second.as_str(),
        "TABLE" | "EXTERNAL" | "VIEW" | "INTO" | "OVERWRITE" | "SCHEMA" | "DATABASE" | "FUNCTION" | "TEMPORARY"
    ) {
        format!("{first} {second}")
    } else {
        first
    }
}

/// Whether a query writes: `SELECT … INTO t` creates a table.
fn select_into(q: &Query) -> bool {
    fn body(b: &SetExpr) -> bool {
        match b {
            SetExpr::Select(s) => s.into.is_some(),
            SetExpr::Query(q) => select_into(q),
            SetExpr::SetOperation { left, right, .. } => body(left) || body(right),
            SetExpr::Values(_) | SetExpr::Table(_) => false,
            // Anything else in a query position (INSERT, UPDATE, MERGE, DELETE) writes.
            _ => true,
        }
    }
    body(&q.body)
}

struct Depth {
    now: usize,
    max: usize,
    line: Option<usize>,
}

impl Visitor for Depth {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        self.now += 1;
        if self.now > self.max {
            self.max = self.now;
            if self.line.is_none() {
                self.line = line_of(e);
            }
        }
        if self.now > MAX_DEPTH {
            // Stop early: walking the rest of a hostile tree gains nothing.
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }
    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.now += 1;
        ControlFlow::Continue(())
    }
    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }
}

/// Longest run of binary operators accepted between two commas at one parenthesis level,
/// checked on tokens before parsing. The parser builds `a OR b OR …` iteratively, but the
/// tree it returns is as deep as the chain, and dropping (or visiting) a tree hundreds of
/// thousands deep overflows any stack. Generous: [`MAX_DEPTH`] gives the exact limit later.
const MAX_CHAIN: usize = 4 * MAX_DEPTH;

fn check_chains(sql: &str, dialect: &dyn datafusion::sql::sqlparser::dialect::Dialect) -> Result<(), SqlIssue> {
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize_with_location() else {
        // The parser reports the same tokenizer error with its message.
        return Ok(());
    };
    // Operators counted per open parenthesis level (index 0 = top level).
    let mut counts = vec![0usize];
    for t in &tokens {
        let level = counts.len() - 1;
        match &t.token {
            Token::LParen | Token::LBracket | Token::LBrace => counts.push(0),
            Token::RParen | Token::RBracket | Token::RBrace if level > 0 => {
                counts.pop();
            }
            Token::Comma | Token::SemiColon => counts[level] = 0,
            Token::Whitespace(_) => {}
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::Caret
            | Token::Ampersand
            | Token::Pipe => counts[level] += 1,
            Token::Word(w) if matches!(w.keyword, Keyword::AND | Keyword::OR | Keyword::XOR) => counts[level] += 1,
            _ => {}
        }
        if counts[counts.len() - 1] > MAX_CHAIN {
            return Err(SqlIssue::new(
                format!("the query is too deep: it chains more than {MAX_CHAIN} operators in one expression (e.g. hundreds of OR or + terms); split it or use IN (…)"),
                Some(t.span.start.line as usize).filter(|l| *l > 0),
            ));
        }
    }
    Ok(())
}

fn check_depth(s: &Statement) -> Result<(), SqlIssue> {
    let mut d = Depth {
        now: 0,
        max: 0,
        line: None,
    };
    if s.visit(&mut d).is_break() {
        return Err(SqlIssue::new(
            format!("the query is too deep: it nests expressions more than {MAX_DEPTH} levels (e.g. a chain of hundreds of OR or + terms); split it or use IN (…)"),
            d.line,
        ));
    }
    Ok(())
}

/// Accepts exactly one read-only query; `what` names the text in messages ("job SQL").
fn one_query(statements: Vec<Statement>, lines: &[usize], empty: &str) -> Result<(), SqlIssue> {
    let line = |i: usize| lines.get(i).copied().filter(|l| *l > 0);
    let mut it = statements.into_iter();
    let Some(first) = it.next() else {
        return Err(SqlIssue::new(empty, None));
    };
    let first_line = line(0);
    if it.next().is_some() {
        let line = line(1);
        return Err(SqlIssue::new(
            "more than one statement: only one query (SELECT or WITH … SELECT) is allowed",
            line,
        ));
    }
    match &first {
        Statement::Query(q) if !select_into(q) => check_depth(&first),
        Statement::Query(_) => Err(SqlIssue::new(
            "`SELECT … INTO` creates a table: only a query that returns rows is allowed",
            first_line,
        )),
        other => Err(SqlIssue::new(
            format!(
                "`{}` is not a query: only SELECT or WITH … SELECT is allowed, nothing that writes, creates, drops, copies or sets",
                kind(&other.to_string())
            ),
            first_line,
        )),
    }
}

/// Job SQL as written in a project (Spark SQL, `${param}` placeholders allowed): UTF-8, and
/// exactly one query. Checked by `mesh validate` and again by `mesh run` before planning.
/// The file's bytes without a UTF-8 byte-order mark (Windows editors write one; it is not SQL).
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

pub fn check_job_sql(bytes: &[u8]) -> Result<(), SqlIssue> {
    let bytes = strip_bom(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        SqlIssue::new(
            format!("is not UTF-8 text (invalid byte at offset {})", e.valid_up_to()),
            Some(line),
        )
    })?;
    if text.trim().is_empty() {
        return Err(SqlIssue::new("is empty: a job needs one query (SELECT …)", None));
    }
    let text = neutralise_params(text);
    check_chains(&text, &DatabricksDialect {})?;
    let statements = Parser::parse_sql(&DatabricksDialect {}, &text).map_err(|e| {
        let message = e.to_string();
        let line = error_line(&message);
        SqlIssue::new(format!("does not parse as Spark SQL: {message}"), line)
    })?;
    let lines = statement_lines(&text, &DatabricksDialect {});
    one_query(
        statements,
        &lines,
        "holds no statement (only comments): a job needs one query (SELECT …)",
    )
}

/// Ad-hoc SQL for `mesh sql`, parsed as DataFusion parses it (its `COPY … TO` and
/// `CREATE EXTERNAL TABLE` extensions included): exactly one query.
pub fn check_read_only_query(sql: &str) -> Result<(), SqlIssue> {
    check_chains(sql, &datafusion::sql::sqlparser::dialect::GenericDialect {})?;
    let parsed = DFParserBuilder::new(sql)
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| {
            let message = e.to_string();
            let line = error_line(&message);
            SqlIssue::new(message, line)
        })?;
    let mut statements = Vec::new();
    for s in parsed {
        match s {
            DFStatement::Statement(s) => statements.push(*s),
            other => {
                if !statements.is_empty() {
                    return Err(SqlIssue::new(
                        "more than one statement: only one query (SELECT or WITH … SELECT) is allowed",
                        None,
                    ));
                }
                return Err(SqlIssue::new(
                    format!(
                        "`{}` is not a query: `mesh sql` only runs SELECT or WITH … SELECT, nothing that writes, creates, drops, copies or sets",
                        kind(&other.to_string())
                    ),
                    None,
                ));
            }
        }
    }
    let lines = statement_lines(sql, &datafusion::sql::sqlparser::dialect::GenericDialect {});
    one_query(statements, &lines, "no statement: give one query (SELECT …)")
}

/// DataFusion's plan verifier set to refuse DDL, DML (`INSERT`, `COPY`) and statements
/// (`SET`): the second guard, applied when a checked query is planned.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_query_is_job_sql() {
        for ok in [
            "SELECT 1",
            "-- daily\nWITH a AS (SELECT 1 AS x) SELECT x FROM a WHERE d = '${run_date}'",
            "SELECT a FROM t UNION ALL SELECT b FROM u;",
            "VALUES (1), (2)",
        ] {
            assert_eq!(check_job_sql(ok.as_bytes()), Ok(()), "{ok}");
        }
        let cases: [(&[u8], &str, Option<usize>); 9] = [
            (b"", "is empty", None),
            (b"  \n\t", "is empty", None),
            (b"-- nothing\n/* here */", "holds no statement", None),
            (b"SELECT 1;\nSELECT 2", "more than one statement", Some(2)),
            (b"SELECT 1;\nDROP TABLE t", "more than one statement", Some(2)),
            (
                b"DROP TABLE f01_curated.daily_sales",
                "`DROP TABLE` is not a query",
                Some(1),
            ),
            (b"\nINSERT INTO t SELECT 1", "`INSERT INTO` is not a query", Some(2)),
            (b"SELECT * INTO t2 FROM t", "SELECT … INTO", Some(1)),
            (b"SELECT 1\n\xff", "is not UTF-8", Some(2)),
        ];
        for (sql, want, line) in cases {
            let e = check_job_sql(sql).unwrap_err();
            assert!(
                e.message.contains(want),
                "{:?}: {}",
                String::from_utf8_lossy(sql),
                e.message
            );
            assert_eq!(e.line, line, "{:?}: {}", String::from_utf8_lossy(sql), e.message);
        }
        // Whatever Spark's parser makes of COPY or SET, it is not a query.
        for bad in [
            "COPY (SELECT 1) TO 'out.csv'",
            "SET x = 1",
            "CREATE TABLE t AS SELECT 1",
            "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
        ] {
            assert!(check_job_sql(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn mesh_sql_runs_queries_only() {
        assert_eq!(
            check_read_only_query("SELECT * FROM f01_curated.daily_sales LIMIT 5"),
            Ok(())
        );
        for (bad, want) in [
            ("COPY (SELECT 1 AS x) TO '/tmp/x.json' STORED AS JSON", "`COPY"),
            (
                "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/'",
                "`CREATE EXTERNAL",
            ),
            ("INSERT INTO f01_curated.daily_sales VALUES (1)", "`INSERT INTO`"),
            ("DROP TABLE f01_curated.daily_sales", "`DROP TABLE`"),
            ("SET datafusion.execution.batch_size = 1", "`SET"),
            ("CREATE VIEW v AS SELECT 1", "`CREATE VIEW`"),
            ("SELECT 1; SELECT 2", "more than one statement"),
            (
                "SELECT 1; COPY (SELECT 1) TO '/tmp/y' STORED AS CSV",
                "more than one statement",
            ),
            ("EXPLAIN ANALYZE INSERT INTO t VALUES (1)", "is not a query"),
            ("SELECT 1 INTO t", "SELECT … INTO"),
            ("", "no statement"),
        ] {
            let e = check_read_only_query(bad).unwrap_err();
            assert!(e.message.contains(want), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn deep_expressions_are_refused_with_a_message() {
        let ors = (0..800).map(|i| format!("a = {i}")).collect::<Vec<_>>().join(" OR ");
        let plus = vec!["1"; 1000].join("+");
        for sql in [format!("SELECT * FROM t WHERE {ors}"), format!("SELECT {plus}")] {
            let e = check_job_sql(sql.as_bytes()).unwrap_err();
            assert!(e.message.contains("too deep"), "{}", e.message);
            let e = check_read_only_query(&sql).unwrap_err();
            assert!(e.message.contains("too deep"), "{}", e.message);
        }
        // Far beyond any stack: refused on tokens, before a tree is built.
        let huge = vec!["1"; 300_000].join("+");
        for sql in [
            format!("SELECT {huge}"),
            format!("SELECT * FROM t WHERE {}", vec!["a = 1"; 100_000].join(" OR ")),
        ] {
            let e = check_job_sql(sql.as_bytes()).unwrap_err();
            assert!(e.message.contains("chains more than"), "{}", e.message);
            assert!(check_read_only_query(&sql).is_err());
        }
        let fine = vec!["1"; MAX_DEPTH / 2].join("+");
        assert_eq!(check_job_sql(format!("SELECT {fine}").as_bytes()), Ok(()));
        assert_eq!(
            check_job_sql("\u{feff}SELECT 1\n".as_bytes()),
            Ok(()),
            "a BOM is not SQL"
        );
        // Parentheses hit the parser's own recursion limit: an error, not a crash.
        let parens = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(check_job_sql(parens.as_bytes()).is_err());
        assert!(check_read_only_query(&parens).is_err());
    }

    mod depth_property {
        use super::*;
        use proptest::prelude::*;

        // One operator per chain: left-deep, so the tree is exactly as deep as the chain.
        fn chain(op: &str, n: usize, parens: usize) -> String {
            let mut body = String::from("a");
            for i in 1..n {
                body.push_str(op);
                body.push_str(&format!("c{i}"));
            }
            format!("SELECT {}{body}{} FROM t", "(".repeat(parens), ")".repeat(parens))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]
            /// Any chain length and parenthesis depth: a message or a pass, never a crash, and
            /// what passes is shallow enough for the engines.
            #[test]
            fn deep_sql_is_refused_or_shallow(
                n in prop_oneof![1..400usize, 400..3000usize, Just(MAX_DEPTH), Just(MAX_DEPTH + 5)],
                parens in 0..80usize,
                op in prop::sample::select(vec![" OR ", " AND ", " + ", " * ", " || "]),
            ) {
                let sql = chain(op, n, parens);
                let job = check_job_sql(sql.as_bytes());
                let adhoc = check_read_only_query(&sql);
                if n + parens > MAX_DEPTH + 2 {
                    prop_assert!(job.is_err() && adhoc.is_err(), "n={n} parens={parens} passed");
                }
                if n + parens + 4 < MAX_DEPTH && parens < 40 {
                    prop_assert!(job.is_ok(), "{:?}", job);
                    prop_assert!(adhoc.is_ok(), "{:?}", adhoc);
                }
            }
        }
    }
}
