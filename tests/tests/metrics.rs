//! `GET /metrics` on a real node and hub: requests counted by route (the pattern, never a
//! member's id), the journal's groups and flushes, sync, what headquarters ingested, and the
//! stores connected — as Prometheus reads them, and with no personal data in them.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::json;
use tests::chain::{Chain, wait_online};
use tests::{Client, bins, eventually};

/// The value of the sample named `name` with exactly these labels, if it is there.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = match labels.is_empty() {
        true => format!("{name} "),
        false => format!("{name}{{{labels}}} "),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

fn scrape(client: &Client) -> String {
    let answer = client.get("/metrics");
    assert_eq!(answer.status, 200);
    answer.body.as_str().unwrap().to_owned()
}

#[test]
fn metrics_count_requests_by_route_flushes_sync_and_ingest_without_personal_data() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let node = chain.node("S001");
    wait_online(&[&node.client]);
    let c = &node.client;
    let registered = c.post(
        "/api/v1/members",
        Some("reg-metrics-0001"),
        &json!({"name": "吴九", "phone": "13912340009"}).to_string(),
    );
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    let member = registered.body["member_id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(c.get(&format!("/api/v1/members/{member}")).status, 200);
    }
    let sold = c.post(
        "/api/v1/checkouts/quick",
        Some("till-metrics-0001"),
        &json!({"member_id": member, "amount": {"amount": "12.50"},
                "cash_tendered": {"amount": "20"}})
        .to_string(),
    );
    assert_eq!(sold.status, 201, "{:?}", sold.body);

    let text = scrape(c);
    let route = |method: &str, route: &str, status: u16| {
        sample(
            &text,
            "node_http_requests_total",
            &format!("method=\"{method}\",route=\"{route}\",status=\"{status}\""),
        )
    };
    assert_eq!(
        route("GET", "/api/v1/members/{member_id}", 200),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        route("POST", "/api/v1/checkouts/quick", 201),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("node_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    // Two groups at least (the registration, the sale), each flushed.
    let flushes = sample(&text, "node_journal_flush_seconds_count", "").unwrap();
    assert!(flushes >= 2.0, "{text}");
    assert_eq!(sample(&text, "node_sync_online", ""), Some(1.0), "{text}");
    for private in [member.as_str(), "13912340009", "吴九", "12.50"] {
        assert!(!text.contains(private), "{private} in /metrics");
    }
    // Once headquarters holds the store's log, the node says so, and so does headquarters.
    eventually(20, "the backlog to empty", || {
        (sample(&scrape(c), "node_sync_backlog_entries", "") == Some(0.0)).then_some(())
    });
    let hq = scrape(&hub.client);
    assert_eq!(sample(&hq, "hub_stores_connected", ""), Some(1.0), "{hq}");
    assert!(
        sample(&hq, "hub_ingest_entries_total", "").unwrap() >= 2.0,
        "{hq}"
    );
    assert!(
        hq.contains("hub_outbox_notices{state=\"pending\"} 0"),
        "{hq}"
    );
    assert!(
        !hq.contains(member.as_str()),
        "a member's id in headquarters' /metrics"
    );
}
