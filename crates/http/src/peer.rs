//! Who is on the other end of a request: the client's address (for the login and sign-up
//! throttles) and whether it came over TLS (for `Secure` cookies and the origin check).
//!
//! The address is the TCP peer's, which the listener records
//! (`into_make_service_with_connect_info::<SocketAddr>()`). Only when the peer is a configured
//! trusted proxy (`HttpConfig::trusted_proxies`, `tix serve --trusted-proxy`) do its headers
//! count: the last hop of `X-Forwarded-For` (the address the proxy itself saw; earlier hops are
//! whatever the client wrote) and `X-Forwarded-Proto`. Without a recorded peer (a router driven
//! without a socket, in tests) every request counts as `0.0.0.0`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};

use crate::{AppState, HttpConfig};

/// The client of a request, as far as this node can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client's address: the peer's, or the trusted proxy's last forwarded hop.
    pub ip: IpAddr,
    /// True when the request reached tix over TLS (`--cookie-secure`, or
    /// `X-Forwarded-Proto: https` from a trusted proxy).
    pub secure: bool,
}

/// Set once the missing-peer warning was logged.
static WARNED_NO_PEER: AtomicBool = AtomicBool::new(false);

impl Client {
    /// Works the client out from a request's headers and extensions.
    pub fn of(headers: &HeaderMap, extensions: &Extensions, config: &HttpConfig) -> Client {
        let peer = match extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(addr)) => addr.ip().to_canonical(),
            None => {
                if !WARNED_NO_PEER.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "no peer address recorded for requests: every client shares one \
                         login and sign-up budget (serve with connect info)"
                    );
                }
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            }
        };
        let trusted = config.trusted_proxies.contains(&peer);
        let ip = match trusted.then(|| forwarded_for(headers)).flatten() {
            Some(ip) => ip,
            None => peer,
        };
        let forwarded_https = trusted
            && last_value(headers, "x-forwarded-proto")
                .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        Client {
            ip,
            secure: config.cookie_secure || forwarded_https,
        }
    }
}

/// Returns the last comma-separated value of the last `name` header.
fn last_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    let last = value.rsplit(',').next()?.trim();
    (!last.is_empty()).then_some(last)
}

/// Returns the last hop of `X-Forwarded-For`: an address, or `address:port`.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let hop = last_value(headers, "x-forwarded-for")?;
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client::of(&parts.headers, &parts.extensions, &state.config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request(peer: &str, headers: &[(&'static str, &'static str)]) -> (HeaderMap, Extensions) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_static(v));
        }
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        (map, extensions)
    }

    // A trusted proxy's last X-Forwarded-For hop and X-Forwarded-Proto count; the same headers
    // from anyone else are ignored; a missing peer is 0.0.0.0.
    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let config = HttpConfig {
            trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
            ..HttpConfig::default()
        };
        let forwarded = [
            ("x-forwarded-for", "6.6.6.6, 203.0.113.7"),
            ("x-forwarded-proto", "https"),
        ];
        let (h, e) = request("127.0.0.1:5000", &forwarded);
        let via_proxy = Client::of(&h, &e, &config);
        assert_eq!(via_proxy.ip, "203.0.113.7".parse::<IpAddr>().unwrap());
        assert!(via_proxy.secure);
        let (h, e) = request("198.51.100.1:5000", &forwarded);
        let direct = Client::of(&h, &e, &config);
        assert_eq!(direct.ip, "198.51.100.1".parse::<IpAddr>().unwrap());
        assert!(!direct.secure);
        let none = Client::of(&HeaderMap::new(), &Extensions::new(), &config);
        assert_eq!(none.ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let secure = HttpConfig {
            cookie_secure: true,
            ..HttpConfig::default()
        };
        assert!(Client::of(&HeaderMap::new(), &Extensions::new(), &secure).secure);
    }
}
