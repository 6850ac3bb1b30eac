//! The checks that depend on where the filter runs, not only on the
//! link type: what a capture file lacks (`inbound`, `outbound` and
//! `ifindex` without a field in the link-layer header), where the VLAN
//! tag may be (`protochain` after `vlan`) and whether a netmask is known
//! (`ip broadcast`). [`crate::lower_ir`] runs them before lowering, on
//! the checked tree and the facts [`crate::LowerOptions::facts`] gives.

use super::link::not_live;
use super::{Atom, Checked};
use crate::error::CompileError;
use crate::syntax::ast::{BoolTree, Primitive, Proto};

/// What the target checks need to know about where the filter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetFacts {
    /// The packets come from a capture file: no direction or interface
    /// index besides the link-layer header's, as in libpcap.
    pub capture_file: bool,
    /// The outer VLAN tag may be in metadata (tc, socket filters): after
    /// `vlan` the payload offset is variable, as with libpcap's Linux BPF
    /// extensions.
    pub vlan_meta: bool,
    /// An IPv4 netmask is known (`ip broadcast` needs it).
    pub netmask: bool,
}

/// The first primitive of `c` (in source order, the order lowering
/// reads them) that `target` cannot run, as libpcap reports it.
pub fn check_target(c: &Checked, target: &TargetFacts) -> Result<(), CompileError> {
    let (first, links) = c.left_chain();
    check_operand(first, target)?;
    links
        .into_iter()
        .try_for_each(|(_, right)| check_target(right, target))
}

/// [`check_target`] of `c`, a `Not` or an atom.
fn check_operand(c: &Checked, target: &TargetFacts) -> Result<(), CompileError> {
    match c {
        Checked::And(_) | Checked::Or(_) => check_target(c, target),
        Checked::Not(a) => check_target(a, target),
        Checked::Atom(a, span) => match refusal(a, target) {
            Some(m) => Err(CompileError::new(m, *span)),
            None => Ok(()),
        },
    }
}

/// Why `target` cannot run `a`, if it cannot.
fn refusal(a: &Atom, target: &TargetFacts) -> Option<String> {
    match a {
        Atom::Direction {
            in_header: false,
            outbound,
            dlt,
        } if target.capture_file => Some(not_live(
            if *outbound { "outbound" } else { "inbound" },
            dlt,
        )),
        Atom::IfIndex {
            in_header: false,
            dlt,
            ..
        } if target.capture_file => Some(not_live("ifindex", dlt)),
        Atom::ProtoChain {
            after_vlan: true, ..
        } if target.vlan_meta => {
            Some("'protochain' not supported with variable length headers".into())
        }
        Atom::Prim(Primitive::Broadcast(Some(Proto::Ip))) if !target.netmask => {
            Some("netmask not known, so 'ip broadcast' not supported".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::check_target;
    use crate::{
        CompileError, Filter, Ir, LinkType, LowerOptions, Options, Span, Tables, Target, lower_ir,
        parse_with,
    };

    const ETHER: &str = "DLT_EN10MB (Ethernet)";
    const PPP: &str = "DLT_PPP (Point-to-Point Protocol)";

    /// libpcap's refusal of `keyword` on `dlt` in a capture file.
    fn not_live(keyword: &str, dlt: &str) -> String {
        format!("not a live capture, '{keyword}' not supported on {dlt}")
    }
    const PROTOCHAIN: &str = "'protochain' not supported with variable length headers";
    const NETMASK: &str = "netmask not known, so 'ip broadcast' not supported";

    /// `expr` checked for `link`, with a netmask (the checks need one for
    /// `ip broadcast`; the targets below may lack it).
    fn filter(expr: &str, link: LinkType) -> Filter {
        let t = Tables::new();
        parse_with(expr, Options::new(link, &t).netmask(Some(0xffff_ff00)))
            .unwrap_or_else(|e| panic!("{expr}: {}", e.message))
    }

    /// The target check's verdict on `expr`.
    fn check(expr: &str, link: LinkType, o: &LowerOptions) -> Result<(), CompileError> {
        let f = filter(expr, link);
        check_target(f.checked.as_ref().unwrap(), &o.facts())
    }

    /// The error of the target check, which must be `message` on the
    /// first occurrence of `at` in `expr`.
    fn refused(expr: &str, link: LinkType, o: &LowerOptions, message: &str, at: &str) {
        let e = check(expr, link, o).expect_err(expr);
        let start = expr.find(at).unwrap();
        assert_eq!(e.message, message, "{expr}");
        assert_eq!(e.span, Span::new(start, start + at.len()), "{expr}");
        // lower_ir (build_ir, compile, the engine, the CLI) gives it.
        let l = lower_ir(&filter(expr, link), o).expect_err(expr);
        assert_eq!(l, e, "{expr}");
    }

    fn offline(link: LinkType) -> LowerOptions {
        LowerOptions::offline(link, Some(0xffff_ff00))
    }

    fn live(target: Target) -> LowerOptions {
        LowerOptions::live(LinkType::En10mb, target, Some(0xffff_ff00))
    }

    const TARGETS: [Target; 3] = [Target::Xdp, Target::Tc, Target::SocketFilter];

    #[test]
    fn direction_needs_a_field_in_a_capture_file() {
        for e in ["inbound", "outbound"] {
            let en = LinkType::En10mb;
            refused(e, en, &offline(en), &not_live(e, ETHER), e);
            for (link, dlt) in [
                (LinkType::Raw, "DLT_RAW (Raw IPv4/IPv6)"),
                (LinkType::Null, "DLT_NULL (BSD loopback)"),
                (LinkType::Loop, "DLT_LOOP (OpenBSD loopback)"),
            ] {
                refused(e, link, &offline(link), &not_live(e, dlt), e);
            }
            for link in [LinkType::LinuxSll, LinkType::LinuxSll2] {
                assert!(check(e, link, &offline(link)).is_ok(), "{e} {link:?}");
            }
            for t in TARGETS {
                assert!(check(e, LinkType::En10mb, &live(t)).is_ok(), "{e} {t:?}");
            }
        }
        // Inside a PPPoE session the cooked header's field is not there
        // for libpcap's code generator.
        let sll = LinkType::LinuxSll;
        let m = not_live("inbound", PPP);
        refused("pppoes and inbound", sll, &offline(sll), &m, "inbound");
        assert!(check("inbound and pppoes", sll, &offline(sll)).is_ok());
    }

    #[test]
    fn ifindex_needs_a_field_in_a_capture_file() {
        for (link, dlt) in [
            (LinkType::En10mb, ETHER),
            (LinkType::LinuxSll, "DLT_LINUX_SLL (Linux cooked v1)"),
            (LinkType::Raw, "DLT_RAW (Raw IPv4/IPv6)"),
        ] {
            let m = not_live("ifindex", dlt);
            refused("ifindex 3", link, &offline(link), &m, "ifindex 3");
        }
        let sll2 = LinkType::LinuxSll2;
        assert!(check("ifindex 3", sll2, &offline(sll2)).is_ok());
        refused(
            "pppoes and ifindex 3",
            sll2,
            &offline(sll2),
            &not_live("ifindex", PPP),
            "ifindex 3",
        );
        for t in TARGETS {
            assert!(
                check("ifindex 3", LinkType::En10mb, &live(t)).is_ok(),
                "{t:?}"
            );
        }
    }

    #[test]
    fn protochain_after_vlan_needs_the_tag_in_the_frame() {
        let en = LinkType::En10mb;
        let e = "vlan and ip protochain 6";
        assert!(check(e, en, &live(Target::Xdp)).is_ok());
        assert!(check(e, en, &offline(en)).is_ok());
        for t in [Target::Tc, Target::SocketFilter] {
            refused(e, en, &live(t), PROTOCHAIN, "6");
            // In source order, as libpcap generates code: also on other
            // branches, and not before the `vlan`.
            refused("vlan 1 or protochain 17", en, &live(t), PROTOCHAIN, "17");
            assert!(check("ip6 protochain 44 and vlan", en, &live(t)).is_ok());
        }
    }

    #[test]
    fn ip_broadcast_needs_a_netmask() {
        let en = LinkType::En10mb;
        let e = "tcp or ip broadcast";
        for o in [
            LowerOptions::offline(en, None),
            LowerOptions::live(en, Target::Tc, None),
        ] {
            refused(e, en, &o, NETMASK, "ip broadcast");
        }
        assert!(check(e, en, &offline(en)).is_ok());
        assert!(check("ether broadcast", en, &LowerOptions::offline(en, None)).is_ok());
    }

    #[test]
    fn the_first_refusal_in_source_order_is_reported() {
        let en = LinkType::En10mb;
        let o = LowerOptions::offline(en, None);
        refused(
            "ip broadcast and not inbound",
            en,
            &o,
            NETMASK,
            "ip broadcast",
        );
        let m = not_live("inbound", ETHER);
        refused("inbound or ip broadcast", en, &o, &m, "inbound");
        refused(
            "tcp and (udp or ifindex 2) and outbound",
            en,
            &o,
            &not_live("ifindex", ETHER),
            "ifindex 2",
        );
    }

    /// Lowering on its own, without the target check.
    fn lower_alone(f: &Filter, o: &LowerOptions) -> Result<(), CompileError> {
        crate::lower::lower(f.checked.as_ref(), o, &mut Ir::with_capacity(32))
    }

    #[test]
    fn lowering_refuses_exactly_what_the_check_refuses() {
        let exprs = [
            "inbound",
            "not outbound and tcp",
            "ifindex 7",
            "pppoes and inbound",
            "pppoes and ifindex 1",
            "vlan and ip protochain 6",
            "vlan 3 or protochain 58",
            "ip protochain 6 and vlan",
            "ip broadcast",
            "udp and ip broadcast and inbound",
        ];
        let links = [
            LinkType::En10mb,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::Raw,
        ];
        let mut refusals = 0;
        for link in links {
            let mut opts = vec![
                LowerOptions::offline(link, None),
                LowerOptions::offline(link, Some(0xff00_0000)),
            ];
            for t in TARGETS {
                opts.push(LowerOptions::live(link, t, None));
                opts.push(LowerOptions::live(link, t, Some(0xff00_0000)));
            }
            for e in exprs {
                let t = Tables::new();
                let Ok(f) = parse_with(e, Options::new(link, &t).netmask(Some(0xff00_0000))) else {
                    continue;
                };
                for o in &opts {
                    let c = check_target(f.checked.as_ref().unwrap(), &o.facts());
                    assert_eq!(c, lower_alone(&f, o), "{e} {o:?}");
                    refusals += usize::from(c.is_err());
                }
            }
        }
        assert!(refusals > 50, "{refusals}");
    }
}
