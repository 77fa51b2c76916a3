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

/// Reads from `stream` until the server closes it (or 10 s pass: a failure): what it sent.
fn read_until_closed(stream: &mut TcpStream) -> Result<String, std::io::Error> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(String::from_utf8_lossy(&got).into_owned());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Idle sockets cannot use up a till: one connection over `connections_max` is closed at once,
/// a connection that sends no request, or none after its last answer, is closed after
/// `header_read_secs`, and the till answers again once they are gone.
#[test]
fn surplus_and_idle_connections_are_closed() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol_with("S001", hub.sync, |config| {
        config.http = protocol::web::HttpLimits {
            connections_max: 3,
            connections_per_address_max: 3,
            header_read_secs: 1,
            ..Default::default()
        };
    });
    let node = chain.node("S001");
    let address = node.client.base.trim_start_matches("http://").to_owned();
    // One connection answered and then left open (keep-alive), two that never send anything.
    let mut answered = TcpStream::connect(&address).unwrap();
    write!(
        answered,
        "GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .unwrap();
    let mut silent: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    // The answered connection's response arrives before the surplus one is opened.
    answered
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut first = [0u8; 12];
    answered.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let mut surplus = TcpStream::connect(&address).unwrap();
    assert_eq!(
        read_until_closed(&mut surplus).unwrap(),
        "",
        "closed at once"
    );
    // The idle ones are closed by the server, the answered one after its answer.
    for stream in &mut silent {
        assert_eq!(read_until_closed(stream).unwrap(), "");
    }
    let rest = read_until_closed(&mut answered).unwrap();
    assert!(rest.contains("application/json"), "{rest}");
    let (status, _) = get_as_host(&node.client.base, "/api/v1/health", "localhost");
    assert_eq!(status, 200);
    node.kill();
    hub.kill();
}

/// A body over a route's limit is 413 with the error body, at headquarters as at the till.
#[test]
fn a_body_over_the_limit_is_413_at_headquarters() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    // A request that says its body is 3 MB and sends 2.5 MB of it (over the 2 MB limit): the
    // answer comes without the rest, so the client is not cut off while still writing.
    let address = hub.client.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /api/v1/staff HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         X-Staff-Id: hq-ops-1\r\nContent-Length: 3000000\r\n\r\n{{\"staff\": \""
    )
    .unwrap();
    stream.write_all(&vec![b'a'; 2_500_000]).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"code\":\"payload_too_large\""),
        "{answer}"
    );
    hub.kill();
}

/// The status of a GET of `path` on a new connection, or why there was none.
fn try_status(address: &str, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no answer: {answer:?}"))
}

/// A client that asks for answers and never reads them cannot hold its connection: once an
/// answer has waited `write_secs` for it, the connection is closed and its place is free.
#[test]
fn a_client_that_stops_reading_loses_its_connection() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol_with("S001", hub.sync, |config| {
        config.http = protocol::web::HttpLimits {
            connections_max: 1,
            connections_per_address_max: 1,
            header_read_secs: 60,
            request_secs: 60,
            write_secs: 1,
        };
    });
    let node = chain.node("S001");
    let address = node.client.base.trim_start_matches("http://").to_owned();
    assert_eq!(try_status(&address, "/api/v1/health"), Ok(200));
    // Two hundred pipelined requests for the OpenAPI document, none of the answers read.
    let mut stalled = TcpStream::connect(&address).unwrap();
    let requests = "GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(200);
    stalled.write_all(requests.as_bytes()).unwrap();
    // While it holds the only place, another client is turned away; then it is closed.
    let freed = tests::eventually(20, "the stalled connection to be closed", || {
        try_status(&address, "/api/v1/health").ok()
    });
    assert_eq!(freed, 200);
    drop(stalled);
    node.kill();
    hub.kill();
}
