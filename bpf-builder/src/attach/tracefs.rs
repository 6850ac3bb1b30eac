//! tracefs: tracepoint ids and formats, and the probe events that
//! kprobes and uprobes fall back on where the kernel has no kprobe or
//! uprobe PMU (`kprobe_events`, `uprobe_events`).
//!
//! A classic tracepoint program reads the event's record, whose layout
//! the format file gives: [`TracepointFormat`] parses it into fields with
//! their offsets, as [`KernelBtf::member`](crate::btf::KernelBtf::member)
//! gives a struct member's.
//!
//! ```no_run
//! use bpf_builder::attach::tracefs::TracepointFormat;
//!
//! let format = TracepointFormat::read("syscalls", "sys_enter_openat")?;
//! let filename = format.field("filename")?;
//! println!("id {}, filename at byte {}", format.id, filename.offset);
//! # Ok::<(), bpf_builder::attach::AttachError>(())
//! ```

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::AttachError;
use crate::privilege::Needs;
use crate::sys::perf::ensure_tracefs;
use crate::text::escape;

/// Where tracefs is (mounted there when it is not yet).
const TRACEFS: &str = "/sys/kernel/tracing";
/// Where older systems have it.
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// The tracefs directory, mounting tracefs at `/sys/kernel/tracing` when
/// nothing is mounted there (which needs `CAP_SYS_ADMIN`).
pub fn root() -> Result<PathBuf, AttachError> {
    let path = Path::new(TRACEFS);
    if path.join("events").is_dir() {
        return Ok(path.to_path_buf());
    }
    match ensure_tracefs(path) {
        Ok(()) => Ok(path.to_path_buf()),
        Err(_) if Path::new(DEBUGFS_TRACING).join("events").is_dir() => {
            Ok(PathBuf::from(DEBUGFS_TRACING))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(AttachError::KernelTooOld {
            what: "tracepoints and probe events".into(),
            needs: "tracefs (CONFIG_TRACING)".into(),
            detail: format!("{TRACEFS} does not exist"),
        }),
        Err(e) => Err(AttachError::sys_needs(
            format!("mounting tracefs on {TRACEFS}"),
            e,
            Needs::TRACEFS,
        )),
    }
}

/// Checks a tracepoint category or event name: what tracefs accepts as a
/// directory name of `events/` (no `/`, no `..`).
fn check_name(what: &str, name: &str) -> Result<(), AttachError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        || name.starts_with('.')
    {
        return Err(AttachError::NotFound {
            what: format!(
                "no tracepoint {what} `{}`: names are made of [A-Za-z0-9_.-]",
                escape(name)
            ),
        });
    }
    Ok(())
}

/// The directory of tracepoint `category:name`, checked to exist.
fn event_dir(category: &str, name: &str) -> Result<PathBuf, AttachError> {
    check_name("category", category)?;
    check_name("name", name)?;
    let root = root()?;
    let dir = root.join("events").join(category).join(name);
    if !dir.is_dir() {
        let what = if root.join("events").join(category).is_dir() {
            format!(
                "no tracepoint `{category}:{name}`: category `{category}` has no event `{name}`"
            )
        } else {
            format!("no tracepoint `{category}:{name}`: there is no category `{category}`")
        };
        return Err(AttachError::NotFound {
            what: format!("{what} (in {})", root.join("events").display()),
        });
    }
    Ok(dir)
}

/// Reads a tracefs file of tracepoint `category:name`.
fn read_event_file(category: &str, name: &str, file: &str) -> Result<String, AttachError> {
    let path = event_dir(category, name)?.join(file);
    std::fs::read_to_string(&path).map_err(|e| {
        AttachError::sys_needs(format!("reading {}", path.display()), e, Needs::TRACEFS)
    })
}

/// The id of tracepoint `category:name` (what a perf event of type
/// `PERF_TYPE_TRACEPOINT` takes as its config).
pub fn tracepoint_id(category: &str, name: &str) -> Result<u32, AttachError> {
    let text = read_event_file(category, name, "id")?;
    text.trim().parse().map_err(|_| AttachError::Sys {
        op: format!("reading the id of tracepoint {category}:{name}"),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a number: {:?}", text.trim()),
        ),
    })
}

/// One field of a tracepoint's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracepointField {
    /// Its name (`common_pid`, `filename`).
    pub name: String,
    /// Its C type as the format file gives it (`const char *`, `int`,
    /// `__data_loc char[]`).
    pub c_type: String,
    /// Bytes from the start of the record (the program's context).
    pub offset: u32,
    /// Its size in bytes.
    pub size: u32,
    /// Whether it is signed.
    pub signed: bool,
    /// For an array (`char comm[16]`): its length.
    pub array_len: Option<u32>,
}

impl TracepointField {
    /// Bytes from the start of the record, as [`Asm::ldx`](crate::asm::Asm::ldx)
    /// takes it.
    pub fn byte_offset(&self) -> u32 {
        self.offset
    }

    /// Whether it is one of the fields every event starts with
    /// (`common_type`, `common_pid`...). Programs cannot read them: the
    /// kernel refuses context loads below offset 8 (take the pid from
    /// `bpf_get_current_pid_tgid`).
    pub fn is_common(&self) -> bool {
        self.name.starts_with("common_")
    }
}

/// A tracepoint's format: its id and the fields of its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracepointFormat {
    /// The category (`syscalls`).
    pub category: String,
    /// The event (`sys_enter_openat`).
    pub name: String,
    /// Its id.
    pub id: u32,
    /// The fields, common ones first, in the file's order.
    pub fields: Vec<TracepointField>,
}

/// A format file that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tracepoint format of {event}, line {line}: {reason}")]
pub struct FormatError {
    /// `category:name`.
    pub event: String,
    /// The line (from 1).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl TracepointFormat {
    /// Reads and parses the format of tracepoint `category:name` from
    /// tracefs.
    pub fn read(category: &str, name: &str) -> Result<TracepointFormat, AttachError> {
        let text = read_event_file(category, name, "format")?;
        TracepointFormat::parse(category, name, &text).map_err(|e| AttachError::Sys {
            op: format!("reading the format of tracepoint {category}:{name}"),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
    }

    /// Parses the text of a format file (`events/<category>/<name>/format`).
    pub fn parse(category: &str, name: &str, text: &str) -> Result<TracepointFormat, FormatError> {
        let event = format!("{category}:{name}");
        let err = |line: usize, reason: String| FormatError {
            event: event.clone(),
            line: line + 1,
            reason,
        };
        let mut id = None;
        let mut fields = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("ID:") {
                id = Some(
                    v.trim()
                        .parse()
                        .map_err(|_| err(n, format!("bad id {:?}", v.trim())))?,
                );
            } else if line.starts_with("field:") {
                fields.push(parse_field(line).map_err(|r| err(n, r))?);
            }
        }
        Ok(TracepointFormat {
            category: category.to_string(),
            name: name.to_string(),
            id: id.ok_or_else(|| err(0, "no `ID:` line".into()))?,
            fields,
        })
    }

    /// The field `name`.
    pub fn field(&self, name: &str) -> Result<&TracepointField, AttachError> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| AttachError::NotFound {
                what: format!(
                    "tracepoint {}:{} has no field `{}` (it has {})",
                    self.category,
                    self.name,
                    escape(name),
                    self.fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }
}

/// `field:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;`
fn parse_field(line: &str) -> Result<TracepointField, String> {
    let mut decl = None;
    let (mut offset, mut size, mut signed) = (None, None, None);
    for part in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once(':')
            .ok_or_else(|| format!("`{part}` is not `key:value`"))?;
        let number = || {
            value
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("{key} is not a number: {value:?}"))
        };
        match key.trim() {
            "field" => decl = Some(value.trim()),
            "offset" => offset = Some(number()?),
            "size" => size = Some(number()?),
            "signed" => signed = Some(number()? != 0),
            _ => {}
        }
    }
    let decl = decl.ok_or("no field declaration")?;
    // The name is the last word, with an array length after it.
    let (c_type, last) = decl
        .rsplit_once(' ')
        .ok_or_else(|| format!("`{decl}` has no type"))?;
    let (name, array_len) = match last.split_once('[') {
        Some((n, rest)) => {
            let len = rest.trim_end_matches(']');
            (n, len.parse().ok())
        }
        None => (last, None),
    };
    let name = name.trim_start_matches('*');
    if name.is_empty() {
        return Err(format!("`{decl}` has no name"));
    }
    // A pointer's star stays with the type.
    let stars = last.len() - last.trim_start_matches('*').len();
    let c_type = format!("{}{}", c_type.trim(), &"*".repeat(stars));
    Ok(TracepointField {
        name: name.to_string(),
        c_type,
        offset: offset.ok_or("no offset")?,
        size: size.ok_or("no size")?,
        signed: signed.unwrap_or(false),
        array_len,
    })
}

/// Which probe events file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    Kprobe,
    Uprobe,
}

impl ProbeKind {
    fn file(self) -> &'static str {
        match self {
            ProbeKind::Kprobe => "kprobe_events",
            ProbeKind::Uprobe => "uprobe_events",
        }
    }
}

/// The group of this crate's probe events.
pub(crate) const PROBE_GROUP: &str = "bpf_builder";

/// How long removing a probe event waits for the perf events that use it
/// to go.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Tells apart the probe events of one process.
static NEXT_EVENT: AtomicU32 = AtomicU32::new(0);

/// A kprobe or uprobe event made in tracefs, removed when dropped (once
/// the perf events that use it are closed, or the kernel refuses with
/// `EBUSY`).
#[derive(Debug)]
pub(crate) struct ProbeEvent {
    file: PathBuf,
    event: String,
    removed: bool,
}

impl ProbeEvent {
    /// Writes `p:group/event SPEC` (`r:` for a return probe) to the
    /// probe events file.
    pub(crate) fn create(
        kind: ProbeKind,
        retprobe: bool,
        spec: &str,
    ) -> Result<ProbeEvent, AttachError> {
        let root = root()?;
        let file = root.join(kind.file());
        if !file.exists() {
            return Err(AttachError::KernelTooOld {
                what: format!("{} through tracefs", kind.file()),
                needs: match kind {
                    ProbeKind::Kprobe => "CONFIG_KPROBE_EVENTS".into(),
                    ProbeKind::Uprobe => "CONFIG_UPROBE_EVENTS".into(),
                },
                detail: format!("{} does not exist", file.display()),
            });
        }
        let event = format!(
            "{}_{}_{}",
            if retprobe { "r" } else { "p" },
            std::process::id(),
            NEXT_EVENT.fetch_add(1, Ordering::Relaxed)
        );
        let line = format!(
            "{}:{PROBE_GROUP}/{event} {spec}\n",
            if retprobe { "r" } else { "p" }
        );
        write_line(&file, &line).map_err(|e| probe_error(kind, spec, e))?;
        Ok(ProbeEvent {
            file,
            event,
            removed: false,
        })
    }

    /// The event's tracepoint id.
    pub(crate) fn id(&self) -> Result<u32, AttachError> {
        tracepoint_id(PROBE_GROUP, &self.event)
    }

    /// The event's name in its group.
    pub(crate) fn name(&self) -> &str {
        &self.event
    }

    /// Removes the event (`-:group/event`), waiting a little while the
    /// kernel says it is busy: a child another thread is forking holds a
    /// copy of the perf event's fd until it execs.
    fn remove_now(&self) -> io::Result<()> {
        let line = format!("-:{PROBE_GROUP}/{}\n", self.event);
        let started = std::time::Instant::now();
        loop {
            match write_line(&self.file, &line) {
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY)
                        && started.elapsed() < RELEASE_WAIT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    /// Removes the event (`-:group/event`).
    pub(crate) fn remove(mut self) -> Result<(), AttachError> {
        self.removed = true;
        self.remove_now().map_err(|e| {
            AttachError::sys_needs(
                format!(
                    "removing probe event {PROBE_GROUP}/{} from {}",
                    self.event,
                    self.file.display()
                ),
                e,
                Needs::TRACEFS,
            )
        })
    }
}

impl Drop for ProbeEvent {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.remove_now();
        }
    }
}

/// Appends one line to a tracefs control file in one write.
fn write_line(file: &Path, line: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().append(true).open(file)?;
    f.write_all(line.as_bytes())
}

/// Explains a refused probe event.
fn probe_error(kind: ProbeKind, spec: &str, e: io::Error) -> AttachError {
    match (kind, e.raw_os_error()) {
        (ProbeKind::Kprobe, Some(libc::ENOENT)) => AttachError::NotFound {
            what: format!("no kernel function for the kprobe `{}`", escape(spec)),
        },
        (ProbeKind::Uprobe, Some(libc::ENOENT)) => AttachError::NotFound {
            what: format!("no such file for the uprobe `{}`", escape(spec)),
        },
        (_, Some(libc::EINVAL)) => AttachError::NotTraceable {
            target: escape(spec).into_owned(),
            reason: format!("the kernel refused the probe event ({e})"),
        },
        _ => AttachError::sys_needs(
            format!(
                "adding the probe event `{}` to {}",
                escape(spec),
                kind.file()
            ),
            e,
            Needs::TRACEFS,
        ),
    }
}

/// The kernel functions that can be traced, from
/// `available_filter_functions` (`name` or `name [module]` per line).
pub fn available_filter_functions() -> Result<Vec<String>, AttachError> {
    let path = root()?.join("available_filter_functions");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        AttachError::sys_needs(format!("reading {}", path.display()), e, Needs::TRACEFS)
    })?;
    Ok(parse_filter_functions(&text))
}

/// The names of `available_filter_functions`' text, each once.
pub(crate) fn parse_filter_functions(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `events/syscalls/sys_enter_openat/format` of Linux 6.1.
    const OPENAT: &str = "name: sys_enter_openat
ID: 633
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;

print fmt: \"dfd: 0x%08lx, filename: 0x%08lx\", ((unsigned long)(REC->dfd)), ((unsigned long)(REC->filename))
";

    #[test]
    fn a_format_file_parses_into_fields_with_offsets() {
        let f = TracepointFormat::parse("syscalls", "sys_enter_openat", OPENAT).unwrap();
        assert_eq!(f.id, 633);
        assert_eq!(f.fields.len(), 9);
        let pid = &f.fields[3];
        assert_eq!(
            (pid.name.as_str(), pid.offset, pid.size, pid.signed),
            ("common_pid", 4, 4, true)
        );
        assert!(pid.is_common());
        let name = f.field("filename").unwrap();
        assert_eq!(name.c_type, "const char *");
        assert_eq!((name.byte_offset(), name.size), (24, 8));
        let e = f.field("nope").unwrap_err().to_string();
        assert!(
            e.contains("no field `nope`") && e.contains("filename"),
            "{e}"
        );
    }

    #[test]
    fn arrays_pointers_and_data_loc_fields() {
        let text = "ID: 7\n\
            \tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
            \tfield:__data_loc char[] name;\toffset:24;\tsize:4;\tsigned:0;\n\
            \tfield:void *skbaddr;\toffset:32;\tsize:8;\tsigned:0;\n";
        let f = TracepointFormat::parse("x", "y", text).unwrap();
        assert_eq!(f.fields[0].array_len, Some(16));
        assert_eq!(f.fields[0].name, "comm");
        assert_eq!(f.fields[1].c_type, "__data_loc char[]");
        assert_eq!(f.fields[1].name, "name");
        assert_eq!(f.fields[2].name, "skbaddr");
        assert_eq!(f.fields[2].c_type, "void*");
    }

    #[test]
    fn bad_format_files_say_where() {
        let e = TracepointFormat::parse("a", "b", "format:\n").unwrap_err();
        assert!(e.reason.contains("no `ID:`"), "{e}");
        let e = TracepointFormat::parse("a", "b", "ID: 1\n\tfield:int x;\toffset:z;\tsize:4;\n")
            .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("offset is not a number"), "{e}");
        // Garbage never panics.
        for text in [
            "field:",
            "field:;",
            "ID: x",
            "field:int;offset:1;size:1",
            "\u{0}field:a b",
        ] {
            let _ = TracepointFormat::parse("a", "b", text);
        }
    }

    #[test]
    fn filter_functions_keep_one_name_each() {
        let text = "do_nanosleep\nvfs_read\nveth_xmit [veth]\nvfs_read\n";
        assert_eq!(
            parse_filter_functions(text),
            ["do_nanosleep", "veth_xmit", "vfs_read"]
        );
    }

    #[test]
    fn tracepoint_names_with_slashes_are_refused() {
        for (c, n) in [("..", "x"), ("a/b", "c"), ("a", ""), ("a", "../../x")] {
            assert!(
                matches!(event_dir(c, n), Err(AttachError::NotFound { .. })),
                "{c}:{n}"
            );
        }
    }
}
