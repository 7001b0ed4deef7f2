//! Identifiers that are valid by construction. Each knows the rule it enforces so the
//! error can say what a valid value looks like.

use std::fmt;

/// Why a string is not a valid identifier, phrased for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}: {rule}")]
pub struct IdentError {
    pub value: String,
    pub what: &'static str,
    pub rule: &'static str,
}

macro_rules! ident {
    ($(#[$doc:meta])* $name:ident, $what:literal, $rule:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const RULE: &'static str = $rule;

            pub fn parse(value: &str) -> Result<Self, IdentError> {
                let check: fn(&str) -> bool = $check;
                if check(value) {
                    Ok($name(value.to_string()))
                } else {
                    Err(IdentError { value: value.to_string(), what: $what, rule: $rule })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdentError;
            fn from_str(s: &str) -> Result<Self, IdentError> {
                Self::parse(s)
            }
        }
    };
}

fn lower_alnum(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn snake(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.ends_with('_')
        && !s.contains("__")
}

ident!(
    /// `domain_abbr`: the prefix of every bucket, database and job name.
    DomainAbbr,
    "domain abbreviation",
    "2 to 10 lowercase letters or digits, starting with a letter (it prefixes S3 buckets, Glue databases and IAM roles), e.g. `f01`",
    |s| lower_alnum(s, 2, 10)
);

ident!(
    /// `project_slug`: a short code that isolates a project's data and roles.
    ProjectSlug,
    "project slug",
    "2 to 10 lowercase letters or digits, starting with a letter (it appears in S3 prefixes, IAM role names and SSM paths), e.g. `pj01`",
    |s| lower_alnum(s, 2, 10)
);

ident!(
    /// Names of projects, tables, columns, jobs, pipelines and pipeline steps.
    Name,
    "name",
    "lowercase snake_case: a letter, then letters, digits or single underscores, at most 100 characters, e.g. `daily_sales`",
    |s| snake(s, 100)
);

impl Name {
    /// The name as it appears in AWS resource names, which use hyphens (`daily_sales` → `daily-sales`).
    pub fn kebab(&self) -> String {
        self.0.replace('_', "-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbr_rules() {
        assert!(DomainAbbr::parse("f01").is_ok());
        for bad in ["F01", "1ab", "a", "f-01", "f_01", "abcdefghijk", ""] {
            assert!(DomainAbbr::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn names_are_snake_case() {
        assert!(Name::parse("legacy_refactor").is_ok());
        for bad in ["Legacy", "_x", "x_", "a__b", "a-b", "1a", ""] {
            assert!(Name::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(Name::parse("daily_sales").unwrap().kebab(), "daily-sales");
    }

    #[test]
    fn error_names_the_rule() {
        let e = ProjectSlug::parse("PJ-1").unwrap_err();
        assert!(e.to_string().contains("lowercase letters or digits"), "{e}");
    }
}
