//! Who is calling (server only): the client address behind a configured number of reverse proxies, and the form it
//! is rate-limited by.
//!
//! `X-Forwarded-For` is a list each proxy appends the address it received the request from to. Only the entries
//! added by our own proxies can be trusted, and they are the rightmost ones: with `hops` trusted proxies the client
//! is the entry `hops` places from the right. Anything to its left was sent by the client and may be forged. A
//! request with fewer entries than that did not come through the proxies, and is keyed by its socket peer.

use std::net::{IpAddr, Ipv6Addr};

/// The client's address: the `hops`-th `X-Forwarded-For` entry from the right (over every such header, in order),
/// or the socket peer when `hops` is 0 or the list is too short or that entry is not an address.
pub fn resolve<'a>(
    hops: usize,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    if hops == 0 {
        return peer;
    }
    let entries: Vec<&str> =
        forwarded_for.into_iter().flat_map(|value| value.split(',')).map(str::trim).filter(|e| !e.is_empty()).collect();
    if entries.len() < hops {
        return peer;
    }
    parse_entry(entries[entries.len() - hops]).or(peer)
}

/// The client address of a request (its `X-Forwarded-For` headers and the socket peer axum recorded).
pub fn from_parts(hops: usize, parts: &http::request::Parts) -> Option<IpAddr> {
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
    let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok());
    resolve(hops, forwarded, peer)
}

/// One `X-Forwarded-For` entry: an IPv4 or IPv6 address, possibly with a port (`1.2.3.4:5678`, `[::1]:443`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse::<Ipv6Addr>().ok()).map(IpAddr::V6);
    }
    entry.rsplit_once(':').and_then(|(ip, port)| port.parse::<u16>().ok().and(ip.parse::<IpAddr>().ok()))
}

/// The form an address is counted under: an IPv4 address as it is (IPv4-mapped IPv6 included), an IPv6 address by
/// its /64 — one subscriber's whole allocation, which they can rotate through freely.
pub fn limit_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The address shown to a partner (the Activity page) and logged: the resolved address, or "unknown".
pub fn display(ip: Option<IpAddr>) -> String {
    ip.map(|ip| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        IpAddr::V4(v4) => v4.to_string(),
    })
    .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(resolve(0, ["6.6.6.6"], Some(ip("10.0.0.1"))), Some(ip("10.0.0.1")));
    }

    #[test]
    fn the_client_is_counted_from_the_right() {
        // One proxy appended the real client (203.0.113.7); the client forged the entry on the left.
        assert_eq!(resolve(1, ["6.6.6.6, 203.0.113.7"], Some(ip("10.0.0.1"))), Some(ip("203.0.113.7")));
        // Two proxies: the second appended the first proxy's address.
        assert_eq!(resolve(2, ["6.6.6.6, 203.0.113.7, 10.0.0.2"], Some(ip("10.0.0.1"))), Some(ip("203.0.113.7")));
        // Several headers are one list, in order.
        assert_eq!(resolve(1, ["6.6.6.6", "203.0.113.7"], None), Some(ip("203.0.113.7")));
        // Ports and brackets.
        assert_eq!(resolve(1, ["203.0.113.7:5555"], None), Some(ip("203.0.113.7")));
        assert_eq!(resolve(1, ["[2001:db8::1]:443"], None), Some(ip("2001:db8::1")));
    }

    #[test]
    fn a_short_or_garbled_list_falls_back_to_the_peer() {
        assert_eq!(resolve(2, ["203.0.113.7"], Some(ip("10.0.0.1"))), Some(ip("10.0.0.1")));
        assert_eq!(resolve(1, Vec::<&str>::new(), Some(ip("10.0.0.1"))), Some(ip("10.0.0.1")));
        assert_eq!(resolve(1, ["not-an-ip"], Some(ip("10.0.0.1"))), Some(ip("10.0.0.1")));
    }

    #[test]
    fn ipv6_is_keyed_by_its_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(limit_key(ip("2001:db8:1:2:bbbb:cccc:dddd:eeee")), "2001:db8:1:2::/64");
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), "2001:db8:1:2::/64");
        assert_eq!(limit_key(ip("::ffff:203.0.113.7")), "203.0.113.7");
        assert_eq!(limit_key(ip("203.0.113.7")), "203.0.113.7");
    }
}
