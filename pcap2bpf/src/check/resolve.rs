//! Name resolution as libpcap does it, restricted to local tables:
//! hosts(5), services(5), protocols(5), ethers(5) and networks(5).
//! No DNS: a name not in the hosts table is an unknown host.

use std::net::IpAddr;

/// Where names come from. Tests supply their own tables.
pub trait Resolver {
    /// All addresses of a host name, in table order (hosts(5)).
    fn host(&self, name: &str) -> Vec<IpAddr>;
    /// The MAC address of a host name (ethers(5)).
    fn ether(&self, name: &str) -> Option<[u8; 6]>;
    /// A network number, right-justified as getnetbyname(3) returns it.
    fn network(&self, name: &str) -> Option<u32>;
    /// A service port for `proto` (`"tcp"` or `"udp"`).
    fn service(&self, name: &str, proto: &str) -> Option<u16>;
    /// An IP protocol number (protocols(5)).
    fn protocol(&self, name: &str) -> Option<u8>;
}

/// Name tables parsed from the text of the usual files.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    hosts: Vec<(IpAddr, Vec<String>)>,
    ethers: Vec<([u8; 6], String)>,
    networks: Vec<(String, u32)>,
    services: Vec<(String, u16, String)>,
    protocols: Vec<(String, u8)>,
}

/// The lines of a table file without comments, split into fields.
fn fields(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| !f.is_empty())
}

impl Tables {
    /// Empty tables: every name is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds hosts(5) lines: `address name [alias...]`.
    pub fn with_hosts(mut self, text: &str) -> Self {
        for f in fields(text) {
            if let (Ok(a), true) = (f[0].parse::<IpAddr>(), f.len() > 1) {
                self.hosts
                    .push((a, f[1..].iter().map(|s| s.to_string()).collect()));
            }
        }
        self
    }

    /// Adds ethers(5) lines: `aa:bb:cc:dd:ee:ff name`.
    pub fn with_ethers(mut self, text: &str) -> Self {
        for f in fields(text) {
            if f.len() < 2 {
                continue;
            }
            let parts: Vec<_> = f[0].split(':').collect();
            let mut mac = [0u8; 6];
            if parts.len() == 6
                && parts
                    .iter()
                    .zip(mac.iter_mut())
                    .all(|(p, m)| u8::from_str_radix(p, 16).map(|v| *m = v).is_ok())
            {
                self.ethers.push((mac, f[1].to_string()));
            }
        }
        self
    }

    /// Adds networks(5) lines: `name number [alias...]`.
    pub fn with_networks(mut self, text: &str) -> Self {
        for f in fields(text) {
            if f.len() < 2 {
                continue;
            }
            if let Some(n) = inet_network(f[1]) {
                for name in std::iter::once(f[0]).chain(f[2..].iter().copied()) {
                    self.networks.push((name.to_string(), n));
                }
            }
        }
        self
    }

    /// Adds services(5) lines: `name port/proto [alias...]`.
    pub fn with_services(mut self, text: &str) -> Self {
        for f in fields(text) {
            if f.len() < 2 {
                continue;
            }
            let Some((port, proto)) = f[1].split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for name in std::iter::once(f[0]).chain(f[2..].iter().copied()) {
                self.services
                    .push((name.to_string(), port, proto.to_string()));
            }
        }
        self
    }

    /// Adds protocols(5) lines: `name number [alias...]`.
    pub fn with_protocols(mut self, text: &str) -> Self {
        for f in fields(text) {
            if f.len() < 2 {
                continue;
            }
            let Ok(n) = f[1].parse::<u8>() else { continue };
            for name in std::iter::once(f[0]).chain(f[2..].iter().copied()) {
                self.protocols.push((name.to_string(), n));
            }
        }
        self
    }

    /// The tables of this machine, from `/etc` (missing files are empty).
    pub fn system() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Tables::new()
            .with_hosts(&read("/etc/hosts"))
            .with_ethers(&read("/etc/ethers"))
            .with_networks(&read("/etc/networks"))
            .with_services(&read("/etc/services"))
            .with_protocols(&read("/etc/protocols"))
    }
}

/// inet_network(3): 1..4 dotted parts, right-justified.
fn inet_network(s: &str) -> Option<u32> {
    let parts: Vec<_> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut v: u32 = 0;
    for p in parts {
        let n = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u32::from_str_radix(h, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u32::from_str_radix(&p[1..], 8).ok()?
        } else {
            p.parse().ok()?
        };
        if n > 255 {
            return None;
        }
        v = (v << 8) | n;
    }
    Some(v)
}

impl Resolver for Tables {
    fn host(&self, name: &str) -> Vec<IpAddr> {
        // A numeric address needs no table (getaddrinfo's numeric path).
        if let Ok(a) = name.parse::<IpAddr>() {
            return vec![a];
        }
        self.hosts
            .iter()
            .filter(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .map(|(a, _)| *a)
            .collect()
    }

    fn ether(&self, name: &str) -> Option<[u8; 6]> {
        self.ethers
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(m, _)| *m)
    }

    fn network(&self, name: &str) -> Option<u32> {
        self.networks
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    fn service(&self, name: &str, proto: &str) -> Option<u16> {
        // getaddrinfo takes a decimal service number as is.
        if !name.is_empty() && name.bytes().all(|c| c.is_ascii_digit()) {
            return name.parse::<u32>().ok().map(|n| n as u16);
        }
        self.services
            .iter()
            .find(|(n, _, p)| n == name && p == proto)
            .map(|(_, port, _)| *port)
    }

    fn protocol(&self, name: &str) -> Option<u8> {
        self.protocols
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}
