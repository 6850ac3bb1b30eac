//! The privileges the kernel checks, named in errors: when the kernel
//! answers `EPERM` or `EACCES` for lack of a capability, the error types
//! of this crate ([`LoadError`](crate::load::LoadError),
//! [`AttachError`](crate::attach::AttachError)) say which one, e.g.
//! "creating map `stats` failed: Operation not permitted (needs CAP_BPF)".
//!
//! What the kernel wants: `CAP_BPF` to create maps, load BTF and load
//! programs (`CAP_SYS_ADMIN` serves too, and is what kernels before 5.8
//! want); `CAP_NET_ADMIN` besides for networking programs (XDP, tc) and to
//! attach to network devices (XDP, tcx, netlink); `CAP_PERFMON` besides for
//! tracing programs; `CAP_SYS_ADMIN` to open objects by kernel id.

use std::fmt;
use std::io;

use crate::object::ProgramType;

/// A Linux capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `CAP_BPF`: maps, BTF and programs.
    Bpf,
    /// `CAP_NET_ADMIN`: networking programs and network devices.
    NetAdmin,
    /// `CAP_PERFMON`: tracing programs.
    Perfmon,
    /// `CAP_SYS_ADMIN`: objects by id (and everything, on old kernels).
    SysAdmin,
    /// `CAP_DAC_OVERRIDE`: pins in a bpffs the caller may not write.
    DacOverride,
}

impl Capability {
    /// The name as `capabilities(7)` spells it (`CAP_BPF`).
    pub fn name(self) -> &'static str {
        match self {
            Capability::Bpf => "CAP_BPF",
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::Perfmon => "CAP_PERFMON",
            Capability::SysAdmin => "CAP_SYS_ADMIN",
            Capability::DacOverride => "CAP_DAC_OVERRIDE",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The capabilities one operation needs; displays as
/// `CAP_BPF and CAP_NET_ADMIN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs(&'static [Capability]);

impl Needs {
    /// Creating maps and loading BTF.
    pub const MAP: Needs = Needs(&[Capability::Bpf]);
    /// Loading a program that is neither a networking nor a tracing one.
    pub const PROGRAM: Needs = Needs(&[Capability::Bpf]);
    /// Loading a networking program (XDP, tc).
    pub const NET_PROGRAM: Needs = Needs(&[Capability::Bpf, Capability::NetAdmin]);
    /// Loading a tracing program.
    pub const TRACING_PROGRAM: Needs = Needs(&[Capability::Bpf, Capability::Perfmon]);
    /// Attaching to, detaching from and querying network devices (XDP,
    /// tcx, netlink).
    pub const NET_DEVICE: Needs = Needs(&[Capability::NetAdmin]);
    /// Opening an object by its kernel id.
    pub const BY_ID: Needs = Needs(&[Capability::SysAdmin]);
    /// Opening perf events for kprobes, uprobes, tracepoints and counters
    /// of every process.
    pub const PERF_EVENT: Needs = Needs(&[Capability::Perfmon]);
    /// Writing tracefs (probe events) and mounting it.
    pub const TRACEFS: Needs = Needs(&[Capability::SysAdmin]);
    /// Mounting bpffs.
    pub const MOUNT: Needs = Needs(&[Capability::SysAdmin]);
    /// Pinning and opening pins where file permissions do not allow it.
    pub const PIN: Needs = Needs(&[Capability::DacOverride]);

    /// What loading a program of type `t` needs.
    pub fn for_program(t: ProgramType) -> Needs {
        match t {
            ProgramType::SocketFilter => Needs::PROGRAM,
            ProgramType::Xdp
            | ProgramType::XdpDevmap
            | ProgramType::XdpCpumap
            | ProgramType::SchedCls
            | ProgramType::TcxIngress
            | ProgramType::TcxEgress => Needs::NET_PROGRAM,
            t if t.is_tracing() => Needs::TRACING_PROGRAM,
            _ => Needs::PROGRAM,
        }
    }

    /// The capabilities.
    pub fn capabilities(self) -> &'static [Capability] {
        self.0
    }
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// Whether the kernel refused `e` for lack of privilege (`EPERM` or
/// `EACCES`).
pub fn is_denied(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

/// ` (needs CAP_...)` after an errno when it is a refusal for lack of
/// privilege (see [`is_denied`]), nothing otherwise.
pub fn hint(e: &io::Error, needs: Needs) -> Hint {
    Hint(is_denied(e).then_some(needs))
}

/// What [`hint`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hint(Option<Needs>);

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(needs) => write!(f, " (needs {needs})"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_capability_only_for_denials() {
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        let einval = io::Error::from_raw_os_error(libc::EINVAL);
        assert_eq!(hint(&eperm, Needs::MAP).to_string(), " (needs CAP_BPF)");
        assert_eq!(
            hint(&eperm, Needs::NET_PROGRAM).to_string(),
            " (needs CAP_BPF and CAP_NET_ADMIN)"
        );
        assert_eq!(hint(&einval, Needs::MAP).to_string(), "");
    }
}

#[cfg(test)]
mod load_tests {
    use crate::load::LoadError;
    use crate::privilege::Needs;
    use crate::verifier::VerifierError;
    use std::io;

    fn program(errno: i32, log: &str) -> LoadError {
        LoadError::Program(Box::new(VerifierError {
            program: "f".into(),
            error: io::Error::from_raw_os_error(errno),
            reason: String::new(),
            insn: None,
            log: log.into(),
            needs: Needs::NET_PROGRAM,
        }))
    }

    #[test]
    fn refusals_for_lack_of_privilege_are_told_apart() {
        let map = LoadError::CreateMap {
            map: "stats".into(),
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        assert_eq!(map.missing_privilege(), Some(Needs::MAP));
        assert!(
            map.to_string()
                .starts_with("creating map `stats` failed: Operation not permitted"),
            "{map}"
        );
        assert!(map.to_string().ends_with(" (needs CAP_BPF)"), "{map}");
        let p = program(libc::EPERM, "");
        assert_eq!(p.missing_privilege(), Some(Needs::NET_PROGRAM));
        assert!(
            p.to_string().ends_with("(needs CAP_BPF and CAP_NET_ADMIN)"),
            "{p}"
        );
        // The verifier's own rejection (it wrote a log) is not one.
        assert_eq!(
            program(libc::EACCES, "R1 invalid mem access").missing_privilege(),
            None
        );
        assert_eq!(program(libc::EINVAL, "").missing_privilege(), None);
    }
}
