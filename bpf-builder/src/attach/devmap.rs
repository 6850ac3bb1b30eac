//! Per-entry programs of devmaps and cpumaps.
//!
//! A devmap (or devmap-hash) entry `{ifindex, program}` sends what an XDP
//! program redirects to it (`bpf_redirect_map`) out of that device, after
//! running the entry's program on it: an egress filter for that device
//! only. A cpumap entry `{queue size, program}` runs its program on the
//! target CPU. Entry programs are loaded as `ProgramType::XdpDevmap` or
//! `ProgramType::XdpCpumap`. Reading an entry back gives the program's
//! kernel id where the fd was written.
//!
//! The ifindex is looked up in the calling thread's network namespace when
//! the entry is written.

use std::os::fd::{AsFd, AsRawFd};

use aya_obj::generated::bpf_map_type;

use super::{AttachError, Interface};
use crate::handle::{Map, MapError, Program, UpdateFlags};
use crate::kernel_id::KernelProgId;
use crate::object::ProgramType;

/// A devmap entry as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevmapEntry {
    /// The target device.
    pub ifindex: u32,
    /// The egress program's id, if the entry has one.
    pub prog_id: Option<KernelProgId>,
}

/// A cpumap entry as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpumapEntry {
    /// Size of the CPU's queue.
    pub qsize: u32,
    /// The program's id, if the entry has one.
    pub prog_id: Option<KernelProgId>,
}

fn check_map(map: &Map, types: &[bpf_map_type], what: &str) -> Result<(), AttachError> {
    let is = types.iter().any(|&t| t as u32 == map.kernel_type());
    if !is || map.value_size() != 8 || map.key_size() != 4 {
        return Err(AttachError::sys(
            format!(
                "map `{}` is not a {what} with 4-byte keys and 8-byte {{u32, program}} values",
                map.name()
            ),
            std::io::Error::from_raw_os_error(libc::EINVAL),
        ));
    }
    Ok(())
}

fn check_prog(prog: &Program, want: ProgramType) -> Result<(), AttachError> {
    match prog.prog_type() {
        None => Ok(()),
        Some(t) if t == want => Ok(()),
        Some(t) => Err(AttachError::WrongProgram {
            program: prog.name().to_string(),
            reason: format!("a map entry program must be loaded as {want:?}, this one is {t:?}"),
        }),
    }
}

fn write(
    map: &Map,
    key: u32,
    first: u32,
    prog: Option<&Program>,
    what: &str,
) -> Result<(), AttachError> {
    // An fd of -1 means "no program".
    let fd = prog.map_or(-1, |p| p.as_fd().as_raw_fd());
    let value = [first.to_ne_bytes(), fd.to_ne_bytes()].concat();
    map.update(&key.to_ne_bytes(), &value, UpdateFlags::Any)
        .map_err(|e| match e {
            MapError::Sys { source, .. } => match (source.raw_os_error(), prog) {
                (Some(libc::EINVAL), Some(p)) => AttachError::WrongProgram {
                    program: p.name().to_string(),
                    reason: format!("the kernel refused it as a {what} entry program ({source})"),
                },
                _ => AttachError::sys(format!("write {what} `{}` entry {key}", map.name()), source),
            },
            // An index past the end, a missing device or CPU: said in the
            // map's words.
            explained => AttachError::Map(explained),
        })
}

/// Names the entry in an error about its interface.
fn in_entry(map: &Map, key: u32, e: AttachError) -> AttachError {
    match e {
        AttachError::UnknownInterface(what) => {
            AttachError::UnknownInterface(format!("devmap `{}` entry {key}: {what}", map.name()))
        }
        other => other,
    }
}

/// Entry `key` as `(ifindex or queue size, program id)`: the kernel
/// writes the program's id where the fd was written, 0 for none.
fn read(map: &Map, key: u32) -> Result<Option<(u32, Option<KernelProgId>)>, AttachError> {
    let v = map
        .lookup(&key.to_ne_bytes())
        .map_err(|e| AttachError::sys(format!("read entry {key}"), std::io::Error::other(e)))?;
    Ok(v.map(|v| {
        let a = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
        let id = u32::from_ne_bytes([v[4], v[5], v[6], v[7]]);
        (a, (id != 0).then_some(KernelProgId::new(id)))
    }))
}

/// Sets devmap (or devmap-hash) entry `key` to `{iface, prog}`.
pub fn set_devmap_entry(
    map: &Map,
    key: u32,
    iface: impl Into<Interface>,
    prog: Option<&Program>,
) -> Result<(), AttachError> {
    use bpf_map_type::*;
    check_map(
        map,
        &[BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_DEVMAP_HASH],
        "devmap",
    )?;
    if let Some(p) = prog {
        check_prog(p, ProgramType::XdpDevmap)?;
    }
    let ifindex = iface.into().resolve().map_err(|e| in_entry(map, key, e))?;
    write(map, key, ifindex, prog, "devmap")
}

/// Devmap entry `key`, with its program's id.
pub fn devmap_entry(map: &Map, key: u32) -> Result<Option<DevmapEntry>, AttachError> {
    use bpf_map_type::*;
    check_map(
        map,
        &[BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_DEVMAP_HASH],
        "devmap",
    )?;
    Ok(read(map, key)?.map(|(ifindex, prog_id)| DevmapEntry { ifindex, prog_id }))
}

/// Sets cpumap entry `cpu` to `{qsize, prog}`.
pub fn set_cpumap_entry(
    map: &Map,
    cpu: u32,
    qsize: u32,
    prog: Option<&Program>,
) -> Result<(), AttachError> {
    check_map(map, &[bpf_map_type::BPF_MAP_TYPE_CPUMAP], "cpumap")?;
    if let Some(p) = prog {
        check_prog(p, ProgramType::XdpCpumap)?;
    }
    write(map, cpu, qsize, prog, "cpumap")
}

/// Cpumap entry `cpu`, with its program's id.
pub fn cpumap_entry(map: &Map, cpu: u32) -> Result<Option<CpumapEntry>, AttachError> {
    check_map(map, &[bpf_map_type::BPF_MAP_TYPE_CPUMAP], "cpumap")?;
    Ok(read(map, cpu)?.map(|(qsize, prog_id)| CpumapEntry { qsize, prog_id }))
}
