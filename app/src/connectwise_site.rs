//! The ConnectWise site and company ID a partner types, validated: pure code shared by the browser (the wizard shows
//! the message as the partner types) and the server (the client refuses what this refuses).
//!
//! Also the address classification behind the outbound-safety rules: which IP addresses are publicly routable.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How strict the rules are. `Production` allows only `https` on the standard port and public addresses; `Dev` also
/// allows `http`, any port, single-label names and loopback, so the bundled sandbox works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SiteMode {
    Dev,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A validated site: scheme, host (lower case; an IPv6 literal without brackets) and an explicit port if any.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Site {
    pub scheme: Scheme,
    pub host: String,
    pub port: Option<u16>,
}

impl Site {
    /// `https://host[:port]`, without a trailing slash.
    pub fn origin(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.port {
            Some(port) => format!("{}://{}:{}", self.scheme.as_str(), host, port),
            None => format!("{}://{}", self.scheme.as_str(), host),
        }
    }

    /// The host as an IP address when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin())
    }
}

/// Why a site was refused; `Display` is the sentence the wizard shows under the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiteError {
    #[error("Enter your ConnectWise site, for example na.myconnectwise.net.")]
    Empty,
    #[error("Enter the site only, without spaces, for example na.myconnectwise.net.")]
    Whitespace,
    #[error("The site must start with https:// (or nothing at all); \"{0}\" is not supported.")]
    Scheme(String),
    #[error("ConnectWise must be reached over https: use https:// instead of http://.")]
    InsecureScheme,
    #[error("Remove the user name and password from the site: enter them in the credential fields instead.")]
    Credentials,
    #[error("Enter the site host only, without a path, query or #fragment, for example na.myconnectwise.net.")]
    Path,
    #[error("\"{0}\" is not a valid port number.")]
    InvalidPort(String),
    #[error("ConnectWise sites answer on the standard HTTPS port: remove \":{0}\" from the site.")]
    OddPort(u16),
    #[error(
        "\"{0}\" is not a valid host name: use letters, digits, dots and hyphens, for example na.myconnectwise.net."
    )]
    InvalidHost(String),
    #[error("Enter the full host name of the site, for example na.myconnectwise.net, not \"{0}\".")]
    NotFullyQualified(String),
    #[error("{0} is a private, local or reserved address: ConnectWise must be reachable on the internet.")]
    NonPublicAddress(IpAddr),
}

/// Ports a production site may name explicitly (the default HTTPS port, written out).
const PRODUCTION_PORTS: &[u16] = &[443];

/// Validates the site field: a bare host (`na.myconnectwise.net`), optionally with `https://` and a trailing `/`.
pub fn validate_site(input: &str, mode: SiteMode) -> Result<Site, SiteError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(SiteError::Empty);
    }
    if input.chars().any(char::is_whitespace) {
        return Err(SiteError::Whitespace);
    }
    let (scheme, rest) = match input.split_once("://") {
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "https" => (Scheme::Https, rest),
            "http" if mode == SiteMode::Dev => (Scheme::Http, rest),
            "http" => return Err(SiteError::InsecureScheme),
            other => return Err(SiteError::Scheme(other.to_string())),
        },
        None => (Scheme::Https, input),
    };
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(SiteError::Credentials);
    }
    if !(tail.is_empty() || tail == "/") {
        return Err(SiteError::Path);
    }
    let (host, port) = split_host_port(authority)?;
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Err(SiteError::Empty);
    }
    if let Some(port) = port
        && mode == SiteMode::Production
        && !PRODUCTION_PORTS.contains(&port)
    {
        return Err(SiteError::OddPort(port));
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => {
            if !ip_allowed(ip, mode) {
                return Err(SiteError::NonPublicAddress(ip));
            }
        }
        Err(_) => {
            if !is_valid_hostname(&host) {
                return Err(SiteError::InvalidHost(host));
            }
            if mode == SiteMode::Production && (!host.contains('.') || is_local_name(&host)) {
                return Err(SiteError::NotFullyQualified(host));
            }
        }
    }
    Ok(Site { scheme, host, port })
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), SiteError> {
    let parse_port = |p: &str| -> Result<Option<u16>, SiteError> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(SiteError::InvalidPort(p.to_string())),
            Ok(port) => Ok(Some(port)),
        }
    };
    if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or_else(|| SiteError::InvalidHost(authority.to_string()))?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(SiteError::InvalidHost(host.to_string()));
        }
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host, parse_port(p)?)),
                None => Err(SiteError::InvalidHost(authority.to_string())),
            },
        };
    }
    match authority.split_once(':') {
        None => Ok((authority, None)),
        Some((host, port)) if !port.contains(':') => Ok((host, parse_port(port)?)),
        // An IPv6 address without brackets.
        Some(_) => Err(SiteError::InvalidHost(authority.to_string())),
    }
}

fn is_valid_hostname(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        // A name made of digits and dots only is a malformed address, not a host.
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn is_local_name(host: &str) -> bool {
    host == "localhost"
        || [".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan"].iter().any(|s| host.ends_with(s))
}

/// Why a company ID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompanyIdError {
    #[error("Enter the company ID you sign in to ConnectWise with, for example acme.")]
    Empty,
    #[error("The company ID is at most 50 characters.")]
    TooLong,
    #[error("The company ID contains only letters, digits, dots, hyphens and underscores.")]
    Characters,
}

/// Validates the login company ID (the "Company" box of ConnectWise's sign-in page).
pub fn validate_company_id(input: &str) -> Result<String, CompanyIdError> {
    let id = input.trim();
    if id.is_empty() {
        return Err(CompanyIdError::Empty);
    }
    if id.chars().count() > 50 {
        return Err(CompanyIdError::TooLong);
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
        return Err(CompanyIdError::Characters);
    }
    Ok(id.to_string())
}

/// Whether an address may be connected to in this mode: public addresses always, loopback in dev mode only.
pub fn ip_allowed(ip: IpAddr, mode: SiteMode) -> bool {
    is_public_ip(ip) || (mode == SiteMode::Dev && is_loopback(ip))
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Publicly routable unicast: not loopback, private (RFC 1918), shared (CGNAT), link-local (169.254.169.254, the
/// cloud metadata address, included), unspecified, broadcast, multicast, documentation, benchmarking or reserved;
/// for IPv6 also not unique-local, site-local or link-local, and IPv4-embedding forms are judged by the IPv4 inside.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                          // "this network", 0.0.0.0 included
        || a == 10                                    // private
        || a == 127                                   // loopback
        || (a == 100 && (64..128).contains(&b))       // shared address space (CGNAT)
        || (a == 169 && b == 254)                     // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))        // private
        || (a == 192 && b == 0 && c == 0)             // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)             // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)           // 6to4 relay anycast
        || (a == 192 && b == 168)                     // private
        || (a == 198 && (b == 18 || b == 19))         // benchmarking
        || (a == 198 && b == 51 && c == 100)          // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)           // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96): the IPv4 address in the last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0) {
        return is_public_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
    }
    // 6to4 (2002::/16): the IPv4 address in bits 16..48.
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || s[0..6].iter().all(|x| *x == 0)  // IPv4-compatible (deprecated)
        || (s[0] & 0xff00) == 0xff00        // multicast
        || (s[0] & 0xfe00) == 0xfc00        // unique local
        || (s[0] & 0xffc0) == 0xfe80        // link-local
        || (s[0] & 0xffc0) == 0xfec0        // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0)    // Teredo
        || (s[0] == 0x0100 && s[1..4].iter().all(|x| *x == 0))) // discard-only
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod(input: &str) -> Result<Site, SiteError> {
        validate_site(input, SiteMode::Production)
    }

    #[test]
    fn accepts_hosts_with_or_without_https() {
        let site = prod("na.myconnectwise.net").expect("bare host");
        assert_eq!(site.origin(), "https://na.myconnectwise.net");
        assert_eq!(
            prod(" HTTPS://Api-EU.MyConnectWise.net/ ").expect("url").origin(),
            "https://api-eu.myconnectwise.net"
        );
        assert_eq!(prod("cw.example.com:443").expect("port 443").origin(), "https://cw.example.com:443");
        assert_eq!(prod("cw.example.com.").expect("trailing dot").host, "cw.example.com");
    }

    #[test]
    fn refuses_credentials_paths_and_odd_ports_with_a_clear_message() {
        assert_eq!(prod("https://user:pass@na.myconnectwise.net"), Err(SiteError::Credentials));
        assert_eq!(prod("user@na.myconnectwise.net"), Err(SiteError::Credentials));
        assert_eq!(prod("na.myconnectwise.net/v4_6_release/apis/3.0"), Err(SiteError::Path));
        assert_eq!(prod("na.myconnectwise.net?x=1"), Err(SiteError::Path));
        assert_eq!(prod("na.myconnectwise.net#top"), Err(SiteError::Path));
        assert_eq!(prod("na.myconnectwise.net:8080"), Err(SiteError::OddPort(8080)));
        assert_eq!(prod("na.myconnectwise.net:0"), Err(SiteError::InvalidPort("0".into())));
        assert_eq!(prod("na.myconnectwise.net:99999"), Err(SiteError::InvalidPort("99999".into())));
        assert_eq!(prod("http://na.myconnectwise.net"), Err(SiteError::InsecureScheme));
        assert_eq!(prod("ftp://na.myconnectwise.net"), Err(SiteError::Scheme("ftp".into())));
        assert_eq!(prod("na.my connectwise.net"), Err(SiteError::Whitespace));
        assert_eq!(prod(""), Err(SiteError::Empty));
        assert_eq!(prod("na_cw.example.com"), Err(SiteError::InvalidHost("na_cw.example.com".into())));
        assert_eq!(prod("-bad.example.com"), Err(SiteError::InvalidHost("-bad.example.com".into())));
        assert_eq!(prod("intranet"), Err(SiteError::NotFullyQualified("intranet".into())));
        assert_eq!(prod("localhost"), Err(SiteError::NotFullyQualified("localhost".into())));
        assert_eq!(prod("cw.corp.internal"), Err(SiteError::NotFullyQualified("cw.corp.internal".into())));
        for message in [SiteError::Credentials.to_string(), SiteError::OddPort(8080).to_string()] {
            assert!(message.ends_with('.'), "{message}");
        }
    }

    #[test]
    fn refuses_private_address_literals_in_production() {
        for literal in ["127.0.0.1", "10.0.0.1", "169.254.169.254", "192.168.1.10", "[::1]", "[fd00::1]", "0.0.0.0"] {
            assert!(matches!(prod(literal), Err(SiteError::NonPublicAddress(_))), "{literal}");
        }
        assert_eq!(prod("8.8.8.8").expect("public literal").host, "8.8.8.8");
        assert_eq!(prod("[2606:4700::1111]").expect("public v6").origin(), "https://[2606:4700::1111]");
        assert!(matches!(prod("1.2.3"), Err(SiteError::InvalidHost(_))));
    }

    #[test]
    fn dev_mode_allows_http_loopback_and_any_port() {
        let site = validate_site("http://127.0.0.1:3005", SiteMode::Dev).expect("sandbox");
        assert_eq!(site, Site { scheme: Scheme::Http, host: "127.0.0.1".into(), port: Some(3005) });
        assert_eq!(
            validate_site("localhost:3005", SiteMode::Dev).expect("localhost").origin(),
            "https://localhost:3005"
        );
        assert!(matches!(validate_site("10.1.2.3", SiteMode::Dev), Err(SiteError::NonPublicAddress(_))));
        assert_eq!(validate_site("http://a@127.0.0.1", SiteMode::Dev), Err(SiteError::Credentials));
    }

    #[test]
    fn classifies_addresses() {
        let public = ["8.8.8.8", "1.1.1.1", "100.128.0.1", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"];
        for ip in public {
            assert!(is_public_ip(ip.parse().expect("ip")), "{ip} is public");
        }
        let refused = [
            "127.0.0.1",
            "127.9.9.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:0101::1",
            "2001:db8::1",
            "fec0::1",
        ];
        for ip in refused {
            assert!(!is_public_ip(ip.parse().expect("ip")), "{ip} is not public");
        }
        assert!(ip_allowed("127.0.0.1".parse().expect("ip"), SiteMode::Dev));
        assert!(ip_allowed("::1".parse().expect("ip"), SiteMode::Dev));
        assert!(!ip_allowed("127.0.0.1".parse().expect("ip"), SiteMode::Production));
        assert!(!ip_allowed("169.254.169.254".parse().expect("ip"), SiteMode::Dev));
    }

    #[test]
    fn validates_company_ids() {
        assert_eq!(validate_company_id(" acme "), Ok("acme".into()));
        assert_eq!(validate_company_id("my_co.1-2"), Ok("my_co.1-2".into()));
        assert_eq!(validate_company_id(""), Err(CompanyIdError::Empty));
        assert_eq!(validate_company_id("a/b"), Err(CompanyIdError::Characters));
        assert_eq!(validate_company_id("acme corp"), Err(CompanyIdError::Characters));
        assert_eq!(validate_company_id(&"a".repeat(51)), Err(CompanyIdError::TooLong));
    }
}
