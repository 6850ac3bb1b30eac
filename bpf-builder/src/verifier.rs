//! Reading the verifier's log: why a program was rejected and at which
//! instruction, mapped back to the builder's source annotations, with the
//! common terse messages explained in one line ([`explain`]).

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

impl VerifierError {
    /// What the verifier's reason means and the usual fix, in one line,
    /// when the message is one we know (see [`explain`]).
    pub fn hint(&self) -> Option<&'static str> {
        explain(&self.reason)
    }
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
                write!(f, "\n  source: {}", crate::listing::one_line(src))?;
            }
        }
        if let Some(hint) = self.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The verifier's terse messages, each by a piece of its text, with what it
/// means and the usual fix. The first entry whose piece the reason
/// contains wins, so the specific ones come before the general ones.
const HINTS: &[(&str, &str)] = &[
    (
        "R0 !read_ok",
        "r0 holds no value at this exit: set the return value in r0 on every path that \
         reaches `exit` (in a function too, where r0 is what it returns)",
    ),
    (
        "!read_ok",
        "a register is read before anything was written to it on this path; a call \
         (helper or function) leaves r1-r5 unset, only r0 (its result) and r6-r9 survive it",
    ),
    (
        "invalid access to packet",
        "a packet access not proven to lie within data..data_end: compare the pointer plus \
         the access length with data_end first, on every path to this instruction",
    ),
    (
        "unbounded memory access",
        "the verifier cannot bound the offset added to this pointer: mask it (`&= N`) or \
         compare it with a constant before the access",
    ),
    (
        "with unbounded min value",
        "the number added to the pointer may be negative as far as the verifier knows: \
         compare it (unsigned) with a bound or mask it before the addition",
    ),
    (
        "_or_null'",
        "a pointer that may be NULL (a map lookup's result) is used before the check: jump \
         away when it is 0 first",
    ),
    (
        "invalid mem access 'scalar'",
        "a load or store through a register that holds a number, not a pointer (a value \
         read from memory, a helper's integer result): only pointers the verifier tracks \
         can be dereferenced",
    ),
    (
        " expected=",
        "a helper argument of the wrong kind: the register holds the type after `type=`, \
         the helper takes one of those after `expected=` (fp: a pointer into the stack, \
         such as r10 - 8)",
    ),
    (
        "unreachable insn",
        "no path from the start reaches this instruction, and the verifier refuses dead \
         code: remove it or jump to it",
    ),
    (
        "back-edge from insn",
        "a backward jump (a loop): only programs loaded with CAP_BPF may loop; unroll it \
         or load with CAP_BPF",
    ),
    (
        "infinite loop detected",
        "the loop comes back to a state the verifier has seen: nothing it tracks changes \
         between iterations, so it cannot prove the loop ends; count iterations in a \
         register and leave on a bound",
    ),
    (
        "jumps is too complex",
        "the verifier keeps a pending state for each conditional jump whose other way it \
         has not walked yet, at most 8192 on one path: a straight run of more tests than \
         that (thousands of alternatives one after another) exceeds it; split the program \
         (tail calls, several programs) or test sets through a map lookup",
    ),
    (
        "BPF program is too large",
        "the verifier walked its limit of 1 million instructions over all paths: each \
         loop iteration and branch adds to it; bound loops tightly, use bpf_loop, or \
         split the program (tail calls, functions)",
    ),
    (
        "read from stack",
        "stack bytes are read (by a helper, through a pointer such as a map key) before \
         they were written: write every byte of the key or buffer first",
    ),
    (
        "dereference of modified ctx ptr",
        "context fields are read at constant offsets from the context pointer itself (r1 \
         at entry): keep a copy of r1 and read `*(ctx + offset)` from it",
    ),
    (
        "invalid bpf_context access",
        "this program type has no context field at that offset and size, or may not \
         write it: check them against its context struct (xdp_md, __sk_buff)",
    ),
    (
        "cannot use helper",
        "this program type may not call that helper (`bpftool feature probe` lists the \
         helpers of each type)",
    ),
    (
        "invalid access to map value",
        "the access falls outside the map value: offset + size must stay within \
         value_size (bound a variable offset first)",
    ),
    // Allowed only with `allow_ptr_leaks`, which the verifier grants to
    // a loader with CAP_PERFMON.
    (
        "pointer -= pointer prohibited",
        "only a loader with CAP_PERFMON (besides CAP_BPF) may subtract one pointer from \
         another: load with CAP_PERFMON",
    ),
    (
        "pointer comparison prohibited",
        "only a loader with CAP_PERFMON (besides CAP_BPF) may compare pointers other than \
         packet pointers: load with CAP_PERFMON",
    ),
    (
        "leaks addr",
        "only a loader with CAP_PERFMON (besides CAP_BPF) may store a pointer where user \
         space can read it (a map, the context, a helper's buffer): load with CAP_PERFMON",
    ),
    (
        "pointer arithmetic on pkt_end prohibited",
        "data_end may only be compared with: add the length to the packet pointer \
         (data + n) and compare that with data_end",
    ),
    (
        "invalid write to stack",
        "the stack is the 512 bytes below r10: write at offsets -1 to -512 from r10",
    ),
    (
        "jump out of range",
        "a jump's target lies outside the program (or inside a 16-byte instruction)",
    ),
];

/// One line on what the verifier's `reason` means and the usual fix, when
/// it is one of the common messages; the kernel's own text stays as it is
/// beside it.
pub fn explain(reason: &str) -> Option<&'static str> {
    HINTS
        .iter()
        .find(|(piece, _)| reason.contains(piece))
        .map(|&(_, hint)| hint)
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

    /// Messages the tests cannot provoke as root, in the kernel's words
    /// (kernel/bpf/verifier.c): uninitialised stack, pointer subtraction,
    /// pointer comparisons and pointers stored in maps are allowed with
    /// CAP_PERFMON, loops with CAP_BPF, and the assembler refuses jumps
    /// out of the program.
    #[test]
    fn texts_root_cannot_provoke_are_explained() {
        for (text, piece) in [
            (
                "invalid indirect read from stack R2 off -4+0 size 4",
                "write every byte",
            ),
            (
                "invalid read from stack off -8+0 size 8",
                "write every byte",
            ),
            (
                "back-edge from insn 3 to 1",
                "only programs loaded with CAP_BPF may loop",
            ),
            ("jump out of range from insn 1 to 9", "outside the program"),
            ("R3 pointer -= pointer prohibited", "CAP_PERFMON"),
            ("R1 pointer comparison prohibited", "CAP_PERFMON"),
            ("R2 leaks addr into map", "CAP_PERFMON"),
        ] {
            let hint = explain(text).unwrap_or_else(|| panic!("no hint for {text:?}"));
            assert!(hint.contains(piece), "{text:?}: {hint}");
        }
    }

    #[test]
    fn r0_gets_its_own_hint_and_other_registers_the_general_one() {
        assert!(
            explain("R0 !read_ok")
                .unwrap()
                .starts_with("r0 holds no value")
        );
        assert!(
            explain("R10 !read_ok")
                .unwrap()
                .starts_with("a register is read")
        );
        assert!(
            explain("R3 !read_ok")
                .unwrap()
                .starts_with("a register is read")
        );
        assert_eq!(explain("something new"), None);
        assert_eq!(explain(""), None);
    }

    #[test]
    fn hint_follows_the_kernel_text() {
        let e = VerifierError {
            program: "p".into(),
            error: io::Error::from_raw_os_error(libc::EACCES),
            reason: "R0 !read_ok".into(),
            insn: None,
            log: "0: (95) exit\nR0 !read_ok\n".into(),
            needs: Needs::PROGRAM,
        };
        assert_eq!(
            e.to_string(),
            format!(
                "the kernel rejected program `p`: R0 !read_ok\n  hint: {}",
                explain("R0 !read_ok").unwrap()
            )
        );
    }

    #[test]
    fn empty_log_gives_empty_reason() {
        assert_eq!(parse_log(""), LogFailure::default());
    }
}
