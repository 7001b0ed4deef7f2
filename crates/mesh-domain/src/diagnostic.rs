//! Problems found in a domain's files, reported all at once and each one actionable.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a problem is: a file, optionally a line, and the field path inside the file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Location {
    /// Path relative to the domain root when possible, so messages stay short and stable.
    pub file: PathBuf,
    pub line: Option<usize>,
    /// Dotted field path such as `jobs[0].output`; empty for whole-file problems.
    pub field: String,
}

/// One problem: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    #[serde(flatten)]
    pub location: Location,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(file: impl Into<PathBuf>, field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            location: Location {
                file: file.into(),
                line: None,
                field: field.into(),
            },
            message: cap(message.into()),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(cap(help.into()));
        self
    }

    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.location.line = line;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loc = &self.location;
        write!(f, "error: {}", loc.file.display())?;
        if let Some(line) = loc.line {
            write!(f, ":{line}")?;
        }
        if !loc.field.is_empty() {
            write!(f, ": `{}`", loc.field)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in one validation pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
    /// Sorted by file, then line, so output is stable across runs and easy to scan.
    pub fn sorted(mut self) -> Self {
        self.0
            .sort_by(|a, b| a.location.cmp(&b.location).then_with(|| a.message.cmp(&b.message)));
        self.0.dedup();
        self
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        let n = self.0.len();
        write!(f, "{n} problem{} found", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Longest message or help text kept whole; longer ones (a value echoed from a hostile or
/// broken file) are cut, so one field cannot flood the terminal or a JSON report.
pub const MAX_MESSAGE: usize = 2000;

pub(crate) fn cap(s: String) -> String {
    if s.len() <= MAX_MESSAGE {
        return s;
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &s[..end], s.len() - end)
}

/// A value quoted in a message: at most 80 characters, then `… (N bytes)`.
pub fn truncate(s: &str) -> std::borrow::Cow<'_, str> {
    const KEEP: usize = 80;
    match s.char_indices().nth(KEEP) {
        None => s.into(),
        Some((end, _)) => format!("{}… ({} bytes)", &s[..end], s.len()).into(),
    }
}

/// Suggests the closest known name, for "did you mean" hints.
pub fn did_you_mean<'a>(wanted: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(wanted, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!("did you mean `{k}`?"))
}

/// Formats a path relative to `root` when it lies inside it.
pub fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Maps byte offsets to 1-based line numbers.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

impl Diagnostics {
    pub(crate) fn last_mut_inner(&mut self) -> Option<&mut Diagnostic> {
        self.0.last_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_values_are_cut() {
        let big = "x".repeat(5 << 20);
        let d = Diagnostic::new("domain.json", "domain_name", format!("`{big}` is too long")).with_help(big.clone());
        assert!(d.to_string().len() < 2 * MAX_MESSAGE + 200, "{}", d.to_string().len());
        assert!(d.message.ends_with("bytes cut)"));
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(100);
        let t = truncate(&long);
        assert!(t.starts_with(&"é".repeat(80)) && t.ends_with("(200 bytes)"), "{t}");
    }
}
