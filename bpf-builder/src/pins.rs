//! Pinned state in units: a set of objects (a link, programs, maps)
//! pinned together in one directory of bpffs, which exists whole or not
//! at all.
//!
//! A [`PinRoot`] is a directory of bpffs that holds units, one directory
//! per unit, each with the same member names (given when the root is
//! opened; some may be optional, [`PinRoot::set_optional`]). The root is refused unless only its owner controls it: it
//! must be a real directory (not a symbolic link) on a bpf filesystem,
//! owned by this process's effective user, without group or other write
//! permission, in a parent that others cannot rename it out of.
//! [`PinRoot::create`] makes it mode 0700 whatever the umask, and units
//! and pins are 0700 and 0600.
//!
//! Every change happens under the root's lock ([`PinRoot::lock`], an
//! exclusive `flock(2)` on the root directory, released when the process
//! dies):
//!
//! * **Making a unit** ([`Locked::stage`]): the members are pinned in a
//!   staging directory `@staging-NAME-PID`, which [`Staging::commit`]
//!   renames to `NAME` with `renameat2(RENAME_NOREPLACE)`: the unit
//!   appears whole, and an existing `NAME` is never replaced. A
//!   [`Staging`] dropped before the commit removes its pins.
//! * **Removing a unit** ([`Locked::remove`]): `NAME` is first renamed to
//!   `@removing-NAME-PID`, so the name is gone at once, then its links are
//!   detached (`BPF_LINK_DETACH`: the attachment stops even if another
//!   process holds a link fd) and its pins and directory removed.
//!
//! Since both run under the lock, any staging or removal directory seen
//! by the holder of the lock was left by a process that died (killed
//! mid-way): [`Locked::scan`] reports it as [`HalfMade`], with the units
//! whose directory lacks a member, and [`Locked::discard`] finishes its
//! removal (detaching its link first). Entries that are not units
//! (files, symbolic links, directories of another owner or with other
//! contents) are reported as [`Stray`] and never touched.
//!
//! Names are resolved relative to the root's open directory with the
//! `*at` calls of [`crate::sys::dir`], never following a symbolic link,
//! and nothing is removed unless its directory is on a bpf filesystem.
//! Pins use `BPF_F_PATH_FD` (Linux 6.5+); older kernels fall back to the
//! path of the unit under the root, which only the root's owner can
//! change.
//!
//! ```no_run
//! use bpf_builder::pins::PinRoot;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let map_fd: std::os::fd::OwnedFd = unimplemented!();
//! let mut root = PinRoot::create("/sys/fs/bpf/mytool", &["counts"])?;
//! let locked = root.lock()?;
//! let mut unit = locked.stage("first")?;
//! unit.pin("counts", &map_fd)?;
//! unit.commit()?; // now /sys/fs/bpf/mytool/first/counts
//! # Ok(())
//! # }
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::attach::{AttachError, Link};
use crate::handle::{Map, Program};
use crate::sys::bpf as sys;
use crate::sys::dir::{self, EntryKind};
use crate::text::escape;

/// Prefix of a unit's directory while it is being made.
const STAGING: &str = "@staging-";
/// Prefix of a unit's directory while it is being removed.
const REMOVING: &str = "@removing-";

/// Why a pin root or unit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The root is not a directory that only its owner controls.
    #[error("refusing {path} as a pin directory: {reason}")]
    Refused {
        /// The root.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A unit (or another entry) of that name exists.
    #[error("{name} already exists in {root}")]
    Exists {
        /// The root.
        root: PathBuf,
        /// The name.
        name: String,
    },
    /// No unit of that name.
    #[error("no {name} in {root}")]
    NotFound {
        /// The root.
        root: PathBuf,
        /// The name.
        name: String,
    },
    /// The entry of that name is not a unit; it is left alone.
    #[error("{root}/{name} is not one of ours ({why}); left alone")]
    NotAUnit {
        /// The root.
        root: PathBuf,
        /// The entry.
        name: String,
        /// What it is.
        why: String,
    },
    /// A unit was committed without all its members.
    #[error("unit {name} is missing {}", missing.join(", "))]
    Incomplete {
        /// The unit.
        name: String,
        /// The members it lacks.
        missing: Vec<String>,
    },
    /// A unit or member name that is not one path component, holds a `.`,
    /// starts with `@`, or is not a member of the root.
    #[error("invalid unit or member name {0:?}")]
    BadName(String),
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> PinError {
    let what = what.into();
    move |source| PinError::Io { what, source }
}

/// A test hook: stop the process (`std::process::abort`) right after the
/// Nth step of a kind, as `kill -9` would, to test recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// After the Nth member pinned (counted from 1, over the root's life).
    AfterPin(u32),
    /// After the Nth pin removed.
    AfterUnlink(u32),
}

impl Fault {
    /// Parses `pin:N` or `unlink:N`.
    pub fn parse(s: &str) -> Option<Fault> {
        let (kind, n) = s.split_once(':')?;
        let n = n.parse().ok()?;
        match kind {
            "pin" => Some(Fault::AfterPin(n)),
            "unlink" => Some(Fault::AfterUnlink(n)),
            _ => None,
        }
    }
}

/// A directory of bpffs holding units (see the [module docs](self)).
#[derive(Debug)]
pub struct PinRoot {
    path: PathBuf,
    dir: File,
    members: Vec<String>,
    optional: Vec<String>,
    fault: Option<Fault>,
    pins: AtomicU32,
    unlinks: AtomicU32,
}

/// Checks a unit or member name: one path component without `.` (bpffs
/// refuses those), not starting with `@` (the staging and removal names).
fn check_name(name: &str) -> Result<(), PinError> {
    if name.starts_with('@') || name.contains('.') || dir::component(OsStr::new(name)).is_err() {
        return Err(PinError::BadName(name.to_string()));
    }
    Ok(())
}

impl PinRoot {
    /// Opens the root at `path`, creating it (mode 0700) when it does not
    /// exist, and checks it (see the [module docs](self)). Units hold the
    /// pins named `members`.
    pub fn create(path: impl AsRef<Path>, members: &[&str]) -> Result<PinRoot, PinError> {
        PinRoot::open_inner(path.as_ref(), members, true).map(|r| r.expect("created roots exist"))
    }

    /// Opens and checks an existing root; `None` when there is none.
    pub fn open(path: impl AsRef<Path>, members: &[&str]) -> Result<Option<PinRoot>, PinError> {
        PinRoot::open_inner(path.as_ref(), members, false)
    }

    fn open_inner(
        path: &Path,
        members: &[&str],
        create: bool,
    ) -> Result<Option<PinRoot>, PinError> {
        for m in members {
            check_name(m)?;
        }
        let refuse = |reason: String| PinError::Refused {
            path: path.to_path_buf(),
            reason,
        };
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(refuse("not a path with a parent directory".into()));
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let parent_dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(parent)
            .map_err(io_err(format!("opening {}", parent.display())))?;
        let pm = parent_dir
            .metadata()
            .map_err(io_err(format!("reading {}", parent.display())))?;
        let me = dir::euid();
        // Others must not be able to rename the root away and put theirs
        // in its place: the parent is ours or root's, and either only its
        // owner writes it or it is sticky (as /sys/fs/bpf, mode 1777).
        if pm.uid() != me && pm.uid() != 0 {
            return Err(refuse(format!(
                "its parent {} is owned by uid {}",
                parent.display(),
                pm.uid()
            )));
        }
        if pm.mode() & 0o022 != 0 && pm.mode() & 0o1000 == 0 {
            return Err(refuse(format!(
                "its parent {} is writable by others and not sticky (mode {:04o})",
                parent.display(),
                pm.mode() & 0o7777
            )));
        }
        let mut created = false;
        if create {
            match dir::mkdir_at(parent_dir.as_fd(), name, 0o700) {
                Ok(()) => created = true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(format!("creating {}", path.display()))(e)),
            }
        }
        let fd = match dir::open_dir_at(parent_dir.as_fd(), name) {
            Ok(fd) => fd,
            // O_NOFOLLOW | O_DIRECTORY fails on a symbolic link with
            // ENOTDIR or ELOOP: say which it was.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                let link = dir::stat_at(parent_dir.as_fd(), name)
                    .is_ok_and(|st| st.kind == EntryKind::Symlink);
                return Err(refuse(if link {
                    "it is a symbolic link".into()
                } else {
                    "it is not a directory".into()
                }));
            }
            // Someone else's directory, closed to us: say whose.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                if let Ok(st) = dir::stat_at(parent_dir.as_fd(), name)
                    && st.uid != me
                {
                    return Err(refuse(format!(
                        "it is owned by uid {} (mode {:04o}), not by uid {me} (this user)",
                        st.uid, st.mode
                    )));
                }
                return Err(io_err(format!("opening {}", path.display()))(e));
            }
            Err(e) if !create && e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(format!("opening {}", path.display()))(e)),
        };
        let fs =
            dir::fs_type_fd(fd.as_fd()).map_err(io_err(format!("statfs {}", path.display())))?;
        if fs != sys::BPF_FS_MAGIC {
            return Err(refuse(format!(
                "it is not on a bpf filesystem (type {fs:#x})"
            )));
        }
        let file = File::from(fd);
        if created {
            // The umask does not decide.
            file.set_permissions(Permissions::from_mode(0o700))
                .map_err(io_err(format!("chmod {}", path.display())))?;
        }
        let m = file
            .metadata()
            .map_err(io_err(format!("reading {}", path.display())))?;
        if m.uid() != me {
            return Err(refuse(format!(
                "it is owned by uid {}, not by uid {me} (this user)",
                m.uid()
            )));
        }
        if m.mode() & 0o022 != 0 {
            return Err(refuse(format!(
                "it is writable by group or others (mode {:04o})",
                m.mode() & 0o7777
            )));
        }
        Ok(Some(PinRoot {
            path: path.to_path_buf(),
            dir: file,
            members: members.iter().map(|m| m.to_string()).collect(),
            optional: Vec::new(),
            fault: None,
            pins: AtomicU32::new(0),
            unlinks: AtomicU32::new(0),
        }))
    }

    /// The root's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The member names of its units.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// Makes the members `optional` (of [`members`](PinRoot::members))
    /// optional: a unit without them is whole. What a unit without them
    /// means is the caller's to tell from its other members (a tool whose
    /// units are attached either by a link of their own or through
    /// someone else's, say).
    pub fn set_optional(&mut self, optional: &[&str]) -> Result<(), PinError> {
        for m in optional {
            if !self.members.iter().any(|x| x == m) {
                return Err(PinError::BadName(m.to_string()));
            }
        }
        self.optional = optional.iter().map(|m| m.to_string()).collect();
        Ok(())
    }

    /// The members a whole unit holds for sure: all but the optional ones.
    fn required(&self) -> impl Iterator<Item = &String> {
        self.members.iter().filter(|m| !self.optional.contains(m))
    }

    /// Sets a test hook that stops the process mid-way (see [`Fault`]).
    pub fn set_fault(&mut self, fault: Option<Fault>) {
        self.fault = fault;
    }

    /// Takes the root's lock (exclusive, waiting for other holders).
    pub fn lock(&mut self) -> Result<Locked<'_>, PinError> {
        self.dir
            .lock()
            .map_err(io_err(format!("locking {}", self.path.display())))?;
        Ok(Locked { root: self })
    }

    fn step(&self, counter: &AtomicU32, fault: fn(u32) -> Fault) {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fault == Some(fault(n)) {
            std::process::abort();
        }
    }
}

/// A locked [`PinRoot`]: units are made, read and removed through it.
/// Dropping it releases the lock.
#[derive(Debug)]
pub struct Locked<'r> {
    root: &'r PinRoot,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.root.dir.unlock();
    }
}

/// What [`Locked::scan`] found in the root.
#[derive(Debug, Default)]
pub struct Scan {
    /// Whole units, by name, sorted.
    pub units: Vec<String>,
    /// Units half made or half removed by a process that died.
    pub half_made: Vec<HalfMade>,
    /// Entries that are not units, left alone.
    pub strays: Vec<Stray>,
}

/// A unit left half made or half removed (see [`Locked::discard`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HalfMade {
    /// The unit's name.
    pub name: String,
    /// Its directory in the root.
    pub entry: String,
    /// How it was left.
    pub state: HalfState,
    /// The members it holds.
    pub present: Vec<String>,
}

/// How a [`HalfMade`] unit was left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HalfState {
    /// Being made by process `pid`, which died before the commit.
    Staging {
        /// The process.
        pid: u32,
    },
    /// Being removed by process `pid`, which died before the end.
    Removing {
        /// The process.
        pid: u32,
    },
    /// In place, but without these members.
    Incomplete {
        /// The missing members.
        missing: Vec<String>,
    },
}

/// Names read from the root are anyone's who may write there: printed
/// with control characters escaped ([`escape`]).
impl fmt::Display for HalfMade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let holds = if self.present.is_empty() {
            "nothing".to_string()
        } else {
            self.present.join(", ")
        };
        let (name, entry) = (escape(&self.name), escape(&self.entry));
        match &self.state {
            HalfState::Staging { pid } => write!(
                f,
                "{name} was half made by process {pid}, which stopped before finishing \
                 ({entry} holds {holds})"
            ),
            HalfState::Removing { pid } => write!(
                f,
                "{name} was half removed by process {pid}, which stopped before finishing \
                 ({entry} holds {holds})"
            ),
            HalfState::Incomplete { missing } => write!(
                f,
                "{name} is missing {} (it holds {holds})",
                missing.join(", ")
            ),
        }
    }
}

/// An entry of the root that is not a unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stray {
    /// Its name.
    pub entry: String,
    /// What it is.
    pub why: String,
}

/// The entry's name escaped, as for [`HalfMade`].
impl fmt::Display for Stray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not one of ours ({}); left alone",
            escape(&self.entry),
            escape(&self.why)
        )
    }
}

/// What a directory in the root is.
enum Kind {
    Whole,
    Missing(Vec<String>),
    Foreign(String),
}

impl<'r> Locked<'r> {
    /// The root.
    pub fn root(&self) -> &'r PinRoot {
        self.root
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.root.dir.as_fd()
    }

    fn path_of(&self, entry: &str) -> PathBuf {
        self.root.path.join(entry)
    }

    /// Classifies the directory `entry`: its owner and its pins.
    fn classify(&self, entry: &str) -> Result<(Kind, Vec<String>), PinError> {
        let st = match dir::stat_at(self.fd(), OsStr::new(entry)) {
            Ok(st) => st,
            Err(e) => return Err(io_err(format!("stat {}", self.path_of(entry).display()))(e)),
        };
        let foreign = |why: String| Ok((Kind::Foreign(why), Vec::new()));
        match st.kind {
            EntryKind::Dir => {}
            EntryKind::Symlink => return foreign("a symbolic link".into()),
            EntryKind::File => return foreign("a file".into()),
            EntryKind::Other => return foreign("not a directory".into()),
        }
        if st.uid != dir::euid() {
            return foreign(format!("owned by uid {}", st.uid));
        }
        let fd = match dir::open_dir_at(self.fd(), OsStr::new(entry)) {
            Ok(fd) => fd,
            Err(e) => return foreign(format!("cannot open it: {e}")),
        };
        let names = dir::read_dir_names(fd.as_fd())
            .map_err(io_err(format!("reading {}", self.path_of(entry).display())))?;
        let mut present = Vec::new();
        for n in &names {
            let s = n.to_string_lossy();
            let is_pin = dir::stat_at(fd.as_fd(), n).is_ok_and(|st| st.kind == EntryKind::File);
            if !is_pin || !self.root.members.iter().any(|m| *m == s) {
                return foreign(format!("it holds {s:?}, not a member"));
            }
            present.push(s.into_owned());
        }
        let missing: Vec<String> = self
            .root
            .required()
            .filter(|m| !present.contains(m))
            .cloned()
            .collect();
        present.sort_by_key(|p| self.root.members.iter().position(|m| m == p));
        if missing.is_empty() {
            Ok((Kind::Whole, present))
        } else {
            Ok((Kind::Missing(missing), present))
        }
    }

    /// Lists the root: whole units, half-made ones, strays. Changes
    /// nothing.
    pub fn scan(&self) -> Result<Scan, PinError> {
        let mut names = dir::read_dir_names(self.fd())
            .map_err(io_err(format!("reading {}", self.root.path.display())))?;
        names.sort();
        let mut scan = Scan::default();
        for n in names {
            let Some(entry) = n.to_str().map(str::to_string) else {
                scan.strays.push(Stray {
                    entry: n.to_string_lossy().into_owned(),
                    why: "a name that is not UTF-8".into(),
                });
                continue;
            };
            let half = parse_temp(&entry);
            let (kind, present) = match self.classify(&entry) {
                Ok(k) => k,
                // Gone meanwhile (removed by hand).
                Err(PinError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            match (kind, half) {
                (Kind::Foreign(why), _) => scan.strays.push(Stray { entry, why }),
                (_, Some((name, state))) => scan.half_made.push(HalfMade {
                    name,
                    entry,
                    state,
                    present,
                }),
                _ if check_name(&entry).is_err() => scan.strays.push(Stray {
                    entry,
                    why: "not a unit name".into(),
                }),
                (Kind::Whole, None) => scan.units.push(entry),
                (Kind::Missing(missing), None) => scan.half_made.push(HalfMade {
                    name: entry.clone(),
                    entry,
                    state: HalfState::Incomplete { missing },
                    present,
                }),
            }
        }
        Ok(scan)
    }

    /// Opens the whole unit `name`.
    pub fn unit(&self, name: &str) -> Result<Unit<'_>, PinError> {
        check_name(name)?;
        match self.classify(name) {
            Ok((Kind::Whole, _)) => {}
            Ok((Kind::Missing(missing), _)) => {
                return Err(PinError::Incomplete {
                    name: name.to_string(),
                    missing,
                });
            }
            Ok((Kind::Foreign(why), _)) => {
                return Err(PinError::NotAUnit {
                    root: self.root.path.clone(),
                    name: name.to_string(),
                    why,
                });
            }
            Err(PinError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(self.not_found(name));
            }
            Err(e) => return Err(e),
        }
        let fd = dir::open_dir_at(self.fd(), OsStr::new(name))
            .map_err(io_err(format!("opening {}", self.path_of(name).display())))?;
        Ok(Unit {
            name: name.to_string(),
            path: self.path_of(name),
            dir: File::from(fd),
            _locked: std::marker::PhantomData,
        })
    }

    fn not_found(&self, name: &str) -> PinError {
        PinError::NotFound {
            root: self.root.path.clone(),
            name: name.to_string(),
        }
    }

    /// Whether an entry called `name` exists (unit or not).
    pub fn exists(&self, name: &str) -> Result<bool, PinError> {
        match dir::stat_at(self.fd(), OsStr::new(name)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(format!("stat {}", self.path_of(name).display()))(e)),
        }
    }

    /// Starts the unit `name` in a staging directory: fails with
    /// [`PinError::Exists`] if anything of that name is in the root.
    pub fn stage(&self, name: &str) -> Result<Staging<'_, 'r>, PinError> {
        check_name(name)?;
        if self.exists(name)? {
            return Err(PinError::Exists {
                root: self.root.path.clone(),
                name: name.to_string(),
            });
        }
        let entry = format!("{STAGING}{name}-{}", std::process::id());
        let mkdir = || dir::mkdir_at(self.fd(), OsStr::new(&entry), 0o700);
        match mkdir() {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Left by a dead process that had our pid (we hold the
                // lock, so nobody is working in it).
                self.remove_tree(&entry)?;
                mkdir()
            }
            r => r,
        }
        .map_err(io_err(format!(
            "creating {}",
            self.path_of(&entry).display()
        )))?;
        let fd = dir::open_dir_at(self.fd(), OsStr::new(&entry)).map_err(io_err(format!(
            "opening {}",
            self.path_of(&entry).display()
        )))?;
        let staging = Staging {
            locked: self,
            name: name.to_string(),
            path: self.path_of(&entry),
            entry,
            dir: File::from(fd),
            pinned: Vec::new(),
            committed: false,
        };
        staging
            .dir
            .set_permissions(Permissions::from_mode(0o700))
            .map_err(io_err(format!("chmod {}", staging.path.display())))?;
        Ok(staging)
    }

    /// Removes the unit `name`: renames it out of the way, detaches its
    /// links, removes its pins and its directory. A unit missing members
    /// is removed too; an entry that is not a unit is refused.
    pub fn remove(&self, name: &str) -> Result<(), PinError> {
        check_name(name)?;
        match self.classify(name) {
            Ok((Kind::Whole | Kind::Missing(_), _)) => {}
            Ok((Kind::Foreign(why), _)) => {
                return Err(PinError::NotAUnit {
                    root: self.root.path.clone(),
                    name: name.to_string(),
                    why,
                });
            }
            Err(PinError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(self.not_found(name));
            }
            Err(e) => return Err(e),
        }
        let entry = format!("{REMOVING}{name}-{}", std::process::id());
        if self.exists(&entry)? {
            self.remove_tree(&entry)?;
        }
        dir::rename_noreplace_at(self.fd(), OsStr::new(name), OsStr::new(&entry)).map_err(
            io_err(format!(
                "renaming {} to {entry}",
                self.path_of(name).display()
            )),
        )?;
        self.remove_tree(&entry)
    }

    /// Opens a half-made unit that [`scan`](Locked::scan) reported, to
    /// look at what it holds (whether its link still runs, say) before
    /// [`discard`](Locked::discard) removes it: only the members of
    /// [`HalfMade::present`] open. Refused when the entry is no longer
    /// one of ours.
    pub fn open_half(&self, half: &HalfMade) -> Result<Unit<'_>, PinError> {
        if let (Kind::Foreign(why), _) = self.classify(&half.entry)? {
            return Err(PinError::NotAUnit {
                root: self.root.path.clone(),
                name: half.entry.clone(),
                why,
            });
        }
        let path = self.path_of(&half.entry);
        let fd = dir::open_dir_at(self.fd(), OsStr::new(&half.entry))
            .map_err(io_err(format!("opening {}", path.display())))?;
        Ok(Unit {
            name: half.name.clone(),
            path,
            dir: File::from(fd),
            _locked: std::marker::PhantomData,
        })
    }

    /// Removes a half-made unit that [`scan`](Locked::scan) reported,
    /// detaching its link first.
    pub fn discard(&self, half: &HalfMade) -> Result<(), PinError> {
        match half.state {
            HalfState::Incomplete { .. } => self.remove(&half.entry),
            HalfState::Staging { .. } | HalfState::Removing { .. } => self.remove_tree(&half.entry),
        }
    }

    /// Removes the directory `entry` of the root, which may hold only
    /// member pins: detaches the links among them, unlinks them, removes
    /// the directory. Refuses anything not on bpffs.
    fn remove_tree(&self, entry: &str) -> Result<(), PinError> {
        let path = self.path_of(entry);
        let fd = dir::open_dir_at(self.fd(), OsStr::new(entry))
            .map_err(io_err(format!("opening {}", path.display())))?;
        let fs =
            dir::fs_type_fd(fd.as_fd()).map_err(io_err(format!("statfs {}", path.display())))?;
        if fs != sys::BPF_FS_MAGIC {
            return Err(PinError::NotAUnit {
                root: self.root.path.clone(),
                name: entry.to_string(),
                why: format!("not on a bpf filesystem (type {fs:#x})"),
            });
        }
        let names = dir::read_dir_names(fd.as_fd())
            .map_err(io_err(format!("reading {}", path.display())))?;
        for n in &names {
            let s = n.to_string_lossy();
            let is_pin = dir::stat_at(fd.as_fd(), n).is_ok_and(|st| st.kind == EntryKind::File);
            if !is_pin || !self.root.members.iter().any(|m| *m == s) {
                return Err(PinError::NotAUnit {
                    root: self.root.path.clone(),
                    name: entry.to_string(),
                    why: format!("it holds {s:?}, not a member"),
                });
            }
        }
        // Links first: the attachment stops now, even if another process
        // holds an fd of the link.
        for n in &names {
            let Ok(obj) = get_at(fd.as_fd(), &path, n, 0) else {
                continue;
            };
            if sys::link_info(obj.as_fd()).is_ok() {
                match sys::link_detach(obj.as_fd()) {
                    Ok(()) => {}
                    // Already detached, or a link kind without detach:
                    // removing the pin drops it.
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ENOLINK | libc::ENODEV | libc::EOPNOTSUPP | libc::EINVAL)
                        ) => {}
                    Err(e) => {
                        return Err(io_err(format!(
                            "detaching the link {}",
                            path.join(n).display()
                        ))(e));
                    }
                }
            }
        }
        for n in &names {
            dir::unlink_at(fd.as_fd(), n)
                .map_err(io_err(format!("removing {}", path.join(n).display())))?;
            self.root.step(&self.root.unlinks, Fault::AfterUnlink);
        }
        dir::rmdir_at(self.fd(), OsStr::new(entry))
            .map_err(io_err(format!("removing {}", path.display())))
    }
}

/// `@staging-NAME-PID` / `@removing-NAME-PID`: the unit's name and state.
fn parse_temp(entry: &str) -> Option<(String, HalfState)> {
    let (rest, staging) = if let Some(r) = entry.strip_prefix(STAGING) {
        (r, true)
    } else {
        (entry.strip_prefix(REMOVING)?, false)
    };
    let (name, pid) = rest.rsplit_once('-')?;
    let pid: u32 = pid.parse().ok()?;
    if check_name(name).is_err() {
        return None;
    }
    let state = if staging {
        HalfState::Staging { pid }
    } else {
        HalfState::Removing { pid }
    };
    Some((name.to_string(), state))
}

/// `BPF_OBJ_GET` of `name` in `dir` (path `dir_path`): by the directory fd
/// where the kernel can, else by path.
fn get_at(dir: BorrowedFd<'_>, dir_path: &Path, name: &OsStr, flags: u32) -> io::Result<OwnedFd> {
    match sys::obj_get_at(dir, name, flags) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            sys::obj_get(&dir_path.join(name), flags)
        }
        r => r,
    }
}

/// A unit being made: pin every member, then [`commit`](Staging::commit).
/// Dropped uncommitted, it removes what it pinned.
#[derive(Debug)]
pub struct Staging<'l, 'r> {
    locked: &'l Locked<'r>,
    name: String,
    entry: String,
    path: PathBuf,
    dir: File,
    pinned: Vec<String>,
    committed: bool,
}

impl Staging<'_, '_> {
    /// Pins `obj` (a link, program or map fd) as `member`, mode 0600.
    pub fn pin(&mut self, member: &str, obj: impl AsFd) -> Result<(), PinError> {
        let root = self.locked.root;
        if !root.members.iter().any(|m| m == member) {
            return Err(PinError::BadName(member.to_string()));
        }
        let what = || format!("pinning {}", self.path.join(member).display());
        let name = OsStr::new(member);
        match sys::obj_pin_at(obj.as_fd(), self.dir.as_fd(), name) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                sys::obj_pin(obj.as_fd(), &self.path.join(member))
            }
            r => r,
        }
        .map_err(io_err(what()))?;
        self.pinned.push(member.to_string());
        // Made by us just now in a directory only we write: the mode is
        // ours to set, whatever the umask.
        dir::chmod_at(self.dir.as_fd(), name, 0o600).map_err(io_err(what()))?;
        root.step(&root.pins, Fault::AfterPin);
        Ok(())
    }

    /// Puts the unit in place, whole: fails with [`PinError::Incomplete`]
    /// if a member that is not optional is not pinned, [`PinError::Exists`] if the name was
    /// taken (then the staged pins are removed).
    pub fn commit(mut self) -> Result<(), PinError> {
        let missing: Vec<String> = self
            .locked
            .root
            .required()
            .filter(|m| !self.pinned.contains(m))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(PinError::Incomplete {
                name: self.name.clone(),
                missing,
            });
        }
        let fd = self.locked.fd();
        match dir::rename_noreplace_at(fd, OsStr::new(&self.entry), OsStr::new(&self.name)) {
            Ok(()) => {
                self.committed = true;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(PinError::Exists {
                root: self.locked.root.path.clone(),
                name: self.name.clone(),
            }),
            Err(e) => Err(io_err(format!(
                "renaming {} into place",
                self.path.display()
            ))(e)),
        }
    }
}

impl Drop for Staging<'_, '_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.locked.remove_tree(&self.entry);
        }
    }
}

/// A whole unit, open while the root is locked.
#[derive(Debug)]
pub struct Unit<'l> {
    name: String,
    path: PathBuf,
    dir: File,
    // Read under the lock only.
    _locked: std::marker::PhantomData<&'l ()>,
}

impl Unit<'_> {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the pinned object `member` (`BPF_OBJ_GET`; `flags` as for
    /// [`sys::obj_get`]).
    pub fn get(&self, member: &str, flags: u32) -> io::Result<OwnedFd> {
        check_name(member).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let name = OsStr::new(member);
        // A pin is a regular file; never a link to elsewhere.
        let st = dir::stat_at(self.dir.as_fd(), name)?;
        if st.kind != EntryKind::File {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a pin", self.path.join(member).display()),
            ));
        }
        get_at(self.dir.as_fd(), &self.path, name, flags)
    }

    /// Opens the pinned map `member`.
    pub fn map(&self, member: &str) -> io::Result<Map> {
        Map::from_fd(self.get(member, 0)?)
    }

    /// Opens the pinned program `member`.
    pub fn program(&self, member: &str) -> io::Result<Program> {
        Program::from_fd(self.get(member, 0)?)
    }

    /// Opens the pinned link `member`.
    pub fn link(&self, member: &str) -> Result<Link, AttachError> {
        let path = self.path.join(member);
        let fd = self
            .get(member, 0)
            .map_err(|e| AttachError::sys(format!("open pinned link {}", path.display()), e))?;
        sys::link_info(fd.as_fd())
            .map_err(|e| AttachError::sys(format!("{} is not a pinned link", path.display()), e))?;
        Ok(Link::from_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_parse() {
        assert_eq!(
            parse_temp("@staging-r-12"),
            Some(("r".into(), HalfState::Staging { pid: 12 }))
        );
        assert_eq!(
            parse_temp("@removing-a-b-7"),
            Some(("a-b".into(), HalfState::Removing { pid: 7 }))
        );
        assert_eq!(parse_temp("@staging-r"), None);
        assert_eq!(parse_temp("@staging--1"), None);
        assert_eq!(parse_temp("r"), None);
    }

    #[test]
    fn names_are_single_visible_components() {
        for bad in ["", ".", "..", ".x", "a.b", "@x", "a/b", "a\0b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("link").is_ok());
    }

    #[test]
    fn faults_parse() {
        assert_eq!(Fault::parse("pin:2"), Some(Fault::AfterPin(2)));
        assert_eq!(Fault::parse("unlink:1"), Some(Fault::AfterUnlink(1)));
        assert_eq!(Fault::parse("pin"), None);
        assert_eq!(Fault::parse("x:1"), None);
    }
}
