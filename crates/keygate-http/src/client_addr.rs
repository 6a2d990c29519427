//! Which address a request comes from, for per-address limits and for what
//! the gateway tells its upstreams. The TCP peer is the answer unless the
//! peer is a proxy the operator listed in `trusted_proxies`: then
//! `X-Forwarded-For` is read from the right, past every trusted hop, and the
//! first address not trusted is the client (each proxy appends the address
//! it saw, so only the entries trusted proxies added can be believed).
//! `X-Real-IP`, `True-Client-IP` and the like are never read: any client
//! can send them.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Headers naming a client address that keygate neither reads nor passes
/// on: a client may forge any of them.
pub const CLIENT_ADDRESS_HEADERS: [&str; 7] = [
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-original-forwarded-for",
];

/// The proxies whose `X-Forwarded-For` is believed (CIDRs; none by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Each entry an address (`10.0.0.1`, `::1`) or a CIDR (`10.0.0.0/8`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "trusted_proxies: {e:?} is not an address or CIDR such as 10.0.0.0/8"
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: `peer` itself unless it is trusted.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        // Every X-Forwarded-For line, in order, read from the right.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // Garbage where an address should be: stop at the last
                // address a trusted proxy vouched for.
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return client;
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 (a dual-stack socket's view) is the
/// IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:443`,
/// `203.0.113.7:8080`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok().map(canonical);
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in xff {
            h.append("x-forwarded-for", line.parse().unwrap());
        }
        h.insert("x-real-ip", "6.6.6.6".parse().unwrap());
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_peers() {
        let none = TrustedProxies::default();
        let h = headers(&["1.1.1.1"]);
        assert_eq!(none.client_ip(ip("9.9.9.9"), &h), ip("9.9.9.9"));
        let lb = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert_eq!(lb.client_ip(ip("9.9.9.9"), &h), ip("9.9.9.9"));
        assert_eq!(lb.client_ip(ip("10.1.2.3"), &h), ip("1.1.1.1"));
        assert_eq!(lb.client_ip(ip("::1"), &h), ip("1.1.1.1"));
        assert_eq!(lb.client_ip(ip("::ffff:10.0.0.1"), &h), ip("1.1.1.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let lb = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        // The client forged the first entry; the trusted proxies appended the rest.
        let h = headers(&["6.6.6.6, 2.2.2.2", "10.0.0.5"]);
        assert_eq!(lb.client_ip(ip("10.0.0.9"), &h), ip("2.2.2.2"));
        let h = headers(&["[2001:db8::7]:443, 10.0.0.5"]);
        assert_eq!(lb.client_ip(ip("10.0.0.9"), &h), ip("2001:db8::7"));
        let h = headers(&["3.3.3.3:8080"]);
        assert_eq!(lb.client_ip(ip("10.0.0.9"), &h), ip("3.3.3.3"));
        // Garbage stops the walk at the last trusted hop's word.
        let h = headers(&["1.1.1.1, unknown, 10.0.0.5"]);
        assert_eq!(lb.client_ip(ip("10.0.0.9"), &h), ip("10.0.0.5"));
        // Only trusted hops: the leftmost of them.
        let h = headers(&["10.0.0.4"]);
        assert_eq!(lb.client_ip(ip("10.0.0.9"), &h), ip("10.0.0.4"));
        // No header: the proxy itself.
        assert_eq!(
            lb.client_ip(ip("10.0.0.9"), &HeaderMap::new()),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn entries_are_addresses_or_cidrs() {
        assert!(TrustedProxies::parse(&["10.0.0.0/8".into(), "192.168.1.1".into()]).is_ok());
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["example.com".into()]).is_err());
    }
}
