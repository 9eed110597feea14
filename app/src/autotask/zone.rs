//! The zone URL zone discovery answers is a partner-supplied host in disguise: whoever answers discovery (or sits on
//! the path to it) picks where the API user's secret is sent next. So it is checked like a ConnectWise site
//! (`crate::connectwise_site`), and more narrowly: in production only `https` on the standard port and Autotask's
//! own domain (`*.autotask.net`); the client's guarded resolver then refuses the name if it resolves to a private,
//! local or reserved address. Dev mode also allows `http` and loopback, so the sandbox works.

use std::net::IpAddr;

use reqwest::Url;

use crate::connectwise_site::{SiteMode, ip_allowed};

/// The domain every Autotask zone lives under (`webservices5.autotask.net`, `webservices15.autotask.net`, ...).
pub const AUTOTASK_DOMAIN: &str = "autotask.net";

/// Checks a zone URL (`https://webservicesN.autotask.net/ATServicesRest/`) and returns it with a trailing `/`, so
/// `V1.0/Tickets` joins under it. The reason is a sentence fragment for [`super::AtError::SiteRefused`].
pub fn validate_zone_url(url: &str, mode: SiteMode) -> Result<Url, String> {
    let mut parsed = Url::parse(url.trim()).map_err(|_| format!("the zone address {url:?} is not a valid URL."))?;
    match parsed.scheme() {
        "https" => {}
        "http" if mode == SiteMode::Dev => {}
        other => return Err(format!("the zone address uses {other}://; Autotask is only reached over https.")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the zone address contains credentials.".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("the zone address has a query or fragment.".into());
    }
    let allowed = match parsed.host() {
        Some(url::Host::Domain(host)) => {
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            is_autotask_host(&host) || (mode == SiteMode::Dev && host == "localhost")
        }
        Some(url::Host::Ipv4(ip)) => mode == SiteMode::Dev && ip.is_loopback() && ip_allowed(IpAddr::V4(ip), mode),
        Some(url::Host::Ipv6(ip)) => mode == SiteMode::Dev && ip.is_loopback() && ip_allowed(IpAddr::V6(ip), mode),
        None => false,
    };
    if !allowed {
        let host = parsed.host_str().unwrap_or_default();
        return Err(format!("{host} is not an Autotask address (*.{AUTOTASK_DOMAIN})."));
    }
    if mode == SiteMode::Production && parsed.port().is_some_and(|p| p != 443) {
        return Err("the zone address names a port other than 443.".into());
    }
    if !parsed.path().ends_with('/') {
        let path = format!("{}/", parsed.path());
        parsed.set_path(&path);
    }
    Ok(parsed)
}

/// `webservices5.autotask.net` and the like: a valid name under `autotask.net` (not `autotask.net.evil.com`, not
/// `evilautotask.net`).
fn is_autotask_host(host: &str) -> bool {
    host.strip_suffix(AUTOTASK_DOMAIN).and_then(|rest| rest.strip_suffix('.')).is_some_and(|sub| {
        !sub.is_empty()
            && sub.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    })
}

/// The first label of the zone's host, as partners know it (`webservices5`).
pub fn zone_host_label(url: &Url) -> String {
    url.host_str().unwrap_or_default().split('.').next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_allows_https_autotask_zones_only() {
        let prod = |u: &str| validate_zone_url(u, SiteMode::Production);
        let url = prod("https://webservices5.autotask.net/ATServicesRest").expect("zone");
        assert_eq!(url.as_str(), "https://webservices5.autotask.net/ATServicesRest/");
        assert_eq!(zone_host_label(&url), "webservices5");
        prod("https://WebServices15.AutoTask.net/atservicesrest/").expect("case does not matter");
        prod("https://webservices2.autotask.net:443/ATServicesRest/").expect("the https port written out");
        for (bad, needle) in [
            ("http://webservices5.autotask.net/ATServicesRest/", "https"),
            ("https://webservices5.autotask.net.evil.example/ATServicesRest/", "not an Autotask address"),
            ("https://evilautotask.net/ATServicesRest/", "not an Autotask address"),
            ("https://autotask.net/ATServicesRest/", "not an Autotask address"),
            ("https://169.254.169.254/latest/", "not an Autotask address"),
            ("https://127.0.0.1/ATServicesRest/", "not an Autotask address"),
            ("https://localhost/ATServicesRest/", "not an Autotask address"),
            ("https://u:p@webservices5.autotask.net/", "credentials"),
            ("https://webservices5.autotask.net:8443/", "port"),
            ("https://webservices5.autotask.net/x?y=1", "query"),
            ("ftp://webservices5.autotask.net/", "ftp"),
            ("not a url", "not a valid URL"),
        ] {
            let err = prod(bad).expect_err(bad);
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn dev_also_allows_loopback_over_http() {
        let dev = |u: &str| validate_zone_url(u, SiteMode::Dev);
        assert_eq!(
            dev("http://127.0.0.1:3006/ATServicesRest/").expect("sandbox").as_str(),
            "http://127.0.0.1:3006/ATServicesRest/"
        );
        dev("http://localhost:3006/ATServicesRest").expect("localhost");
        dev("https://webservices5.autotask.net/ATServicesRest/").expect("a real zone");
        assert!(dev("http://10.0.0.1/ATServicesRest/").is_err(), "private addresses never");
        assert!(dev("https://webservices5.evil.example/ATServicesRest/").is_err(), "other domains never");
    }
}
