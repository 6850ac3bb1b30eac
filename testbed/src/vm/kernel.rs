//! The kernel a VM boots: finding the image, reading its release, and
//! unpacking it for a fast boot.
//!
//! A bzImage decompresses itself; under qemu's emulation that takes about
//! three seconds for Debian's xz-compressed kernel, longer than the rest
//! of the boot. qemu boots an uncompressed `vmlinux` directly when it
//! carries a PVH entry point (`CONFIG_PVH`, as Debian's kernels do), so
//! [`unpacked`] decompresses the image once into a cache and the VM
//! boots that, falling back to the bzImage where that does not work.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The kernel image to boot: `$TESTBED_VM_KERNEL`, or the newest
/// `/boot/vmlinuz-*` other than the running kernel's.
pub(crate) fn find() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(super::KERNEL_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{}={} is no file",
                super::KERNEL_ENV,
                path.display()
            ))
        };
    }
    let running = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let running = running.trim();
    let mut found: Vec<(Vec<u64>, PathBuf)> = fs::read_dir("/boot")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| {
            let name = d.file_name().into_string().ok()?;
            let release = name.strip_prefix("vmlinuz-")?.to_string();
            (release != running).then(|| (version_key(&release), d.path()))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, path)| path).ok_or_else(|| {
        format!(
            "no kernel image in /boot other than the running kernel's ({running}); \
             install linux-image-amd64 or set {}",
            super::KERNEL_ENV
        )
    })
}

/// The numbers in a release, to order releases: `6.1.0-57-amd64` ->
/// `[6, 1, 0, 57]`.
fn version_key(release: &str) -> Vec<u64> {
    release
        .split(['.', '-', '+', '_'])
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The parts of an x86 boot image's setup header we read
/// (Documentation/arch/x86/boot.rst).
struct SetupHeader<'a> {
    image: &'a [u8],
}

impl<'a> SetupHeader<'a> {
    fn new(image: &'a [u8]) -> io::Result<SetupHeader<'a>> {
        if image.len() < 0x250 || &image[0x202..0x206] != b"HdrS" {
            return Err(invalid("not a bzImage (no \"HdrS\" setup header)"));
        }
        Ok(SetupHeader { image })
    }

    fn u16_at(&self, at: usize) -> usize {
        u16::from_le_bytes([self.image[at], self.image[at + 1]]) as usize
    }

    fn u32_at(&self, at: usize) -> usize {
        u32::from_le_bytes(self.image[at..at + 4].try_into().unwrap()) as usize
    }

    /// The release: the first word of the string `kernel_version`
    /// (0x20e) points at, less 0x200.
    fn release(&self) -> io::Result<String> {
        let text = self
            .image
            .get(self.u16_at(0x20e) + 0x200..)
            .ok_or_else(|| invalid("kernel_version points past the end"))?;
        let end = text
            .iter()
            .position(|&b| b == 0 || b == b' ')
            .ok_or_else(|| invalid("no version string"))?;
        String::from_utf8(text[..end].to_vec()).map_err(|_| invalid("version is not UTF-8"))
    }

    /// The compressed kernel: `payload_offset` (0x248) and
    /// `payload_length` (0x24c), from the protected-mode code after the
    /// `setup_sects` (0x1f1; 0 means 4) sectors of real-mode code and the
    /// boot sector.
    fn payload(&self) -> io::Result<&'a [u8]> {
        let sects = match self.image[0x1f1] {
            0 => 4,
            n => n as usize,
        };
        let start = (sects + 1) * 512 + self.u32_at(0x248);
        self.image
            .get(start..start + self.u32_at(0x24c))
            .ok_or_else(|| invalid("the payload lies past the end"))
    }
}

/// The release (`uname -r`) of the kernel in an x86 boot image.
pub(crate) fn release(image: &Path) -> io::Result<String> {
    SetupHeader::new(&fs::read(image)?)?.release()
}

/// The uncompressed kernel of `image`, if it can be unpacked and qemu can
/// boot it (PVH): from the cache directory `cache`, made on first use.
/// `None` (the caller boots the bzImage) says why on stderr.
pub(crate) fn unpacked(image: &Path, cache: &Path) -> Option<PathBuf> {
    let meta = fs::metadata(image).ok()?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let name = image.file_name()?.to_string_lossy();
    let cached = cache.join(format!("{name}-{}-{mtime}.vmlinux", meta.len()));
    if cached.is_file() {
        return Some(cached);
    }
    match unpack(image) {
        Ok(vmlinux) => {
            // Written aside (under a name no other thread or process
            // uses) and renamed: parallel tests never see half a file.
            static WRITERS: AtomicU32 = AtomicU32::new(0);
            let tmp = cache.join(format!(
                ".{name}.{}-{}.tmp",
                std::process::id(),
                WRITERS.fetch_add(1, Ordering::Relaxed)
            ));
            let written = fs::create_dir_all(cache)
                .and_then(|()| fs::write(&tmp, vmlinux))
                .and_then(|()| fs::rename(&tmp, &cached));
            match written {
                Ok(()) => Some(cached),
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    eprintln!(
                        "testbed::vm: cannot cache the unpacked kernel in {}: {e}",
                        cache.display()
                    );
                    None
                }
            }
        }
        Err(e) => {
            eprintln!(
                "testbed::vm: booting {} as it is (slower): {e}",
                image.display()
            );
            None
        }
    }
}

/// The ELF kernel inside a bzImage, checked for a PVH entry point.
fn unpack(image: &Path) -> io::Result<Vec<u8>> {
    let bytes = fs::read(image)?;
    let payload = SetupHeader::new(&bytes)?.payload()?;
    // Magic numbers of the formats `make bzImage` compresses with, and
    // the tool that reads each. The payload ends with the kernel's own
    // 4-byte size, which some tools call trailing garbage: their exit
    // status is not trusted, the result is checked instead.
    let tools: &[(&[u8], &str, &[&str])] = &[
        (b"\xfd7zXZ\x00", "xz", &["-dc", "--single-stream"]),
        (b"\x1f\x8b", "gzip", &["-dc"]),
        (b"\x28\xb5\x2f\xfd", "zstd", &["-dc"]),
        (b"\x02\x21\x4c\x18", "lz4", &["-dc"]),
        (b"BZh", "bzip2", &["-dc"]),
        (b"\x5d\x00\x00", "xz", &["-dc", "--format=lzma"]),
    ];
    let (_, tool, args) = tools
        .iter()
        .find(|(magic, _, _)| payload.starts_with(magic))
        .ok_or_else(|| invalid("the kernel's compression is not one we know"))?;
    let vmlinux = filter(tool, args, payload)?;
    if !vmlinux.starts_with(b"\x7fELF") {
        return Err(invalid(&format!("`{tool} -dc` did not give an ELF kernel")));
    }
    if !has_pvh_note(&vmlinux) {
        return Err(invalid("the kernel has no PVH entry point (CONFIG_PVH)"));
    }
    Ok(vmlinux)
}

/// `tool args...` with `input` on stdin; its stdout.
fn filter(tool: &str, args: &[&str], input: &[u8]) -> io::Result<Vec<u8>> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {tool}: {e}")))?;
    let mut stdin = child.stdin.take().unwrap();
    std::thread::scope(|s| {
        // Fed from another thread: the tool's output would fill the pipe
        // while we still write.
        s.spawn(move || {
            use io::Write;
            let _ = stdin.write_all(input);
        });
        Ok(child.wait_with_output()?.stdout)
    })
}

/// Whether a 64-bit little-endian ELF file has the note Xen's and qemu's
/// PVH boot look for: owner "Xen", type `XEN_ELFNOTE_PHYS32_ENTRY` (18).
fn has_pvh_note(elf: &[u8]) -> bool {
    const PT_NOTE: u32 = 4;
    const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
    };
    // ELFCLASS64, ELFDATA2LSB.
    if elf.get(4..6) != Some(&[2, 1]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).any(|i| {
        let ph = phoff + i * phentsize;
        if u32_at(ph) != Some(PT_NOTE) {
            return false;
        }
        let (Some(offset), Some(size)) = (u64_at(ph + 8), u64_at(ph + 32)) else {
            return false;
        };
        let mut at = offset;
        let end = offset.saturating_add(size).min(elf.len());
        while at + 12 <= end {
            let (Some(namesz), Some(descsz), Some(kind)) =
                (u32_at(at), u32_at(at + 4), u32_at(at + 8))
            else {
                return false;
            };
            let name = elf.get(at + 12..at + 12 + namesz as usize);
            if name == Some(b"Xen\0") && kind == XEN_ELFNOTE_PHYS32_ENTRY {
                return true;
            }
            at +=
                12 + (namesz as usize).next_multiple_of(4) + (descsz as usize).next_multiple_of(4);
        }
        false
    })
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_order_by_their_numbers() {
        assert!(version_key("6.10.0-1-amd64") > version_key("6.9.12-3-amd64"));
        assert_eq!(version_key("6.1.0-57-amd64"), [6, 1, 0, 57]);
    }

    /// Against the image the VM tests would boot, if there is one.
    #[test]
    fn the_image_gives_its_release_and_a_pvh_kernel() {
        let Ok(image) = find() else {
            eprintln!("skipping: no VM kernel image");
            return;
        };
        let release = release(&image).unwrap();
        let name = image.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(from_name) = name.strip_prefix("vmlinuz-") {
            assert_eq!(release, from_name);
        }
        match unpack(&image) {
            Ok(vmlinux) => assert!(has_pvh_note(&vmlinux)),
            Err(e) => eprintln!("{} cannot be unpacked: {e}", image.display()),
        }
    }
}
