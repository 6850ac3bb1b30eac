//! Where `include "FILE"` finds its files.
//!
//! A relative path is taken relative to the directory of the file that
//! includes it; an absolute path as it is. (nft itself searches its
//! include directories, `/etc/nftables` by default, for a bare name, and
//! the working directory for `./` and `../`: a ruleset that includes its
//! neighbours by bare name works with both when it is loaded from its own
//! directory.) Wildcards (`include "/etc/nft.d/*.nft"`) are not expanded.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Reads the files a ruleset includes.
pub trait Loader {
    /// The file's identity (two paths to one file give one identity: the
    /// parser's cycle check compares them) and its text.
    fn load(&mut self, path: &Path) -> io::Result<(PathBuf, String)>;
}

/// The largest file [`FsLoader`] reads: sets with many elements make
/// large files, but nothing near this.
pub const MAX_FILE_SIZE: u64 = 64 << 20;

/// Reads files from the file system; identities are canonical paths.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsLoader;

impl Loader for FsLoader {
    fn load(&mut self, path: &Path) -> io::Result<(PathBuf, String)> {
        let canonical = std::fs::canonicalize(path)?;
        let meta = std::fs::metadata(&canonical)?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        if meta.len() > MAX_FILE_SIZE {
            return Err(io::Error::other(format!(
                "larger than {} MiB",
                MAX_FILE_SIZE >> 20
            )));
        }
        let text = std::fs::read_to_string(&canonical)?;
        Ok((canonical, text))
    }
}

/// Files held in memory, for tests and for callers that have the text
/// already; identities are the paths with `.` and `..` folded away.
#[derive(Debug, Clone, Default)]
pub struct MemLoader {
    files: HashMap<PathBuf, String>,
}

impl MemLoader {
    /// No files.
    pub fn new() -> Self {
        MemLoader::default()
    }

    /// Adds a file.
    pub fn with(mut self, path: impl AsRef<Path>, text: impl Into<String>) -> Self {
        self.files.insert(normalize(path.as_ref()), text.into());
        self
    }
}

impl Loader for MemLoader {
    fn load(&mut self, path: &Path) -> io::Result<(PathBuf, String)> {
        let key = normalize(path);
        match self.files.get(&key) {
            Some(text) => Ok((key, text.clone())),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}

/// `path` with `.` components dropped and `..` applied lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Where an include of `target` written in `from` (`None`: a text with no
/// file) points, `.` and `..` folded away (so errors name it plainly).
pub fn resolve(from: Option<&Path>, target: &str) -> PathBuf {
    let target = Path::new(target);
    match from.and_then(Path::parent) {
        Some(dir) if target.is_relative() => normalize(&dir.join(target)),
        _ => normalize(target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_are_relative_to_the_including_file() {
        assert_eq!(
            resolve(Some(Path::new("/etc/fw/main.nft")), "sets.nft"),
            Path::new("/etc/fw/sets.nft")
        );
        assert_eq!(
            resolve(Some(Path::new("/etc/fw/main.nft")), "/abs.nft"),
            Path::new("/abs.nft")
        );
        assert_eq!(resolve(None, "x.nft"), Path::new("x.nft"));
        assert_eq!(
            resolve(Some(Path::new("fw/main.nft")), "./sub/../x.nft"),
            Path::new("fw/x.nft")
        );
    }

    #[test]
    fn memory_files_fold_dots() {
        let mut l = MemLoader::new().with("a/b.nft", "x");
        let (id, text) = l.load(Path::new("a/c/../b.nft")).unwrap();
        assert_eq!((id.as_path(), text.as_str()), (Path::new("a/b.nft"), "x"));
        assert_eq!(
            l.load(Path::new("nope")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
