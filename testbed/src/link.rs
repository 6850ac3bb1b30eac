//! Veth pairs and what a test needs to know about each end.

use std::collections::HashMap;

use crate::PacketSocket;
use crate::netns::{Netns, run_in_named};
use crate::{Error, Result};

/// One network interface inside a test namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface name.
    pub name: String,
    /// Interface index, valid in `netns`.
    pub ifindex: u32,
    /// MAC address, as the kernel reports it.
    pub mac: [u8; 6],
    /// Name of the namespace the interface lives in.
    pub netns: String,
}

impl Link {
    /// A packet socket bound to this interface, created inside its
    /// namespace (it stays there, whichever thread uses it).
    pub fn socket(&self) -> Result<PacketSocket> {
        run_in_named(&self.netns, || PacketSocket::bind(self.ifindex))?.map_err(|e| {
            Error::io(
                format!(
                    "cannot open a packet socket on {} in {}",
                    self.name, self.netns
                ),
                e,
            )
        })
    }
}

/// The two ends of a veth pair: what goes out of one comes in at the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethPair {
    /// The end created first.
    pub a: Link,
    /// Its peer.
    pub b: Link,
}

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
const MAX_NAME_LEN: usize = 15;

/// Rejects names `ip -batch` or the kernel would misread or refuse.
fn check_name(name: &str) -> Result<()> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "interface name {name:?} must be 1 to {MAX_NAME_LEN} characters from [A-Za-z0-9_.-]"
        )))
    }
}

/// Creates the veth pairs `names` (a, b) in `ns`, each `b` in `peer` when
/// given, brings all ends up and reads their indexes and MACs back, with a
/// constant number of `ip` processes whatever the number of pairs.
pub(crate) fn create_veths(
    ns: &Netns,
    names: &[(String, String)],
    peer: Option<&Netns>,
) -> Result<Vec<VethPair>> {
    for (a, b) in names {
        check_name(a)?;
        check_name(b)?;
    }
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut here = String::new();
    let mut there = String::new();
    for (a, b) in names {
        here += &format!("link add name {a} type veth peer name {b}");
        match peer {
            Some(p) => {
                here += &format!(" netns {}\n", p.name());
                there += &format!("link set {b} up\n");
            }
            None => here += &format!("\nlink set {b} up\n"),
        }
        here += &format!("link set {a} up\n");
    }
    ns.ip_batch(&here)?;
    let b_ns = match peer {
        Some(p) => {
            p.ip_batch(&there)?;
            p
        }
        None => ns,
    };

    let links_a = list_links(ns)?;
    let links_b = if peer.is_some() {
        list_links(b_ns)?
    } else {
        links_a.clone()
    };
    let find = |links: &HashMap<String, (u32, [u8; 6])>, ns: &Netns, name: &str| {
        links
            .get(name)
            .map(|&(ifindex, mac)| Link {
                name: name.to_string(),
                ifindex,
                mac,
                netns: ns.name().to_string(),
            })
            .ok_or_else(|| Error::Parse {
                command: format!("ip -n {} -o link show", ns.name()),
                detail: format!("interface {name} not listed"),
            })
    };
    names
        .iter()
        .map(|(a, b)| {
            Ok(VethPair {
                a: find(&links_a, ns, a)?,
                b: find(&links_b, b_ns, b)?,
            })
        })
        .collect()
}

/// Index and MAC of every Ethernet interface in `ns`, by name.
fn list_links(ns: &Netns) -> Result<HashMap<String, (u32, [u8; 6])>> {
    let out = ns.ip(&["-o", "link", "show"])?;
    parse_link_list(&out).map_err(|detail| Error::Parse {
        command: format!("ip -n {} -o link show", ns.name()),
        detail,
    })
}

/// Parses `ip -o link show` lines such as
/// `3: va@vb: <BROADCAST,...> mtu 1500 ... link/ether 22:75:91:b2:67:9d brd ...`
/// (the peer after `@` is `ifN` when it is in another namespace). Interfaces
/// without an Ethernet address (`lo`) are left out.
fn parse_link_list(out: &str) -> Result<HashMap<String, (u32, [u8; 6])>, String> {
    let mut links = HashMap::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || format!("unexpected line {line:?}");
        let (index, rest) = line.split_once(": ").ok_or_else(bad)?;
        let ifindex: u32 = index.trim().parse().map_err(|_| bad())?;
        let (name, _) = rest.split_once(':').ok_or_else(bad)?;
        let name = name.split('@').next().unwrap_or(name);
        let Some((_, after)) = line.split_once("link/ether ") else {
            continue;
        };
        let mac_text = after.split_whitespace().next().ok_or_else(bad)?;
        let mac = parse_mac(mac_text).ok_or_else(bad)?;
        links.insert(name.to_string(), (ifindex, mac));
    }
    Ok(links)
}

/// `aa:bb:cc:dd:ee:ff` to bytes.
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_link_output() {
        // Lines as `ip -o link show` (iproute2 6.1) prints them: loopback, a
        // veth with its peer here, one with its peer in another namespace.
        let out = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n\
                   3: va@vb: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 22:75:91:b2:67:9d brd ff:ff:ff:ff:ff:ff\n\
                   4: x0a@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 0a:82:44:30:16:b5 brd ff:ff:ff:ff:ff:ff link-netns tb-1-0-00000000\n";
        let links = parse_link_list(out).unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links["va"], (3, [0x22, 0x75, 0x91, 0xb2, 0x67, 0x9d]));
        assert_eq!(links["x0a"], (4, [0x0a, 0x82, 0x44, 0x30, 0x16, 0xb5]));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_link_list("nonsense\n").is_err());
        assert!(parse_link_list("3: va: <UP> link/ether 22:75:91\n").is_err());
        assert_eq!(parse_mac("22:75:91:b2:67:9d:00"), None);
        assert_eq!(parse_mac("2:75:91:b2:67:9d"), None);
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(check_name("veth0a").is_ok());
        assert!(check_name("abcdefghijklmno").is_ok());
        assert!(check_name("abcdefghijklmnop").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("a/b").is_err());
    }
}
