//! Object information (`BPF_OBJ_GET_INFO_BY_FD`) and object ids
//! (`BPF_*_GET_NEXT_ID`, `BPF_*_GET_FD_BY_ID`).

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use aya_obj::generated::{
    bpf_attr, bpf_btf_info, bpf_cmd, bpf_link_info, bpf_link_type, bpf_map_info, bpf_prog_info,
};

use crate::kernel_id::{KernelLinkId, KernelMapId, KernelProgId};

use super::{Zeroable, fd_u32, name_from_c, ptr_u64, sys_bpf, sys_bpf_fd, zeroed};

/// What the kernel reports about a loaded program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgInfo {
    /// Kernel-wide program id.
    pub id: KernelProgId,
    /// Name given at load time (at most 15 bytes).
    pub name: String,
    /// `bpf_prog_type` value.
    pub prog_type: u32,
    /// SHA-1 based tag of the translated instructions.
    pub tag: [u8; 8],
    /// Bytes of JIT-compiled code.
    pub jited_len: u32,
    /// Bytes of instructions after the verifier's rewrites.
    pub xlated_len: u32,
    /// Ids of the maps the program uses.
    pub map_ids: Vec<KernelMapId>,
    /// Total run time (only counted while `kernel.bpf_stats_enabled=1`).
    pub run_time_ns: u64,
    /// Number of runs (only counted while `kernel.bpf_stats_enabled=1`).
    pub run_cnt: u64,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
    /// Id of the program's BTF object (0: none).
    pub btf_id: u32,
}

/// What the kernel reports about a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    /// Kernel-wide map id.
    pub id: KernelMapId,
    /// `bpf_map_type` value.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
    /// Name given at creation (at most 15 bytes).
    pub name: String,
}

/// Attachment details of a link, for the kinds this crate attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkDetail {
    /// An XDP link on a network device.
    Xdp {
        /// The device.
        ifindex: u32,
    },
    /// A tcx link on a network device.
    Tcx {
        /// The device.
        ifindex: u32,
        /// `BPF_TCX_INGRESS` or `BPF_TCX_EGRESS`.
        attach_type: u32,
    },
    /// Any other link type (details not decoded).
    Other,
}

/// What the kernel reports about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Kernel-wide link id.
    pub id: KernelLinkId,
    /// `bpf_link_type` value.
    pub link_type: u32,
    /// Id of the link's program (`None` for links without one). The kernel
    /// keeps reporting it after `BPF_LINK_DETACH`; the device of an XDP or
    /// tcx link's [`LinkDetail`] is 0 then.
    pub prog_id: Option<KernelProgId>,
    /// Type-specific details.
    pub detail: LinkDetail,
}

/// `BPF_OBJ_GET_INFO_BY_FD` into `info`. The caller zeroes it and may set
/// array pointers and counts (e.g. `map_ids`) that the kernel fills.
fn get_info<T: Zeroable>(fd: BorrowedFd<'_>, info: &mut T) -> io::Result<()> {
    let mut a: bpf_attr = zeroed();
    a.info.bpf_fd = fd_u32(fd);
    a.info.info_len = mem::size_of::<T>() as u32;
    a.info.info = ptr_u64(info as *mut T);
    sys_bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut a).map(drop)
}

/// The kernel's raw map info.
pub(super) fn map_info_raw(fd: BorrowedFd<'_>) -> io::Result<bpf_map_info> {
    let mut info: bpf_map_info = zeroed();
    get_info(fd, &mut info)?;
    Ok(info)
}

/// Information about the map behind `fd`.
pub fn map_info(fd: impl AsFd) -> io::Result<MapInfo> {
    let i = map_info_raw(fd.as_fd())?;
    Ok(MapInfo {
        id: KernelMapId::new(i.id),
        map_type: i.type_,
        key_size: i.key_size,
        value_size: i.value_size,
        max_entries: i.max_entries,
        map_flags: i.map_flags,
        name: name_from_c(&i.name),
    })
}

/// Information about the program behind `fd`. Two passes: the first
/// learns how many maps the program uses, the second fetches their ids.
pub fn prog_info(fd: impl AsFd) -> io::Result<ProgInfo> {
    let fd = fd.as_fd();
    let mut first: bpf_prog_info = zeroed();
    get_info(fd, &mut first)?;
    let mut map_ids = vec![0u32; first.nr_map_ids as usize];
    let mut i = first;
    if !map_ids.is_empty() {
        i = zeroed();
        i.nr_map_ids = map_ids.len() as u32;
        i.map_ids = ptr_u64(map_ids.as_mut_ptr());
        get_info(fd, &mut i)?;
        // The kernel reports the current count and fills at most ours.
        map_ids.truncate(i.nr_map_ids as usize);
    }
    Ok(ProgInfo {
        id: KernelProgId::new(i.id),
        name: name_from_c(&i.name),
        prog_type: i.type_,
        tag: i.tag,
        jited_len: i.jited_prog_len,
        xlated_len: i.xlated_prog_len,
        map_ids: map_ids.into_iter().map(KernelMapId::new).collect(),
        run_time_ns: i.run_time_ns,
        run_cnt: i.run_cnt,
        verified_insns: i.verified_insns,
        btf_id: i.btf_id,
    })
}

/// The BTF type id of the program's main function (its first
/// `bpf_func_info` record, at instruction 0), what fentry and fexit on
/// the program are loaded against; `None` when it has no BTF function
/// information.
pub fn prog_main_func_type_id(fd: impl AsFd) -> io::Result<Option<u32>> {
    /// `struct bpf_func_info { __u32 insn_off; __u32 type_id; }`.
    const REC_SIZE: u32 = 8;
    let fd = fd.as_fd();
    let mut first: bpf_prog_info = zeroed();
    get_info(fd, &mut first)?;
    if first.nr_func_info == 0 || first.btf_id == 0 {
        return Ok(None);
    }
    let mut record = [0u32; 2];
    let mut i: bpf_prog_info = zeroed();
    i.nr_func_info = 1;
    i.func_info_rec_size = REC_SIZE;
    i.func_info = ptr_u64(record.as_mut_ptr());
    get_info(fd, &mut i)?;
    Ok((record[0] == 0 && record[1] != 0).then_some(record[1]))
}

/// Information about the link behind `fd`. Fails with EINVAL when `fd`
/// is another kind of BPF object: the kernel would answer with that
/// object's info, which read as link info is nonsense.
pub fn link_info(fd: impl AsFd) -> io::Result<LinkInfo> {
    let fd = fd.as_fd();
    // The kernel names the file behind a link fd `anon_inode:bpf_link`
    // (from BPF_LINK_CREATE) or `anon_inode:bpf-link` (from BPF_OBJ_GET
    // and BPF_LINK_GET_FD_BY_ID).
    let kind = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    if !["anon_inode:bpf_link", "anon_inode:bpf-link"].contains(&&*kind.to_string_lossy()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a BPF link fd ({})", kind.display()),
        ));
    }
    let mut i: bpf_link_info = zeroed();
    get_info(fd, &mut i)?;
    let detail = if i.type_ == bpf_link_type::BPF_LINK_TYPE_XDP as u32 {
        // SAFETY: the kernel filled the `xdp` member for an XDP link; the
        // union holds plain integers, so any bytes are a valid value.
        let x = unsafe { i.__bindgen_anon_1.xdp };
        LinkDetail::Xdp { ifindex: x.ifindex }
    } else if i.type_ == bpf_link_type::BPF_LINK_TYPE_TCX as u32 {
        // SAFETY: as above, the `tcx` member for a tcx link.
        let t = unsafe { i.__bindgen_anon_1.tcx };
        LinkDetail::Tcx {
            ifindex: t.ifindex,
            attach_type: t.attach_type,
        }
    } else {
        LinkDetail::Other
    };
    Ok(LinkInfo {
        id: KernelLinkId::new(i.id),
        link_type: i.type_,
        prog_id: (i.prog_id != 0).then_some(KernelProgId::new(i.prog_id)),
        detail,
    })
}

fn get_fd_by_id(cmd: bpf_cmd, id: u32) -> io::Result<OwnedFd> {
    let mut a: bpf_attr = zeroed();
    a.__bindgen_anon_6.__bindgen_anon_1.prog_id = id;
    sys_bpf_fd(cmd, &mut a)
}

/// `BPF_PROG_GET_FD_BY_ID`.
pub fn prog_get_fd_by_id(id: KernelProgId) -> io::Result<OwnedFd> {
    get_fd_by_id(bpf_cmd::BPF_PROG_GET_FD_BY_ID, id.get())
}

/// `BPF_MAP_GET_FD_BY_ID`.
pub fn map_get_fd_by_id(id: KernelMapId) -> io::Result<OwnedFd> {
    get_fd_by_id(bpf_cmd::BPF_MAP_GET_FD_BY_ID, id.get())
}

/// `BPF_LINK_GET_FD_BY_ID`.
pub fn link_get_fd_by_id(id: KernelLinkId) -> io::Result<OwnedFd> {
    get_fd_by_id(bpf_cmd::BPF_LINK_GET_FD_BY_ID, id.get())
}

/// `BPF_BTF_GET_FD_BY_ID`: the BTF object with this id (a program's
/// [`ProgInfo::btf_id`], say).
pub fn btf_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    get_fd_by_id(bpf_cmd::BPF_BTF_GET_FD_BY_ID, id)
}

/// The raw bytes (header, types, strings) of the BTF object behind `fd`,
/// as it was loaded. Two passes: the size first, then the bytes (again
/// if the first answer was too small, which a BTF object never is: it
/// does not change once loaded).
pub fn btf_data(fd: impl AsFd) -> io::Result<Vec<u8>> {
    let fd = fd.as_fd();
    let mut info: bpf_btf_info = zeroed();
    get_info(fd, &mut info)?;
    for _ in 0..2 {
        let mut data = vec![0u8; info.btf_size as usize];
        let size = info.btf_size;
        info = zeroed();
        info.btf = ptr_u64(data.as_mut_ptr());
        info.btf_size = size;
        get_info(fd, &mut info)?;
        if info.btf_size <= size {
            data.truncate(info.btf_size as usize);
            return Ok(data);
        }
    }
    Err(io::Error::other(
        "the BTF object kept growing while we read it",
    ))
}

/// The next id after `start` (0: the first), or `None` after the last.
fn get_next_id(cmd: bpf_cmd, start: u32) -> io::Result<Option<u32>> {
    let mut a: bpf_attr = zeroed();
    a.__bindgen_anon_6.__bindgen_anon_1.start_id = start;
    match sys_bpf(cmd, &mut a) {
        // SAFETY: plain integer in the zero-initialised attr union.
        Ok(_) => Ok(Some(unsafe { a.__bindgen_anon_6.next_id })),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `BPF_PROG_GET_NEXT_ID`: the id of the first loaded program after
/// `after` (`None`: the first of all), or `None` after the last.
pub fn prog_get_next_id(after: Option<KernelProgId>) -> io::Result<Option<KernelProgId>> {
    let start = after.map_or(0, KernelProgId::get);
    Ok(get_next_id(bpf_cmd::BPF_PROG_GET_NEXT_ID, start)?.map(KernelProgId::new))
}

/// `BPF_MAP_GET_NEXT_ID`: the id of the first map after `after` (`None`:
/// the first of all), or `None` after the last.
pub fn map_get_next_id(after: Option<KernelMapId>) -> io::Result<Option<KernelMapId>> {
    let start = after.map_or(0, KernelMapId::get);
    Ok(get_next_id(bpf_cmd::BPF_MAP_GET_NEXT_ID, start)?.map(KernelMapId::new))
}

/// `BPF_LINK_GET_NEXT_ID`: the id of the first link after `after`
/// (`None`: the first of all), or `None` after the last.
pub fn link_get_next_id(after: Option<KernelLinkId>) -> io::Result<Option<KernelLinkId>> {
    let start = after.map_or(0, KernelLinkId::get);
    Ok(get_next_id(bpf_cmd::BPF_LINK_GET_NEXT_ID, start)?.map(KernelLinkId::new))
}

/// `BPF_BTF_GET_NEXT_ID`: the id of the first BTF object after `after`
/// (0: the first of all), or `None` after the last.
pub fn btf_get_next_id(after: u32) -> io::Result<Option<u32>> {
    get_next_id(bpf_cmd::BPF_BTF_GET_NEXT_ID, after)
}

/// The name of the BTF object behind `fd` and whether it is the kernel's
/// (`vmlinux` or a module's, named after the module) rather than one a
/// program loaded.
pub fn btf_name(fd: impl AsFd) -> io::Result<(String, bool)> {
    let fd = fd.as_fd();
    let mut name = [0u8; 64];
    let mut info: bpf_btf_info = zeroed();
    info.name = ptr_u64(name.as_mut_ptr());
    info.name_len = name.len() as u32;
    get_info(fd, &mut info)?;
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok((
        String::from_utf8_lossy(&name[..len]).into_owned(),
        info.kernel_btf != 0,
    ))
}
