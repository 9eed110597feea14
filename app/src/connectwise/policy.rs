//! Outbound safety: the site a partner types is untrusted, so every URL the client calls (discovery, API, each
//! page link and each redirect) is checked, and every host name is resolved by [`GuardedResolver`], which refuses a
//! name when any of its addresses is not allowed. The addresses checked are the very ones reqwest connects to, so a
//! name cannot resolve to a public address for the check and a private one for the connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::error::CwError;
use crate::connectwise_site::{SiteMode, ip_allowed};

/// What may be called: `Production` allows `https` and public addresses only; `Dev` also `http` and loopback.
#[derive(Debug, Clone)]
pub struct SitePolicy {
    mode: SiteMode,
    /// Fixed answers for names (tests); still subject to the address rules.
    static_hosts: Arc<HashMap<String, Vec<IpAddr>>>,
}

/// A host name refused because of an address it resolves to (found in reqwest's error chain).
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {addr}, a private, local or reserved address")]
pub struct RefusedAddress {
    pub host: String,
    pub addr: IpAddr,
}

impl SitePolicy {
    pub fn production() -> Self {
        Self { mode: SiteMode::Production, static_hosts: Arc::default() }
    }

    pub fn dev() -> Self {
        Self { mode: SiteMode::Dev, static_hosts: Arc::default() }
    }

    pub fn mode(&self) -> SiteMode {
        self.mode
    }

    /// Answers `name` with `addrs` instead of asking DNS (tests; the addresses are still checked).
    pub fn with_static_host(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        Arc::make_mut(&mut self.static_hosts).insert(name.to_ascii_lowercase(), addrs.to_vec());
        self
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        ip_allowed(ip, self.mode)
    }

    /// Checks a URL before it is requested: scheme, no credentials, and an IP-literal host (which no resolver sees).
    pub fn check_url(&self, url: &Url) -> Result<(), CwError> {
        match url.scheme() {
            "https" => {}
            "http" if self.mode == SiteMode::Dev => {}
            other => return Err(CwError::SiteRefused { reason: format!("{other}:// is not allowed, use https.") }),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(CwError::SiteRefused { reason: "addresses with credentials are not allowed.".into() });
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) if !self.allows_ip(IpAddr::V4(ip)) => Err(refused_literal(IpAddr::V4(ip))),
            Some(url::Host::Ipv6(ip)) if !self.allows_ip(IpAddr::V6(ip)) => Err(refused_literal(IpAddr::V6(ip))),
            Some(_) => Ok(()),
            None => Err(CwError::SiteRefused { reason: "the address has no host.".into() }),
        }
    }

    /// Resolves `host` and checks every address (used by the resolver, and directly by tests).
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let addrs: Vec<SocketAddr> = match self.static_hosts.get(&host) {
            Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect(),
            None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
        };
        if addrs.is_empty() {
            return Err(format!("{host} has no address").into());
        }
        // One refused address refuses the name: a mixed answer is how rebinding attacks start.
        if let Some(bad) = addrs.iter().find(|a| !self.allows_ip(a.ip())) {
            return Err(Box::new(RefusedAddress { host, addr: bad.ip() }));
        }
        Ok(addrs)
    }
}

fn refused_literal(ip: IpAddr) -> CwError {
    CwError::SiteRefused { reason: format!("{ip} is a private, local or reserved address.") }
}

/// The reqwest resolver that applies a [`SitePolicy`] to every connection.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: SitePolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = policy.resolve(&host).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Finds a [`RefusedAddress`] in an error's source chain.
pub fn refused_address<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a RefusedAddress> {
    let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<RefusedAddress>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}
