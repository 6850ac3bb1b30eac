//! Compile errors with a byte span into the filter expression.

use crate::syntax::ast::Span;

/// An error found while parsing or checking a filter expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    /// What is wrong, in libpcap's words where it has them.
    pub message: String,
    /// The bytes of the expression the error is about.
    pub span: Span,
}

impl CompileError {
    /// Builds an error for `span`.
    pub fn new(message: impl Into<String>, span: Span) -> Self {
        CompileError {
            message: message.into(),
            span,
        }
    }

    /// Renders the error, the expression and a caret line under the span:
    ///
    /// ```text
    /// error: port number 70000 out of range
    ///   tcp port 70000
    ///            ^^^^^
    /// ```
    pub fn render(&self, source: &str) -> String {
        // Work on one line: tabs and newlines would misalign the carets.
        let line: String = source
            .chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .collect();
        let start = self.span.start.min(source.len());
        let end = self.span.end.clamp(start, source.len());
        // Count characters, not bytes, so the carets line up with the text.
        let col = source.get(..start).map_or(start, |s| s.chars().count());
        let width = source
            .get(start..end)
            .map_or(end - start, |s| s.chars().count())
            .max(1);
        format!(
            "error: {}\n  {}\n  {}{}",
            self.message,
            line,
            " ".repeat(col),
            "^".repeat(width)
        )
    }
}

impl From<pktmatch::Error> for CompileError {
    fn from(e: pktmatch::Error) -> Self {
        CompileError::new(e.message, e.span)
    }
}
