//! What the node's and the hub's HTTP servers require of every request and add to every
//! answer, as rules both share (the axum middleware around them is each server's own).

/// The client's address, put on each request by the server loop (logins count failures per
/// address, so one client cannot lock a member of staff out of every till).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub core::net::IpAddr);

/// What one HTTP server lets its clients hold (`[http]` in node.toml and hub.toml): the
/// connections open at once (one more is closed at once, so idle sockets cannot use up the
/// process's file descriptors), and how long a connection may take to send a request's headers,
/// counted again while it sits idle between requests (a slow or silent client is closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimits {
    pub connections_max: usize,
    /// Connections one client address may hold at once (a browser opens about six; an office
    /// behind one address has a few dozen).
    pub connections_per_address_max: usize,
    pub header_read_secs: u64,
    /// How long one request may take, its body read and its answer made (408 after that).
    pub request_secs: u64,
    /// How long an answer may wait for the client to read it before the connection is closed
    /// (a client that stops reading cannot hold its connection).
    pub write_secs: u64,
}

impl Default for HttpLimits {
    /// Below the 1,024 file descriptors a process gets by default on Linux, with room for the
    /// store's files and sockets.
    fn default() -> Self {
        HttpLimits {
            connections_max: 512,
            connections_per_address_max: 128,
            header_read_secs: 20,
            request_secs: 60,
            write_secs: 20,
        }
    }
}

impl HttpLimits {
    /// Refuses limits that would close every connection or none.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=100_000).contains(&self.connections_max) {
            return Err("http.connections_max must be from 1 to 100000".into());
        }
        if !(1..=self.connections_max).contains(&self.connections_per_address_max) {
            return Err(
                "http.connections_per_address_max must be from 1 to connections_max".into(),
            );
        }
        let secs = [self.header_read_secs, self.request_secs, self.write_secs];
        if !secs.iter().all(|s| (1..=3_600).contains(s)) {
            return Err(
                "http.header_read_secs, request_secs and write_secs must be from 1 to 3600".into(),
            );
        }
        Ok(())
    }
}

/// The error statuses either server may answer any call with, each with the error body, for
/// their OpenAPI documents (a route's own description says which codes it gives).
pub const ERROR_STATUSES: &[(u16, &str)] = &[
    (
        400,
        "the request is malformed, or a field or parameter is not valid",
    ),
    (401, "no login, or the session expired or was ended"),
    (403, "the staff member's role may not do this"),
    (404, "no such record, or no such file"),
    (405, "the route does not take this method"),
    (408, "the request took too long"),
    (
        409,
        "the request conflicts with the state (a key reused with another body, a transfer \
           in another state, rights held elsewhere)",
    ),
    (413, "the body is over the limit"),
    (414, "the URI is too long"),
    (421, "the Host is not this server's"),
    (
        422,
        "the request is well formed but refused (a rule, a balance, a limit)",
    ),
    (423, "locked after too many wrong passwords"),
    (429, "asked too often: wait before asking again"),
    (503, "storage or headquarters is unavailable just now"),
];

/// The scripts a page loads (`<script src="/ui/NAME">`), in order: each server's test checks
/// it serves exactly these.
pub fn page_scripts(html: &str) -> Vec<&str> {
    html.split("<script src=\"/ui/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect()
}

/// Headers on every answer: the pages run only their own script and cannot be framed (no
/// clickjacking of a till or of headquarters), and nothing is sniffed or referred.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
];

/// The error body for a status the router answers itself with an empty body (a method a route
/// does not take, a body over the limit): `(code, 中文说明, English detail)`.
pub fn router_error(status: u16) -> Option<(&'static str, &'static str, &'static str)> {
    match status {
        405 => Some((
            "method_not_allowed",
            "该地址不支持此操作",
            "this route does not take that method",
        )),
        408 => Some((
            "request_timeout",
            "请求超时",
            "the request took longer than the server allows",
        )),
        413 => Some((
            "payload_too_large",
            "请求内容过大",
            "the request body is over the limit",
        )),
        414 => Some((
            "uri_too_long",
            "请求地址过长",
            "the request URI is too long",
        )),
        _ => None,
    }
}

/// Whether a request's `Host` may reach this server: an IP address (any: a page served from
/// another site names a domain, so DNS rebinding cannot produce one), `localhost`, or one of
/// the `names` the server is configured with; with or without a port. A request without a
/// Host (HTTP/1.0 from a tool on this PC) is let through.
pub fn host_allowed(host: Option<&str>, names: &[String]) -> bool {
    let Some(host) = host else {
        return true;
    };
    let host = host.trim();
    // "[::1]:8080", "[::1]", "127.0.0.1:8080", "till.example:8080", "till.example"
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, _)) => return v6.parse::<core::net::Ipv6Addr>().is_ok(),
            None => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            match port.chars().all(|c| c.is_ascii_digit()) {
                true => name,
                false => host,
            }
        }),
    };
    name.parse::<core::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_localhost_and_configured_names_reach_the_server() {
        let names = vec!["pos.chain.example".to_owned()];
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "192.168.1.20:8080",
            "[::1]:8090",
            "localhost:8080",
            "LOCALHOST",
            "pos.chain.example:8080",
        ] {
            assert!(host_allowed(Some(ok), &names), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost.evil.example:80",
            "[::1",
            "",
        ] {
            assert!(!host_allowed(Some(bad), &names), "{bad}");
        }
        assert!(host_allowed(None, &[]));
    }
}
