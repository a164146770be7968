//! Where a request comes from: CIDR blocks (for `--trusted-proxy`), the client
//! address behind trusted reverse proxies (RFC 7239 `Forwarded`, or
//! `X-Forwarded-For`), and the key a source is counted under by throttles.
//!
//! A forwarded address is believed only when the peer that sent it is a trusted
//! proxy: anyone else could write any address there and pass for anyone.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is a
/// network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

/// Why a CIDR block was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR block (such as 10.0.0.0/8 or 2001:db8::/32)")]
pub struct CidrError(String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CidrError(s.chars().take(64).collect());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        // An IPv4-mapped block (`::ffff:10.0.0.0/104`) is the IPv4 block it carries,
        // as addresses are compared (`contains` canonicalises them).
        let mapped_prefix = match prefix {
            None => Some(None),
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| (96..=128).contains(n))
                .map(|n| Some((n - 96).to_string())),
        };
        let (net, prefix) = match (net.to_canonical(), mapped_prefix) {
            (IpAddr::V4(v4), Some(p)) if net.is_ipv6() => (IpAddr::V4(v4), p),
            _ => (net, prefix.map(str::to_owned)),
        };
        let prefix = prefix.as_deref();
        let max = if net.is_ipv4() { 32 } else { max };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3 => {
                p.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self {
            net: mask(net, prefix),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`) counts as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.prefix) == self.net
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

/// The key a source is counted under: an IPv4 address, or the /64 an IPv6
/// address belongs to (one subscriber is routinely given a whole /64, so counting
/// single IPv6 addresses would let one host be countless sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKey(IpAddr);

impl SourceKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            v4 @ IpAddr::V4(_) => Self(v4),
            v6 @ IpAddr::V6(_) => Self(mask(v6, 64)),
        }
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/64"),
        }
    }
}

/// The client's address: the peer itself, unless the peer is a trusted proxy, in
/// which case the forwarded chain is read from the right (the hop nearest to us)
/// and the first address that is not itself a trusted proxy is the client.
///
/// `forwarded` holds the values of every `Forwarded` header (RFC 7239) in order;
/// `x_forwarded_for` those of every `X-Forwarded-For` header, used only when there
/// is no `Forwarded`. An entry that names no usable address (`unknown`, an
/// obfuscated `_name`, garbage) ends the walk at the last address we could trust.
pub fn client_address(
    peer: IpAddr,
    forwarded: &[&str],
    x_forwarded_for: &[&str],
    trusted: &[Cidr],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<Option<IpAddr>> = if !forwarded.is_empty() {
        forwarded
            .iter()
            .flat_map(|v| split_outside_quotes(v, ','))
            .map(forwarded_for)
            .collect()
    } else {
        x_forwarded_for
            .iter()
            .flat_map(|v| v.split(','))
            .map(|hop| node_address(hop.trim()))
            .collect()
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = hop else { return client };
        client = ip.to_canonical();
        if !is_trusted(client) {
            return client;
        }
    }
    client
}

/// The `for=` address of one `Forwarded` element (`for=192.0.2.60;proto=http`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    split_outside_quotes(element, ';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        node_address(value)
    })
}

/// An address written as `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or
/// `[2001:db8::1]:4711`.
fn node_address(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || valid_port(after.strip_prefix(':')?)) {
            return None;
        }
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    let (v4, port) = node.rsplit_once(':')?;
    if !valid_port(port) {
        return None;
    }
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// Splits on `sep` except inside double-quoted strings (RFC 7230 `quoted-string`).
fn split_outside_quotes(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn cidr_blocks_parse_and_contain_their_addresses() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains(ip("10.255.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(!c.contains(ip("::1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "x/8",
            "1.2.3.4/+8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ipv6_sources_are_counted_by_their_64() {
        let a = SourceKey::of(ip("2001:db8:1:2:aaaa::1"));
        let b = SourceKey::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        let c = SourceKey::of(ip("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            SourceKey::of(ip("::ffff:192.0.2.1")),
            SourceKey::of(ip("192.0.2.1"))
        );
        assert_ne!(
            SourceKey::of(ip("192.0.2.1")),
            SourceKey::of(ip("192.0.2.2"))
        );
    }

    #[test]
    fn forwarded_addresses_are_ignored_unless_the_peer_is_trusted() {
        let t = cidrs(&["10.0.0.0/8"]);
        let peer = ip("203.0.113.7");
        assert_eq!(
            client_address(peer, &["for=1.2.3.4"], &["1.2.3.4"], &t),
            peer
        );
        assert_eq!(client_address(peer, &[], &["1.2.3.4"], &[]), peer);
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let t = cidrs(&["10.0.0.0/8"]);
        let proxy = ip("10.0.0.2");
        // A client-supplied entry on the left is not believed over the proxy's own.
        assert_eq!(
            client_address(proxy, &[], &["6.6.6.6, 198.51.100.4, 10.0.0.9"], &t),
            ip("198.51.100.4")
        );
        assert_eq!(
            client_address(proxy, &[], &["6.6.6.6", "198.51.100.4:5555"], &t),
            ip("198.51.100.4")
        );
        assert_eq!(
            client_address(
                proxy,
                &[r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https"#],
                &["9.9.9.9"],
                &t
            ),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            client_address(proxy, &["For=\"198.51.100.4:80\";by=10.0.0.2"], &[], &t),
            ip("198.51.100.4")
        );
        // No header: the proxy itself.
        assert_eq!(client_address(proxy, &[], &[], &t), proxy);
        // Every hop trusted: the leftmost.
        assert_eq!(
            client_address(proxy, &[], &["10.1.1.1, 10.2.2.2"], &t),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn an_unusable_hop_ends_the_walk_at_the_last_trusted_address() {
        let t = cidrs(&["10.0.0.0/8"]);
        let proxy = ip("10.0.0.2");
        assert_eq!(client_address(proxy, &["for=unknown"], &[], &t), proxy);
        assert_eq!(
            client_address(proxy, &["for=_hidden, for=10.0.0.3"], &[], &t),
            ip("10.0.0.3")
        );
        assert_eq!(client_address(proxy, &[], &["1.2.3.4, garbage"], &t), proxy);
        assert_eq!(client_address(proxy, &["proto=https"], &[], &t), proxy);
        assert_eq!(client_address(proxy, &["for=\"[::1\""], &[], &t), proxy);
    }
}
