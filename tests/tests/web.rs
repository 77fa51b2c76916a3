//! The node's and the hub's HTTP servers as a browser meets them: a request naming another
//! site's host (DNS rebinding: a page elsewhere resolving its own name to 127.0.0.1) is refused,
//! and every answer carries headers that keep the pages from being framed or running anything
//! but their own script.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;

use tests::bins;
use tests::chain::Chain;

/// GET `path` from the server at `base` (http://ip:port) with the Host header `host`: the status
/// and the lower-cased header block.
fn get_as_host(base: &str, path: &str, host: &str) -> (u16, String) {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let head = answer.split("\r\n\r\n").next().unwrap().to_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head)
}

#[test]
fn another_sites_host_is_refused_and_pages_cannot_be_framed() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let node = chain.node("S001");
    for base in [&node.client.base, &hub.client.base] {
        let own = base.trim_start_matches("http://");
        for (host, status) in [
            (own, 200),
            ("localhost", 200),
            ("rebind.evil.example", 421),
            ("127.0.0.1.evil.example:8080", 421),
        ] {
            let (got, head) = get_as_host(base, "/", host);
            assert_eq!(got, status, "{base} as {host}: {head}");
            assert!(head.contains("x-frame-options: deny"), "{head}");
            assert!(
                head.contains("content-security-policy: default-src 'self'"),
                "{head}"
            );
            assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        }
        let (got, _) = get_as_host(base, "/api/v1/health", "rebind.evil.example");
        assert_eq!(got, 421, "{base}: the API too");
        // A method a route does not take: an error body like every other, not an empty one.
        let wrong = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        )
        .put(format!("{base}/api/v1/health"))
        .send("{}")
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
        assert!(
            wrong.contains("\"code\":\"method_not_allowed\""),
            "{base}: {wrong}"
        );
    }
    node.kill();
    hub.kill();
}
