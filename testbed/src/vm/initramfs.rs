//! What goes into the VM's initramfs: a tree of guest paths, filled from
//! host files (with the shared libraries of executables, found with
//! `ldd`, and the symbolic links on the way to them, so `/lib64/ld-linux…`
//! resolves in the guest as on the host), kernel modules in load order,
//! and generated files; written out as one cpio archive.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use super::cpio::Cpio;
use crate::{Error, Result};

/// Symbolic links followed before giving up (as the kernel's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir,
    /// A host file's contents.
    File {
        source: PathBuf,
        perm: u32,
        size: u64,
    },
    /// Generated contents.
    Data {
        bytes: Vec<u8>,
        perm: u32,
    },
    Symlink(String),
    CharDev(u32, u32),
}

/// Guest paths (relative to `/`, without a leading `/`) and what is there.
/// Sorted, so that every directory comes before what it holds.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Tree {
    /// An empty tree.
    pub(crate) fn new() -> Tree {
        Tree::default()
    }

    /// An empty directory at `guest`.
    pub(crate) fn dir(&mut self, guest: &str) -> Result<()> {
        self.insert(guest, Entry::Dir)
    }

    /// A symbolic link at `guest` to `target`.
    pub(crate) fn symlink(&mut self, guest: &str, target: &str) -> Result<()> {
        self.insert(guest, Entry::Symlink(target.to_string()))
    }

    /// A character device node at `guest`.
    pub(crate) fn char_dev(&mut self, guest: &str, major: u32, minor: u32) -> Result<()> {
        self.insert(guest, Entry::CharDev(major, minor))
    }

    /// A file at `guest` holding `bytes`.
    pub(crate) fn data(&mut self, guest: &str, bytes: Vec<u8>, perm: u32) -> Result<()> {
        self.insert(guest, Entry::Data { bytes, perm })
    }

    /// Whether something is at `guest` (following the tree's links).
    pub(crate) fn contains(&self, guest: &str) -> bool {
        self.resolve(guest, 0)
            .is_ok_and(|key| self.entries.contains_key(&key))
    }

    /// The host file or directory `host` (links followed) at `guest`;
    /// directories with everything in them. An executable or shared
    /// library brings its shared libraries along, at their host paths.
    pub(crate) fn copy(&mut self, host: &Path, guest: &str) -> Result<()> {
        let meta = fs::metadata(host).map_err(|e| io_err(host, e))?;
        if meta.is_dir() {
            self.insert(guest, Entry::Dir)?;
            let mut children: Vec<_> = fs::read_dir(host)
                .map_err(|e| io_err(host, e))?
                .map(|d| d.map(|d| d.file_name()))
                .collect::<io::Result<_>>()
                .map_err(|e| io_err(host, e))?;
            children.sort();
            for name in children {
                let name = name.to_string_lossy();
                self.copy(&host.join(&*name), &format!("{guest}/{name}"))?;
            }
            return Ok(());
        }
        self.insert(
            guest,
            Entry::File {
                source: host.to_path_buf(),
                perm: meta.permissions().mode() & 0o7777,
                size: meta.len(),
            },
        )?;
        for lib in shared_libraries(host)? {
            self.mirror(&lib)?;
        }
        Ok(())
    }

    /// The host path `host` at the same path in the guest, with every
    /// symbolic link on the way to it (and the links' targets), so the
    /// guest resolves it as the host does; then as [`Tree::copy`].
    pub(crate) fn mirror(&mut self, host: &Path) -> Result<()> {
        let mut path = normalize(host)?;
        for _ in 0..MAX_SYMLINKS {
            match first_symlink(&path)? {
                None => return self.copy(&path, &path.to_string_lossy()),
                Some((link, target, rest)) => {
                    self.symlink(&link.to_string_lossy(), &target.to_string_lossy())?;
                    let parent = link.parent().unwrap_or(Path::new("/"));
                    path = normalize(&parent.join(target).join(rest))?;
                }
            }
        }
        Err(Error::Invalid(format!(
            "too many symbolic links resolving {}",
            host.display()
        )))
    }

    /// Kernel modules `names` of kernel `release` (from
    /// `/lib/modules/<release>`) and the modules they depend on, put under
    /// the same path in the guest, decompressed; returns their guest
    /// paths in an order `insmod` accepts (dependencies first). Modules
    /// built into the kernel are left out. No module directory at all
    /// (a kernel without modules) gives an empty list.
    pub(crate) fn modules(&mut self, release: &str, names: &[String]) -> Result<Vec<String>> {
        let dir = Path::new("/lib/modules").join(release);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let read =
            |file: &str| fs::read_to_string(dir.join(file)).map_err(|e| io_err(&dir.join(file), e));
        let deps: BTreeMap<String, Vec<String>> = read("modules.dep")?
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(m, d)| {
                (
                    m.to_string(),
                    d.split_whitespace().map(String::from).collect(),
                )
            })
            .collect();
        let builtin = read("modules.builtin").unwrap_or_default();
        let mut order = Vec::new();
        for name in names {
            if builtin.lines().any(|l| module_name(l) == module_name(name)) {
                continue;
            }
            let path = deps
                .keys()
                .find(|p| module_name(p) == module_name(name))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "kernel {release} has no module {name} (not in {}/modules.dep)",
                        dir.display()
                    ))
                })?;
            visit(path, &deps, &mut order);
        }
        let mut guest_paths = Vec::new();
        for rel in order {
            let host = dir.join(&rel);
            let guest = dir.join(strip_compression(&rel));
            let guest = guest.to_string_lossy().into_owned();
            match decompressor(&rel) {
                None => self.copy(&host, &guest)?,
                Some(tool) => {
                    let bytes = decompress(tool, &host)?;
                    self.data(&guest, bytes, 0o644)?;
                }
            }
            guest_paths.push(guest);
        }
        Ok(guest_paths)
    }

    /// Writes the tree as one cpio archive to `out`.
    pub(crate) fn write<W: Write>(&self, out: W) -> Result<W> {
        let mut cpio = Cpio::new(out);
        for (path, entry) in &self.entries {
            let done = match entry {
                Entry::Dir => cpio.dir(path, 0o755),
                Entry::File { source, perm, size } => {
                    let mut f = File::open(source).map_err(|e| io_err(source, e))?;
                    cpio.file(path, *perm, *size, &mut f)
                }
                Entry::Data { bytes, perm } => {
                    cpio.file(path, *perm, bytes.len() as u64, &mut &bytes[..])
                }
                Entry::Symlink(target) => cpio.symlink(path, target),
                Entry::CharDev(major, minor) => cpio.char_dev(path, 0o600, *major, *minor),
            };
            done.map_err(|e| Error::io(format!("cannot write /{path} to the initramfs"), e))?;
        }
        cpio.finish()
            .map_err(|e| Error::io("cannot finish the initramfs", e))
    }

    /// Puts `entry` at `guest`, creating the directories above it. The
    /// tree's own links are followed on the way (a file put at `/lib/x`
    /// lands in `/usr/lib/x` when `/lib` links there), so no directory
    /// replaces a link. A second, different entry at the same place
    /// replaces the first, except that a directory stays one.
    fn insert(&mut self, guest: &str, entry: Entry) -> Result<()> {
        let key = self.resolve_parent(guest, 0)?;
        if key.is_empty() {
            return Ok(()); // the root
        }
        let mut dir = String::new();
        for part in key.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            if !dir.is_empty() {
                dir.push('/');
            }
            dir.push_str(part);
            match self.entries.get(&dir) {
                None => {
                    self.entries.insert(dir.clone(), Entry::Dir);
                }
                Some(Entry::Dir) => {}
                Some(other) => {
                    return Err(Error::Invalid(format!(
                        "initramfs: /{dir} is {other:?}, not a directory, so /{key} cannot be put there"
                    )));
                }
            }
        }
        match (self.entries.get(&key), &entry) {
            (Some(Entry::Dir), Entry::Dir) => {}
            (Some(Entry::Dir), _) | (Some(_), Entry::Dir) => {
                return Err(Error::Invalid(format!(
                    "initramfs: /{key} would be both a directory and not"
                )));
            }
            _ => {
                self.entries.insert(key, entry);
            }
        }
        Ok(())
    }

    /// The key of `guest` with the tree's links in its directories
    /// followed (the last component itself is not followed).
    fn resolve_parent(&self, guest: &str, depth: usize) -> Result<String> {
        let parts: Vec<&str> = guest.split('/').filter(|p| !p.is_empty()).collect();
        let Some((last, dirs)) = parts.split_last() else {
            return Ok(String::new());
        };
        let mut key = String::new();
        for part in dirs {
            key = self.resolve(&join(&key, part), depth)?;
        }
        Ok(join(&key, last))
    }

    /// The key of `guest` with all of the tree's links followed.
    fn resolve(&self, guest: &str, depth: usize) -> Result<String> {
        if depth > MAX_SYMLINKS {
            return Err(Error::Invalid(format!(
                "initramfs: too many links resolving {guest}"
            )));
        }
        let key = self.resolve_parent(guest, depth)?;
        match self.entries.get(&key) {
            Some(Entry::Symlink(target)) => {
                let base = key.rsplit_once('/').map_or("", |(dir, _)| dir);
                let joined = if target.starts_with('/') {
                    target.clone()
                } else {
                    format!("{base}/{target}")
                };
                let normal = normalize(Path::new("/").join(joined).as_path())?;
                self.resolve(&normal.to_string_lossy(), depth + 1)
            }
            _ => Ok(key),
        }
    }
}

/// `dir/name`, or `name` at the root.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// `path` made absolute and without `.` and `..` (lexically: callers pass
/// paths whose directories are no links).
fn normalize(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir => {}
            Component::Prefix(_) => {
                return Err(Error::Invalid(format!("bad path {}", path.display())));
            }
        }
    }
    Ok(out)
}

/// The first symbolic link among the host path's prefixes: the link, its
/// target, and the rest of the path after it.
fn first_symlink(path: &Path) -> Result<Option<(PathBuf, PathBuf, PathBuf)>> {
    let mut prefix = PathBuf::from("/");
    let parts: Vec<_> = path.components().skip(1).collect();
    for (i, part) in parts.iter().enumerate() {
        prefix.push(part);
        let meta = fs::symlink_metadata(&prefix).map_err(|e| io_err(&prefix, e))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&prefix).map_err(|e| io_err(&prefix, e))?;
            let rest: PathBuf = parts[i + 1..].iter().collect();
            return Ok(Some((prefix, target, rest)));
        }
    }
    Ok(None)
}

/// The shared libraries (and the dynamic loader) a dynamically linked
/// ELF executable or library needs, as `ldd` lists them. Anything else
/// (scripts, static executables, BPF objects) needs none.
fn shared_libraries(path: &Path) -> Result<Vec<PathBuf>> {
    let mut head = [0u8; 18];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| io_err(path, e))?;
    // ET_EXEC (2) or ET_DYN (3), little-endian.
    if n < head.len() || &head[..4] != b"\x7fELF" || !matches!(head[16..18], [2, 0] | [3, 0]) {
        return Ok(Vec::new());
    }
    let out = Command::new("ldd")
        .arg(path)
        .output()
        .map_err(|e| Error::io("cannot run ldd", e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // A static executable: "not a dynamic executable".
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in stdout.lines() {
        if line.contains("not found") {
            return Err(Error::Invalid(format!(
                "{} needs a library that is missing: {}",
                path.display(),
                line.trim()
            )));
        }
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)",
        // "/lib64/ld-linux-x86-64.so.2 (0x…)", "linux-vdso.so.1 (0x…)".
        if let Some(p) = line.split_whitespace().find(|w| w.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

/// A module's name from its path or name: no directory, no `.ko…`,
/// `-` and `_` the same (as modprobe treats them).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// Adds `module` to `order` after everything it depends on.
fn visit(module: &str, deps: &BTreeMap<String, Vec<String>>, order: &mut Vec<String>) {
    if order.iter().any(|m| m == module) {
        return;
    }
    for dep in deps.get(module).into_iter().flatten() {
        visit(dep, deps, order);
    }
    order.push(module.to_string());
}

/// The tool (`xz`, `zstd`, `gzip`) that decompresses a module file, if it
/// is compressed.
fn decompressor(path: &str) -> Option<&'static str> {
    [(".ko.xz", "xz"), (".ko.zst", "zstd"), (".ko.gz", "gzip")]
        .into_iter()
        .find(|(ext, _)| path.ends_with(ext))
        .map(|(_, tool)| tool)
}

/// `x.ko.xz` -> `x.ko`.
fn strip_compression(path: &str) -> &str {
    match path.rfind(".ko") {
        Some(i) => &path[..i + 3],
        None => path,
    }
}

/// `tool -dc path`'s output.
fn decompress(tool: &str, path: &Path) -> Result<Vec<u8>> {
    let out = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .output()
        .map_err(|e| Error::io(format!("cannot run {tool} -dc {}", path.display()), e))?;
    if !out.status.success() {
        return Err(Error::Command {
            command: format!("{tool} -dc {}", path.display()),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

fn io_err(path: &Path, e: io::Error) -> Error {
    Error::io(path.display().to_string(), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_follow_the_links_of_the_tree() {
        let mut t = Tree::new();
        t.symlink("/lib", "usr/lib").unwrap();
        t.symlink("/usr/lib/ld.so", "/lib/x86_64/ld-real.so")
            .unwrap();
        t.data("/lib/x86_64/ld-real.so", vec![1], 0o755).unwrap();
        t.data("/etc/x", vec![2], 0o644).unwrap();
        let keys: Vec<&str> = t.entries.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "etc",
                "etc/x",
                "lib",
                "usr",
                "usr/lib",
                "usr/lib/ld.so",
                "usr/lib/x86_64",
                "usr/lib/x86_64/ld-real.so"
            ]
        );
        assert!(t.contains("/lib/ld.so"));
        assert!(!t.contains("/lib/nothing"));
        // A directory where a file is, and the other way round, are refused.
        assert!(t.dir("/etc/x").is_err());
        assert!(t.data("/usr", vec![], 0o644).is_err());
    }

    #[test]
    fn module_names_and_files() {
        assert_eq!(module_name("kernel/drivers/net/veth.ko"), "veth");
        assert_eq!(
            module_name("kernel/net/sched/sch-ingress.ko.xz"),
            "sch_ingress"
        );
        assert_eq!(strip_compression("kernel/a/b.ko.zst"), "kernel/a/b.ko");
        assert_eq!(decompressor("kernel/a/b.ko.zst"), Some("zstd"));
        assert_eq!(decompressor("kernel/a/b.ko"), None);
        let deps: BTreeMap<String, Vec<String>> = [
            ("a.ko", vec!["b.ko", "c.ko"]),
            ("b.ko", vec!["c.ko"]),
            ("c.ko", vec![]),
        ]
        .into_iter()
        .map(|(m, d)| (m.to_string(), d.into_iter().map(String::from).collect()))
        .collect();
        let mut order = Vec::new();
        visit("a.ko", &deps, &mut order);
        visit("b.ko", &deps, &mut order);
        assert_eq!(order, ["c.ko", "b.ko", "a.ko"]);
    }

    /// The host's `ip` lands with its libraries and the usrmerge links
    /// (`/lib64` -> `usr/lib64` on Debian), so the guest's loader path
    /// resolves.
    #[test]
    fn a_mirrored_executable_brings_its_loader() {
        let Some(ip) = super::super::which("ip") else {
            eprintln!("skipping: no ip command");
            return;
        };
        let mut t = Tree::new();
        t.mirror(&ip).unwrap();
        assert!(t.contains(&ip.to_string_lossy()));
        assert!(t.contains("/lib64/ld-linux-x86-64.so.2"));
        assert!(t.contains("/lib/x86_64-linux-gnu/libc.so.6"));
    }
}
