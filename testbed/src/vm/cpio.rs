//! A writer of cpio archives in the "newc" format, the one the kernel
//! unpacks as an initramfs (Documentation/driver-api/early-userspace/
//! buffer-format.rst).
//!
//! Every entry has its own inode number and one link, so the kernel never
//! takes two entries for hard links of each other. Archives may be
//! concatenated: the kernel unpacks one after the other, later entries
//! replacing earlier ones.

use std::io::{self, Read, Write};

/// File type bits of `st_mode`.
pub(crate) const S_IFDIR: u32 = 0o040000;
pub(crate) const S_IFREG: u32 = 0o100000;
pub(crate) const S_IFLNK: u32 = 0o120000;
pub(crate) const S_IFCHR: u32 = 0o020000;

/// The magic of a newc header.
const MAGIC: &[u8; 6] = b"070701";
/// Name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";

/// Writes entries to `out`; [`Cpio::finish`] writes the trailer.
pub(crate) struct Cpio<W: Write> {
    out: W,
    /// Bytes written so far, for the 4-byte alignment.
    offset: u64,
    /// The next inode number.
    ino: u32,
}

/// What a header says besides the name.
struct Header {
    mode: u32,
    size: u64,
    rdev: (u32, u32),
}

impl<W: Write> Cpio<W> {
    /// A writer that starts an archive at the beginning of `out`.
    pub(crate) fn new(out: W) -> Cpio<W> {
        Cpio {
            out,
            offset: 0,
            ino: 1,
        }
    }

    /// A directory `path` (relative, no leading `/`).
    pub(crate) fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.header(path, Header::of(S_IFDIR | perm, 0))
    }

    /// A regular file `path` holding `size` bytes read from `data`.
    pub(crate) fn file(
        &mut self,
        path: &str,
        perm: u32,
        size: u64,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        self.header(path, Header::of(S_IFREG | perm, size))?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: {copied} bytes instead of {size}"),
            ));
        }
        self.offset += size;
        self.pad()
    }

    /// A symbolic link `path` pointing to `target`.
    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let target = target.as_bytes();
        self.header(path, Header::of(S_IFLNK | 0o777, target.len() as u64))?;
        self.write(target)?;
        self.pad()
    }

    /// A character device node `path` with device number `major:minor`.
    pub(crate) fn char_dev(
        &mut self,
        path: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> io::Result<()> {
        let mut h = Header::of(S_IFCHR | perm, 0);
        h.rdev = (major, minor);
        self.header(path, h)
    }

    /// Writes the trailer and returns the output.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.ino = 0;
        self.header(TRAILER, Header::of(0, 0))?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// One header and the name, padded to 4 bytes.
    fn header(&mut self, name: &str, h: Header) -> io::Result<()> {
        let size = u32::try_from(h.size).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: {} bytes do not fit a newc header", h.size),
            )
        })?;
        let ino = self.ino;
        self.ino += 1;
        let fields = [
            ino,
            h.mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime
            size,
            0, // devmajor
            0, // devminor
            h.rdev.0,
            h.rdev.1,
            name.len() as u32 + 1, // with the NUL
            0,                     // check (only for the "070702" format)
        ];
        let mut buf = Vec::with_capacity(110 + name.len() + 4);
        buf.extend_from_slice(MAGIC);
        for f in fields {
            buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
        self.write(&buf)?;
        self.pad()
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Zeros up to the next multiple of 4.
    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - self.offset % 4) % 4;
        self.write(&[0; 3][..n as usize])
    }
}

impl Header {
    fn of(mode: u32, size: u64) -> Header {
        Header {
            mode,
            size,
            rdev: (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `cpio` tool (GNU cpio, if installed) lists what we wrote.
    #[test]
    fn gnu_cpio_reads_the_archive() {
        let mut a = Cpio::new(Vec::new());
        a.dir("etc", 0o755).unwrap();
        let text = b"hello\n";
        a.file("etc/hello", 0o644, text.len() as u64, &mut &text[..])
            .unwrap();
        a.symlink("etc/link", "hello").unwrap();
        a.char_dev("console", 0o600, 5, 1).unwrap();
        let bytes = a.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));
        let Ok(mut child) = std::process::Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        else {
            eprintln!("skipping the cpio cross-check: no `cpio` command");
            return;
        };
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let listing = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 4, "{listing}");
        assert!(lines[0].starts_with("drwxr-xr-x") && lines[0].ends_with(" etc"));
        assert!(lines[1].starts_with("-rw-r--r--") && lines[1].ends_with(" etc/hello"));
        assert!(lines[1].contains(" 6 "), "{}", lines[1]);
        assert!(lines[2].starts_with("lrwxrwxrwx") && lines[2].ends_with("etc/link -> hello"));
        assert!(lines[3].starts_with("crw-------") && lines[3].contains("5,"));
    }
}
