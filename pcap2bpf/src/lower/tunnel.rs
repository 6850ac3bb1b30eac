//! Tunnels: Geneve (`gen_geneve`), whose encapsulated frame starts at
//! an offset known only at run time, kept in variables; and the check
//! that no test reads those variables where they were not set.

use pktmatch::ir::{BinOp, CmpOp, Cond, EntityRef, Ir, MAX_VARS, Val, ValNode, VerifyError};

use super::formula::{P, and, or};
use super::offset::{Off, Rel};
use super::{Lower, R};
use crate::check::link::Link;
use crate::check::{Atom, Checked, Side, Transport};
use crate::error::CompileError;
use crate::numbers::{ETHERTYPE_TEB, GENEVE_PORT};
use crate::syntax::ast::{BoolTree, Primitive};

/// Whether the filter has a `geneve` (libpcap then does not optimise).
pub(super) fn has_geneve(c: &Checked) -> bool {
    any_atom(c, &|a| matches!(a, Atom::Prim(Primitive::Geneve(_))))
}

/// Whether an atom of `c` is one `pick` picks (down a chain of operators
/// by a loop, see [`BoolTree`]).
fn any_atom(c: &Checked, pick: &dyn Fn(&Atom) -> bool) -> bool {
    let (first, links) = c.left_chain();
    std::iter::once(first)
        .chain(links.into_iter().map(|(_, right)| right))
        .any(|operand| match operand {
            Checked::And(_) | Checked::Or(_) => any_atom(operand, pick),
            Checked::Not(a) => any_atom(a, pick),
            Checked::Atom(a, _) => pick(a),
        })
}

/// Whether libpcap optimises the filter: `geneve` and `protochain` turn
/// its optimiser off (`cstate->no_optimize`).
pub(super) fn pcap_optimizes(c: &Checked) -> bool {
    !any_atom(c, &|a| {
        matches!(
            a,
            Atom::Prim(Primitive::Geneve(_)) | Atom::ProtoChain { .. }
        )
    })
}

/// Refuses filters that read a variable on a path that did not set it:
/// tests after `geneve` that also run when `geneve` did not match (`not
/// geneve and tcp`, `geneve or udp`). libpcap reads scratch memory it
/// never wrote there (the kernel's classic BPF checker refuses such
/// programs), so those tests have no meaning to reproduce. The IR's own
/// verification finds them; any other fault it finds is ours.
pub(super) fn check_vars_set(ir: &Ir) -> Result<(), CompileError> {
    match ir.verify() {
        Ok(()) => Ok(()),
        Err(VerifyError::UnsetVar { block, .. }) => Err(CompileError::new(
            "this test also runs on packets where the 'geneve' before it did not match; \
             libpcap then reads offsets it never computed (uninitialised scratch memory), \
             so it has no defined meaning: put the test under 'geneve and ...' or before 'geneve'",
            ir.blocks[block.index()].span,
        )),
        Err(e) => Err(CompileError::new(
            format!("internal error: {e}"),
            Default::default(),
        )),
    }
}

impl Lower<'_> {
    /// A fresh variable: its number and the value reading it.
    pub(super) fn new_var(&mut self) -> R<(u32, Val)> {
        if self.next_var >= MAX_VARS {
            return Err(self.err(format!(
                "too many 'geneve' in one filter (at most {})",
                MAX_VARS / 4
            )));
        }
        let n = self.next_var;
        self.next_var += 1;
        Ok((n, self.ir.val(ValNode::Var(n))))
    }

    pub(super) fn assign(&mut self, var: (u32, Val), val: Val) -> P {
        P::Test(Cond::Let { var: var.0, val }, self.span)
    }

    pub(super) fn add_k(&mut self, v: Val, k: u32) -> Val {
        let k = self.ir.k(k);
        self.ir.bin(BinOp::Add, v, k)
    }

    /// `gen_geneve_check`: UDP to port 6081 over IPv4 or IPv6, Geneve
    /// version 0 and, if given, the VNI.
    pub(super) fn geneve_check(&mut self, v6: bool, vni: Option<u32>) -> R<P> {
        let port = GENEVE_PORT;
        let b0 = self.port_family(v6, Some(Transport::Udp), Side::Dst, port, port, false)?;
        let rel = if v6 { Rel::TranIpv6 } else { Rel::TranIpv4 };
        let b1 = self.mcmp(rel, 8, 1, 0, 0xc0)?;
        let mut b = and(b0, b1);
        if let Some(vni) = vni {
            let b2 = self.mcmp(rel, 12, 4, vni << 8, 0xffff_ff00)?;
            b = and(b, b2);
        }
        Ok(b)
    }

    /// `gen_geneve`: matches Geneve and moves every later offset into the
    /// encapsulated frame. As in libpcap, its start is computed when the
    /// match succeeds: `g` (the Geneve header: after the UDP header over
    /// IPv4 or IPv6), `hdr` (after the Geneve header and its options, the
    /// link-layer header), then, if the protocol type is Ethernet
    /// (0x6558), the EtherType and payload of that frame; otherwise the
    /// protocol type serves as the EtherType and the payload starts at
    /// `hdr`.
    pub(super) fn geneve(&mut self, vni: Option<u32>) -> R<P> {
        let g = self.new_var()?;
        let hdr = self.new_var()?;
        let lt = self.new_var()?;
        let pl_var = self.new_var()?;
        let pl = self.off.linkpl;
        let udp_end = pl.k.wrapping_add(self.off.nl).wrapping_add(8);
        let b4 = self.geneve_check(false, vni)?;
        let ihl = self.iphdrlen();
        let g4 = self.add_k(ihl, udp_end);
        let set4 = self.assign(g, g4);
        let b6 = self.geneve_check(true, vni)?;
        let g6 = match pl.var {
            Some(v) => self.add_k(v, udp_end.wrapping_add(40)),
            None => self.ir.k(udp_end.wrapping_add(40)),
        };
        let set6 = self.assign(g, g6);
        let matched = or(and(b4, set4), and(b6, set6));
        // hdr = g + 8 + 4 * (option length, the low 6 bits of byte 0).
        let optlen = {
            let b = self.ir.load(Some(g.1), 0, 1);
            let m = self.ir.k(0x3f);
            let four = self.ir.k(4);
            let o = self.ir.bin(BinOp::And, b, m);
            self.ir.bin(BinOp::Mul, o, four)
        };
        let hlen = self.add_k(optlen, 8);
        let h = self.ir.bin(BinOp::Add, hlen, g.1);
        let set_hdr = self.assign(hdr, h);
        let proto = self.ir.load(Some(g.1), 2, 2);
        let teb = self.ir.k(ETHERTYPE_TEB);
        let is_teb = self.test(proto, CmpOp::Eq, teb);
        let (h12, h14, g2) = (
            self.add_k(hdr.1, 12),
            self.add_k(hdr.1, 14),
            self.add_k(g.1, 2),
        );
        // The EtherType offset last: r0 then holds it for the next test.
        let ether = and(is_teb, and(self.assign(pl_var, h14), self.assign(lt, h12)));
        let other = and(self.assign(pl_var, hdr.1), self.assign(lt, g2));
        let offsets = and(set_hdr, or(ether, other));
        self.link = Link::Ether;
        self.off.linkhdr = Off {
            var: Some(hdr.1),
            k: 0,
        };
        self.off.linktype = Some(Off {
            var: Some(lt.1),
            k: 0,
        });
        self.off.linkpl = Off {
            var: Some(pl_var.1),
            k: 0,
        };
        // libpcap leaves off_nl_nosnap as it was.
        self.off.nl = 0;
        self.geneve = Some((hdr.1, pl_var.1));
        Ok(and(matched, offsets))
    }
}

#[cfg(test)]
mod tests {
    use crate::{LinkType, LowerOptions, Tables, build_ir, parse};

    fn build(expr: &str) -> Result<crate::Ir, crate::CompileError> {
        let t = Tables::new();
        let f = parse(expr, LinkType::En10mb, &t)?;
        let o = LowerOptions::offline(LinkType::En10mb, None).fixed_direction(None);
        Ok(build_ir(&f, &o)?.0)
    }

    fn matches(expr: &str, p: &[u8]) -> bool {
        build(expr).unwrap().eval(p, p.len() as u32, &|_| None)
    }

    /// Ethernet + IPv4 (20 bytes) + UDP to 6081 + Geneve with `opt_words`
    /// 4-byte option words, protocol `proto`, VNI 0x0abcde, then `inner`.
    fn geneve_frame(opt_words: u8, proto: u16, inner: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        ip[2..4].copy_from_slice(
            &((20 + 8 + 8 + 4 * opt_words as usize + inner.len()) as u16).to_be_bytes(),
        );
        p.extend_from_slice(&ip);
        p.extend_from_slice(&[0xc3, 0x50, 0x17, 0xc1, 0, 0, 0, 0]);
        p.extend_from_slice(&[opt_words, 0]);
        p.extend_from_slice(&proto.to_be_bytes());
        p.extend_from_slice(&[0x0a, 0xbc, 0xde, 0]);
        p.extend(std::iter::repeat_n(0xee, 4 * opt_words as usize));
        p.extend_from_slice(inner);
        p
    }

    /// An IPv4 header from 10.0.0.1 to 10.0.0.2 carrying TCP.
    fn inner_ip() -> Vec<u8> {
        vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 22, 0x30, 0x39,
        ]
    }

    #[test]
    fn geneve_follows_options_to_the_inner_frame() {
        let mut inner = vec![0u8; 12];
        inner.extend_from_slice(&[0x08, 0x00]);
        inner.extend(inner_ip());
        for words in [0, 2, 5] {
            let p = geneve_frame(words, 0x6558, &inner);
            assert!(matches("geneve", &p));
            assert!(matches("geneve 0x0abcde", &p));
            assert!(!matches("geneve 0x0abcdf", &p));
            assert!(matches("geneve and ip src 10.0.0.1", &p));
            assert!(matches("geneve and tcp src port 22", &p));
            assert!(!matches("geneve and tcp dst port 22", &p));
        }
    }

    #[test]
    fn geneve_without_ethernet_takes_its_protocol_as_the_ethertype() {
        // libpcap: the linktype is the protocol field (Geneve + 2) and the
        // payload starts right after the Geneve header; no Ethernet
        // header, so link-layer address tests fail.
        let p = geneve_frame(1, 0x0800, &inner_ip());
        assert!(matches("geneve and ip dst 10.0.0.2", &p));
        assert!(matches("geneve and tcp port 22", &p));
        assert!(!matches("geneve and ip6", &p));
        assert!(!matches("geneve and ether multicast", &p));
        // The same bytes as Ethernet payload do not parse as IPv4.
        let q = geneve_frame(1, 0x6558, &inner_ip());
        assert!(!matches("geneve and ip dst 10.0.0.2", &q));
    }

    #[test]
    fn geneve_needs_the_protocol_field_in_the_capture() {
        let p = geneve_frame(0, 0x6558, &[]);
        // Cut inside the Geneve protocol type: libpcap loads it to compute
        // the offsets, so even a bare `geneve` rejects.
        let cut = &p[..14 + 20 + 8 + 3];
        assert!(!matches("geneve", cut));
        assert!(matches("geneve", &p[..14 + 20 + 8 + 4]));
    }

    #[test]
    fn filters_with_geneve_are_not_optimised_like_libpcap() {
        // Unoptimised, libpcap loads ip[0] for `ip[0] * 0` and runs the
        // EtherType test of `ip or not ip`: a frame cut before the inner
        // EtherType is rejected.
        let p = geneve_frame(0, 0x6558, &[0u8; 12]);
        assert!(!matches("geneve and (ip or not ip)", &p));
        let ir = build("geneve and ip[0] * 0 = 0").unwrap();
        assert!(ir.pcap_unoptimized);
        // Without geneve, the optimiser's folding stands.
        assert_eq!(
            build("ip or not ip").unwrap().entry,
            Some(pktmatch::ir::Edge::ACCEPT)
        );
    }

    #[test]
    fn tests_reading_unset_geneve_offsets_are_refused() {
        for e in [
            "geneve or udp port 53",
            "not geneve and tcp",
            "(geneve or geneve) and ip",
        ] {
            let err = build(e).unwrap_err();
            assert!(
                err.message.contains("did not match"),
                "{e}: {}",
                err.message
            );
        }
        for e in [
            "udp port 53 or geneve",
            "not geneve",
            "geneve and (tcp or udp)",
        ] {
            assert!(build(e).is_ok(), "{e}");
        }
    }
}
