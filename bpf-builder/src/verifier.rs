//! Reading the verifier's log: why a program was rejected and at which
//! instruction, mapped back to the builder's source annotations.

use std::fmt;
use std::io;

use crate::asm::Annotation;
use crate::privilege::{Needs, hint};

/// The instruction the verifier stopped at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedInsn {
    /// Index in the loaded program (the program's code, then its functions).
    pub index: usize,
    /// The verifier's rendering of the instruction, if the log had it.
    pub text: Option<String>,
    /// The program or function the instruction belongs to.
    pub owner: Option<String>,
    /// The source annotation of the instruction.
    pub source: Option<Annotation>,
}

/// The kernel refused a program.
#[derive(Debug)]
pub struct VerifierError {
    /// The program's name.
    pub program: String,
    /// The errno of the load (EACCES, EINVAL, E2BIG, ...).
    pub error: io::Error,
    /// The verifier's reason: the log's last message before its statistics.
    pub reason: String,
    /// Where it stopped, if the log says.
    pub insn: Option<FailedInsn>,
    /// The whole verifier log.
    pub log: String,
    /// The capabilities loading this program needs, named when the kernel
    /// refused it for lack of privilege (`EPERM`/`EACCES`, no log).
    pub needs: Needs,
}

impl std::error::Error for VerifierError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl fmt::Display for VerifierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the kernel rejected program `{}`", self.program)?;
        if self.reason.is_empty() {
            write!(f, ": {}", self.error)?;
            if self.log.is_empty() {
                write!(f, "{}", hint(&self.error, self.needs))?;
            }
        } else {
            write!(f, ": {}", self.reason)?;
        }
        if let Some(insn) = &self.insn {
            write!(f, "\n  at instruction {}", insn.index)?;
            if let Some(owner) = insn.owner.as_deref().filter(|o| *o != self.program) {
                write!(f, " (in function `{owner}`)")?;
            }
            if let Some(text) = &insn.text {
                write!(f, ": {text}")?;
            }
            if let Some(src) = &insn.source {
                write!(f, "\n  source: {src}")?;
            }
        }
        Ok(())
    }
}

/// What a verifier log says about a failure.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogFailure {
    /// The reason line(s).
    pub reason: String,
    /// The index of the last instruction the verifier printed, or the one
    /// the reason names.
    pub insn: Option<usize>,
    /// The verifier's text of that instruction.
    pub insn_text: Option<String>,
}

/// Lines that close a log and say nothing about the failure.
fn is_trailer(line: &str) -> bool {
    line.starts_with("processed ")
        || line.starts_with("verification time")
        || line.starts_with("stack depth")
        || line.starts_with("-- END PROG LOAD LOG --")
        || line.trim().is_empty()
}

/// An instruction line of the log: `12: (61) r0 = *(u32 *)(r1 +0)`.
fn insn_line(line: &str) -> Option<(usize, &str)> {
    let (idx, rest) = line.split_once(": (")?;
    let index = idx.parse().ok()?;
    let (_, text) = rest.split_once(") ")?;
    Some((index, text.trim_end()))
}

/// A bare `N: R1=... R10=fp0` state line, which also names an instruction.
fn state_line(line: &str) -> Option<usize> {
    let (idx, rest) = line.split_once(": ")?;
    if rest.starts_with('R') || rest.starts_with("frame") {
        idx.parse().ok()
    } else {
        None
    }
}

/// Finds the failure in a verifier log (level 1 or 2).
pub fn parse_log(log: &str) -> LogFailure {
    let lines: Vec<&str> = log.lines().collect();
    let end = lines
        .iter()
        .rposition(|l| !is_trailer(l))
        .map_or(0, |i| i + 1);
    // The reason is the run of non-instruction lines at the end.
    let mut start = end;
    while start > 0 {
        let l = lines[start - 1];
        if insn_line(l).is_some() || state_line(l).is_some() || l.starts_with(';') {
            break;
        }
        start -= 1;
    }
    let reason = lines[start..end].join("\n");
    let mut failure = LogFailure {
        reason,
        ..LogFailure::default()
    };
    if let Some((index, text)) = lines[..start].iter().rev().find_map(|l| insn_line(l)) {
        failure.insn = Some(index);
        failure.insn_text = Some(text.to_string());
    } else {
        // Structural errors name the instruction in the message:
        // "jump out of range from insn 1 to 9", "unreachable insn 5".
        failure.insn = number_after(&failure.reason, "insn ");
    }
    failure
}

fn number_after(text: &str, marker: &str) -> Option<usize> {
    let at = text.find(marker)? + marker.len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_reason_and_instruction() {
        let log = "func#0 @0\n0: R1=ctx() R10=fp0\n0: (b7) r0 = 0                        ; R0_w=0\n\
                   1: (61) r0 = *(u32 *)(r2 +0)\nR2 !read_ok\n\
                   processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";
        let f = parse_log(log);
        assert_eq!(f.reason, "R2 !read_ok");
        assert_eq!(f.insn, Some(1));
        assert_eq!(f.insn_text.as_deref(), Some("r0 = *(u32 *)(r2 +0)"));
    }

    #[test]
    fn structural_errors_name_the_instruction() {
        let f = parse_log("jump out of range from insn 1 to 9\nprocessed 0 insns\n");
        assert_eq!(f.reason, "jump out of range from insn 1 to 9");
        assert_eq!(f.insn, Some(1));
    }

    #[test]
    fn empty_log_gives_empty_reason() {
        assert_eq!(parse_log(""), LogFailure::default());
    }
}
