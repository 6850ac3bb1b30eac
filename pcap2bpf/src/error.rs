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
    /// A check of libpcap's development branch that libpcap 1.10.3 does
    /// not make: 1.10.3 compiles the filter, truncating or ignoring what
    /// is refused here (`ip proto 256`, `decnet host 64.1`).
    pub newer_check: bool,
}

impl CompileError {
    /// Builds an error for `span`.
    pub fn new(message: impl Into<String>, span: Span) -> Self {
        CompileError {
            message: message.into(),
            span,
            newer_check: false,
        }
    }

    /// Builds an error for `span` that only libpcap's newer releases
    /// raise (see [`CompileError::newer_check`]).
    pub fn newer(message: impl Into<String>, span: Span) -> Self {
        CompileError {
            newer_check: true,
            ..CompileError::new(message, span)
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
        // Other control characters are escaped (see [`crate::text::escape`]):
        // the expression comes from outside and goes to a terminal. Columns
        // count the characters printed, so the carets stay under the text.
        let start = self.span.start.min(source.len());
        let end = self.span.end.clamp(start, source.len());
        let mut line = String::with_capacity(source.len());
        let (mut col, mut width) = (0, 0);
        for (at, c) in source.char_indices() {
            let shown = if c.is_whitespace() {
                " ".to_string()
            } else {
                crate::text::escape_char(c).unwrap_or_else(|| c.to_string())
            };
            let n = shown.chars().count();
            if at < start {
                col += n;
            } else if at < end {
                width += n;
            }
            line.push_str(&shown);
        }
        format!(
            "error: {}\n  {}\n  {}{}",
            crate::text::escape(&self.message),
            line,
            " ".repeat(col),
            "^".repeat(width.max(1))
        )
    }
}

impl From<pktmatch::Error> for CompileError {
    fn from(e: pktmatch::Error) -> Self {
        CompileError::new(e.message, e.span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_caret_follows() {
        // `\x1b[2J` clears a terminal; the newline would start a line.
        let expr = "host \x1b[2J\nfoo port 99999";
        let at = expr.find("99999").unwrap();
        let e = CompileError::new(
            "port number 99999 out of range",
            Span {
                start: at,
                end: at + 5,
            },
        );
        let r = e.render(expr);
        assert!(!r.contains('\x1b'), "{r}");
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines.len(), 3, "{r}");
        assert_eq!(lines[1], "  host \\x1b[2J foo port 99999");
        let caret = lines[2].find('^').unwrap();
        assert_eq!(&lines[1][caret..caret + 5], "99999", "{r}");
        assert_eq!(lines[2].trim_start(), "^^^^^");
        // The fault itself inside the escaped run.
        let at = expr.find('\x1b').unwrap();
        let r = CompileError::new(
            "bad",
            Span {
                start: at,
                end: at + 1,
            },
        )
        .render(expr);
        let lines: Vec<&str> = r.lines().collect();
        let caret = lines[2].find('^').unwrap();
        assert_eq!(&lines[1][caret..], "\\x1b[2J foo port 99999");
        assert_eq!(lines[2].trim_start(), "^^^^");
    }
}
