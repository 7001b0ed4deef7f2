//! Spark's datetime patterns (`yyyy-MM-dd HH:mm:ss`) in the functions that take one and that
//! the local engine has: `date_format`, `to_date`, `to_timestamp`. DataFusion's functions of
//! those names read chrono's patterns (`%Y-%m-%d`), so
//! a job written for Spark returned the pattern text itself (`date_format(d, 'yyyy')` was the
//! string `yyyy`): a silently wrong result. An analyzer rule rewrites each literal pattern into
//! chrono's before the function sees it; a pattern letter chrono cannot express, or a pattern
//! that is not a literal, is refused with the letter and the fix, never guessed.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

/// The functions whose second argument is a Spark datetime pattern. `date_format` resolves to
/// DataFusion's `to_char` (its alias); Spark's own `to_char` formats numbers only, with
/// patterns (`999.99`) that hold no letter this translation changes.
const PATTERN_FUNCTIONS: &[&str] = &["date_format", "to_char", "to_date", "to_timestamp"];

/// Spark's datetime pattern as chrono's `strftime` pattern. Letters follow Spark 3's
/// `DateTimeFormatter`-based table: the count of a letter picks the form (`M` 1, `MM` 01, `MMM`
/// Jan, `MMMM` January); text between single quotes is literal (`''` is a quote).
pub fn spark_to_chrono(pattern: &str) -> std::result::Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal text; '' inside or outside quotes is one quote.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("the quote opened in `{pattern}` is not closed")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        out.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('%') => {
                        out.push_str("%%");
                        i += 1;
                    }
                    Some(&ch) => {
                        out.push(ch);
                        i += 1;
                    }
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let spec = match (c, n) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M' | 'L', 1) => "%-m",
            ('M' | 'L', 2) => "%m",
            ('M' | 'L', 3) => "%b",
            ('M' | 'L', 4) => "%B",
            ('d', 1) => "%-d",
            ('d', 2) => "%d",
            ('D', 1) => "%-j",
            ('D', 3) => "%j",
            ('H', 1) => "%-H",
            ('H', 2) => "%H",
            ('h', 1) => "%-I",
            ('h', 2) => "%I",
            ('m', 1) => "%-M",
            ('m', 2) => "%M",
            ('s', 1) => "%-S",
            ('s', 2) => "%S",
            ('S', 3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('a', 1) => "%p",
            ('E', 1..=3) => "%a",
            ('E', 4) => "%A",
            _ => {
                let letters: String = std::iter::repeat_n(c, n).collect();
                return Err(format!(
                    "`{letters}` in `{pattern}` is a Spark datetime pattern the local engine does not support (supported: y, yy, yyyy, M to MMMM, d, dd, D, DDD, H, HH, h, hh, m, mm, s, ss, SSS, SSSSSS, SSSSSSSSS, a, E to EEEE, 'quoted text')"
                ));
            }
        };
        out.push_str(spec);
        i += n;
    }
    Ok(out)
}

/// Rewrites the literal pattern of [`PATTERN_FUNCTIONS`] calls into chrono's.
#[derive(Debug, Default)]
pub struct SparkDatetimePatterns;

impl SparkDatetimePatterns {
    fn rewrite(e: Expr) -> Result<Transformed<Expr>> {
        let Expr::ScalarFunction(ScalarFunction { func, args }) = &e else {
            return Ok(Transformed::no(e));
        };
        let name = match func.name().to_ascii_lowercase() {
            n if n == "to_char" => "date_format".to_string(),
            n => n,
        };
        if !PATTERN_FUNCTIONS.contains(&name.as_str()) || args.len() < 2 {
            return Ok(Transformed::no(e));
        }
        let chrono = match &args[1] {
            // A pattern holding `%` is chrono's already: this rule's own output, when a plan is
            // analyzed again (Spark patterns have no use for `%` outside quotes).
            Expr::Literal(ScalarValue::Utf8(Some(p)) | ScalarValue::LargeUtf8(Some(p)) | ScalarValue::Utf8View(Some(p)), _)
                if p.contains('%') =>
            {
                return Ok(Transformed::no(e))
            }
            Expr::Literal(ScalarValue::Utf8(Some(p)) | ScalarValue::LargeUtf8(Some(p)) | ScalarValue::Utf8View(Some(p)), _) => {
                match spark_to_chrono(p) {
                    Ok(c) => c,
                    Err(why) => return plan_err!("{name}: {why}"),
                }
            }
            Expr::Literal(..) => return Ok(Transformed::no(e)),
            other => {
                return plan_err!(
                    "{name}: the datetime pattern must be a literal string (here `{other}`): the local engine translates Spark's pattern letters before the query runs"
                )
            }
        };
        let mut args = args.clone();
        args[1] = Expr::Literal(ScalarValue::Utf8(Some(chrono)), None);
        Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
            func: func.clone(),
            args,
        })))
    }
}

impl AnalyzerRule for SparkDatetimePatterns {
    fn name(&self) -> &str {
        "mesh_spark_datetime_patterns"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan
            .transform_up_with_subqueries(|p| p.map_expressions(|e| e.transform_up(Self::rewrite)))?
            .data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_patterns_become_chrono_patterns() {
        assert_eq!(spark_to_chrono("yyyy-MM-dd").unwrap(), "%Y-%m-%d");
        assert_eq!(
            spark_to_chrono("dd/MM/yy HH:mm:ss.SSS").unwrap(),
            "%d/%m/%y %H:%M:%S.%3f"
        );
        assert_eq!(spark_to_chrono("EEE MMM d h:mm a").unwrap(), "%a %b %-d %-I:%M %p");
        assert_eq!(spark_to_chrono("EEEE, MMMM d 'at' yyyy").unwrap(), "%A, %B %-d at %Y");
        assert_eq!(spark_to_chrono("'It''s' D").unwrap(), "It's %-j");
        assert!(spark_to_chrono("yyyy-MM-dd'T").unwrap_err().contains("not closed"));
        assert!(spark_to_chrono("yyyy G").unwrap_err().contains("`G`"));
        assert!(spark_to_chrono("HH:mm XXX").unwrap_err().contains("`XXX`"));
    }
}
