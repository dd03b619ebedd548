//! The one reader of `host[:port]` authorities, as they come in a `Host`
//! header, an absolute-form request target (`GET http://host/path`) and an
//! `Origin`, and the one definition of a loopback name.
//!
//! Strict on purpose: an authority with userinfo (`127.0.0.1:80@evil`), a
//! port that is not digits, or any path, query or space is not an
//! authority, so no two readers can disagree on which host it names.

use std::net::{IpAddr, Ipv6Addr};

/// The host of `authority` (without brackets for IPv6), or `None` when it
/// is not a plain `host[:port]`.
pub fn host_of(authority: &str) -> Option<&str> {
    if authority.contains(['@', '/', '\\', '?', '#', ' ', '\t', '%']) {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (v6, after) = bracketed.split_once(']')?;
            v6.parse::<Ipv6Addr>().ok()?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (v6, port)
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    // RFC 3986: `port = *DIGIT`, so `host:` is a host without a port.
    let port_ok = port.is_none_or(|p| {
        p.is_empty()
            || (p.len() <= 5
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|n| n <= 65535))
    });
    (!host.is_empty() && port_ok).then_some(host)
}

/// Returns true if and only if `host` names this machine's loopback
/// interface: `localhost`, any 127.0.0.0/8 address, or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host of an `Origin` (`http://` or `https://`, any port), or `None`
/// for any other scheme, `null`, or a malformed origin.
pub fn origin_host(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    host_of(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        for (authority, host) in [
            ("127.0.0.1:7878", Some("127.0.0.1")),
            ("localhost", Some("localhost")),
            ("[::1]:9", Some("::1")),
            ("[::1]", Some("::1")),
            ("example.com:", Some("example.com")),
            ("127.0.0.1:80@evil.example", None),
            ("user@localhost", None),
            ("localhost:http", None),
            ("localhost:99999", None),
            ("localhost/x", None),
            ("[::1]x", None),
            ("[evil]:80", None),
            (":80", None),
            ("", None),
        ] {
            assert_eq!(host_of(authority), host, "{authority}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for ok in ["localhost", "LOCALHOST", "127.0.0.1", "127.5.6.7", "::1"] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost.evil.example",
            "128.0.0.1",
            "::2",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn origins() {
        for (origin, host) in [
            ("http://localhost:6274", Some("localhost")),
            ("https://localhost", Some("localhost")),
            ("https://[::1]:8443", Some("::1")),
            ("HTTP://127.0.0.2", Some("127.0.0.2")),
            ("file://localhost", None),
            ("null", None),
            ("http://localhost/path", None),
            ("http://evil.example@localhost", None),
        ] {
            assert_eq!(origin_host(origin), host, "{origin}");
        }
    }
}
