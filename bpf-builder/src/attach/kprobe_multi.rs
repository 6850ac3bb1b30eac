//! One program on many probes through one link: kprobe.multi (kernel
//! functions by name or glob, Linux 5.18+ built with `CONFIG_FPROBE`) and
//! uprobe.multi (offsets of one file, Linux 6.6+).
//!
//! Function names are checked against `available_filter_functions` (the
//! functions ftrace can trace) before the kernel is asked, so an error
//! names the functions that are missing, and a glob is expanded against
//! the same list (as libbpf does).

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::Path;

use super::tracefs::available_filter_functions;
use super::{AttachError, Link, TraceLink};
use crate::handle::Program;
use crate::object::ProgramType;
use crate::privilege::Needs;
use crate::sys::bpf::{self as sys, KprobeMultiAttr, UprobeMultiAttr};
use crate::text::escape;

/// The functions of a kprobe.multi link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Functions<'a> {
    /// These functions.
    Names(&'a [&'a str]),
    /// Every traceable function whose name matches the glob (`*` any
    /// run of characters, `?` one character): `vfs_*`.
    Glob(&'a str),
}

/// Whether `name` matches the glob `pattern` (`*` and `?`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name position it matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The functions to attach to, checked against `available` (the names of
/// `available_filter_functions`, sorted; `None` when it cannot be read:
/// names then go to the kernel unchecked, a glob fails).
pub(crate) fn resolve(
    functions: Functions<'_>,
    available: Option<&[String]>,
) -> Result<Vec<String>, AttachError> {
    match (functions, available) {
        (Functions::Names([]), _) => Err(AttachError::NotFound {
            what: "kprobe.multi: no function given".into(),
        }),
        (Functions::Names(names), None) => Ok(names.iter().map(|n| n.to_string()).collect()),
        (Functions::Names(names), Some(available)) => {
            let missing: Vec<String> = names
                .iter()
                .filter(|n| available.binary_search_by(|a| a.as_str().cmp(n)).is_err())
                .map(|n| format!("`{}`", escape(n)))
                .collect();
            if missing.is_empty() {
                Ok(names.iter().map(|n| n.to_string()).collect())
            } else {
                Err(AttachError::NotFound {
                    what: format!(
                        "no traceable kernel function {} (not in available_filter_functions: \
                         no such function, or one ftrace cannot trace)",
                        missing.join(", ")
                    ),
                })
            }
        }
        (Functions::Glob(glob), None) => Err(AttachError::NotFound {
            what: format!(
                "cannot expand `{}`: available_filter_functions cannot be read",
                escape(glob)
            ),
        }),
        (Functions::Glob(glob), Some(available)) => {
            let matched: Vec<String> = available
                .iter()
                .filter(|n| glob_match(glob, n))
                .cloned()
                .collect();
            if matched.is_empty() {
                Err(AttachError::NotFound {
                    what: format!(
                        "no traceable kernel function matches `{}` (in available_filter_functions)",
                        escape(glob)
                    ),
                })
            } else {
                Ok(matched)
            }
        }
    }
}

/// Refuses a program of another type than `types`, returning whether it
/// is the return-probe type.
fn check_type(prog: &Program, types: [ProgramType; 2], hook: &str) -> Result<bool, AttachError> {
    match prog.prog_type() {
        Some(t) if types.contains(&t) => Ok(t == types[1]),
        other => Err(AttachError::WrongProgram {
            program: prog.name().to_string(),
            reason: format!(
                "{}, and {hook} takes {} or {} programs (loaded with their expected attach type)",
                match other {
                    Some(t) => format!("it is a {} program", t.section_name()),
                    None => "its type is unknown (loaded elsewhere)".into(),
                },
                types[0].section_name(),
                types[1].section_name()
            ),
        }),
    }
}

/// Attaches the [`ProgramType::KprobeMulti`] (or `KretprobeMulti`)
/// program `prog` to `functions` through one link, with one cookie per
/// function (in the order of the names, or of the glob's matches, sorted)
/// or none.
pub fn attach(
    prog: &Program,
    functions: Functions<'_>,
    cookies: &[u64],
) -> Result<TraceLink, AttachError> {
    let retprobe = check_type(
        prog,
        [ProgramType::KprobeMulti, ProgramType::KretprobeMulti],
        "kprobe.multi",
    )?;
    let available = available_filter_functions().ok();
    let names = resolve(functions, available.as_deref())?;
    let cnames: Vec<CString> = names
        .iter()
        .map(|n| {
            CString::new(n.as_str()).map_err(|_| AttachError::NotFound {
                what: format!("no kernel function `{}`", escape(n)),
            })
        })
        .collect::<Result<_, _>>()?;
    let refs: Vec<&std::ffi::CStr> = cnames.iter().map(|c| c.as_c_str()).collect();
    let kind = if retprobe {
        "kretprobe.multi"
    } else {
        "kprobe.multi"
    };
    let what = format!("{kind} on {} functions", names.len());
    let attr = KprobeMultiAttr {
        symbols: &refs,
        cookies,
        retprobe,
    };
    let fd = sys::link_create_kprobe_multi(prog.as_fd(), &attr)
        .map_err(|e| kprobe_multi_error(prog.name(), &what, &names, cookies.len(), e))?;
    let mut link = TraceLink::new(what);
    link.push_link(Link::from_fd(fd), None);
    Ok(link)
}

/// Explains the kernel's refusal of a kprobe.multi link.
fn kprobe_multi_error(
    program: &str,
    what: &str,
    names: &[String],
    cookies: usize,
    e: std::io::Error,
) -> AttachError {
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(sys::ENOTSUPP) => AttachError::KernelTooOld {
            what: what.to_string(),
            needs: "Linux 5.18 built with CONFIG_FPROBE".into(),
            detail: format!("BPF_LINK_CREATE: {e}"),
        },
        Some(libc::ESRCH | libc::ENOENT) => AttachError::NotFound {
            what: format!(
                "{what}: the kernel found no address for some of them ({e}): {}",
                names.join(", ")
            ),
        },
        Some(libc::EINVAL) if cookies != 0 && cookies != names.len() => AttachError::WrongProgram {
            program: program.to_string(),
            reason: format!("{cookies} cookies for {} functions", names.len()),
        },
        _ => AttachError::sys_needs(
            format!("attaching `{program}` as {what}"),
            e,
            Needs::TRACING_PROGRAM,
        ),
    }
}

/// Attaches the [`ProgramType::UprobeMulti`] (or `UretprobeMulti`)
/// program `prog` to the file offsets `offsets` of the ELF file `path`
/// ([`symbol_offset`](super::symbol_offset) finds them) through one link,
/// with one cookie per offset or none, in process `pid` only or in every
/// process that maps the file.
pub fn attach_uprobes(
    prog: &Program,
    path: impl AsRef<Path>,
    offsets: &[u64],
    cookies: &[u64],
    pid: Option<u32>,
) -> Result<TraceLink, AttachError> {
    let path = path.as_ref();
    let retprobe = check_type(
        prog,
        [ProgramType::UprobeMulti, ProgramType::UretprobeMulti],
        "uprobe.multi",
    )?;
    let kind = if retprobe {
        "uretprobe.multi"
    } else {
        "uprobe.multi"
    };
    let what = format!("{kind} on {} offsets of {}", offsets.len(), path.display());
    if offsets.is_empty() {
        return Err(AttachError::NotFound {
            what: format!("{what}: no offset given"),
        });
    }
    let abs = std::fs::canonicalize(path).map_err(|e| AttachError::NotFound {
        what: format!("no file {} for the {kind}: {e}", path.display()),
    })?;
    let cpath =
        CString::new(abs.as_os_str().as_encoded_bytes()).map_err(|_| AttachError::NotFound {
            what: format!("{} has a NUL byte", abs.display()),
        })?;
    let attr = UprobeMultiAttr {
        path: &cpath,
        offsets,
        cookies,
        retprobe,
        pid: pid.unwrap_or(0),
    };
    let fd =
        sys::link_create_uprobe_multi(prog.as_fd(), &attr).map_err(|e| match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(sys::ENOTSUPP) => AttachError::KernelTooOld {
                what: what.clone(),
                needs: "Linux 6.6 built with CONFIG_UPROBES".into(),
                detail: format!("BPF_LINK_CREATE: {e}"),
            },
            Some(libc::ESRCH) => AttachError::NotFound {
                what: format!("{what}: no process {}", pid.unwrap_or(0)),
            },
            Some(libc::EINVAL) => AttachError::NotTraceable {
                target: what.clone(),
                reason: format!(
                    "the kernel refused it ({e}): an offset past the end of the file or not in an \
                 executable mapping, cookies not one per offset, or a kernel before 6.6"
                ),
            },
            _ => AttachError::sys_needs(
                format!("attaching `{}` as {what}", prog.name()),
                e,
                Needs::TRACING_PROGRAM,
            ),
        })?;
    let mut link = TraceLink::new(what);
    link.push_link(Link::from_fd(fd), None);
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kernels answer `BPF_LINK_CREATE` of a kprobe.multi link with:
    /// 6.1 and 6.18 without `CONFIG_FPROBE` (EOPNOTSUPP), a name the kernel
    /// cannot resolve (ESRCH), no privilege (EPERM).
    #[test]
    fn kernel_answers_are_named() {
        let names = ["do_nanosleep".to_string()];
        let err = |errno| {
            kprobe_multi_error(
                "p",
                "kprobe.multi on 1 functions",
                &names,
                0,
                std::io::Error::from_raw_os_error(errno),
            )
        };
        let e = err(libc::EOPNOTSUPP);
        assert!(matches!(e, AttachError::KernelTooOld { .. }), "{e}");
        assert!(e.to_string().contains("CONFIG_FPROBE"), "{e}");
        let e = err(libc::ESRCH);
        assert!(
            matches!(e, AttachError::NotFound { .. }) && e.to_string().contains("do_nanosleep"),
            "{e}"
        );
        assert_eq!(
            err(libc::EPERM).missing_privilege(),
            Some(Needs::TRACING_PROGRAM)
        );
    }

    #[test]
    fn globs_match_as_libbpf_does() {
        assert!(glob_match("vfs_*", "vfs_read"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*read*", "ksys_read_x"));
        assert!(glob_match("v?s_r*d", "vfs_read"));
        assert!(!glob_match("vfs_*", "do_vfs_read"));
        assert!(!glob_match("vfs_rea", "vfs_read"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
    }

    /// A few lines of a 6.1 kernel's available_filter_functions.
    const AVAILABLE: &str =
        "do_nanosleep\nhrtimer_nanosleep\nvfs_read\nvfs_write\nveth_xmit [veth]\n";

    #[test]
    fn names_and_globs_are_checked_against_the_traceable_functions() {
        let available = crate::attach::tracefs::parse_filter_functions(AVAILABLE);
        let got = resolve(Functions::Glob("vfs_*"), Some(&available)).unwrap();
        assert_eq!(got, ["vfs_read", "vfs_write"]);
        let got = resolve(
            Functions::Names(&["vfs_read", "veth_xmit"]),
            Some(&available),
        )
        .unwrap();
        assert_eq!(got, ["vfs_read", "veth_xmit"]);
        let e = resolve(
            Functions::Names(&["vfs_read", "nope", "nada"]),
            Some(&available),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`nope`, `nada`") && !e.contains("vfs_read"),
            "{e}"
        );
        let e = resolve(Functions::Glob("zz*"), Some(&available))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no traceable kernel function matches `zz*`"),
            "{e}"
        );
        // Unreadable list: names go to the kernel, a glob cannot expand.
        assert_eq!(resolve(Functions::Names(&["x"]), None).unwrap(), ["x"]);
        assert!(resolve(Functions::Glob("x*"), None).is_err());
        assert!(resolve(Functions::Names(&[]), Some(&available)).is_err());
    }
}
