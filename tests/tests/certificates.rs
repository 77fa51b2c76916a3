//! Store certificates with a lifetime, and revoked by headquarters, with real processes: a
//! store whose certificate runs out mid-session is cut off and told why; a store revoked while
//! connected is cut off within seconds and refused at every handshake after, with the reason,
//! and keeps selling; enrolled again, it syncs what it sold meanwhile. A store renews its own
//! certificate over sync (a new key made on its PC, only the request sent), and connects with
//! the new one once the old one has run out.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Duration;

use serde_json::json;
use tests::chain::{Chain, sync_status, wait_online};
use tests::{bins, eventually};

#[test]
fn a_certificate_that_runs_out_mid_session_is_cut_off_with_the_reason() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let lifetime = ops::pki::Lifetime::For(Duration::from_secs(6));
    let config = chain.enrol_for("S001", hub.sync, lifetime);
    // A store that does not renew (an operator's choice, or headquarters that cannot sign).
    let mut cfg = node::Config::load(&config).unwrap();
    cfg.sync.as_mut().unwrap().renew_days = 0;
    std::fs::write(&config, cfg.to_toml()).unwrap();
    let node = chain.node("S001");
    wait_online(&[&node.client]);
    let status = sync_status(&node.client);
    let expires = status["certificate_expires_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(expires > now && expires <= now + 7_000, "{status}");
    let refused = eventually(20, "the hub to cut the store off", || {
        let s = sync_status(&node.client);
        s["refused"].as_str().map(str::to_owned)
    });
    assert!(refused.contains("ran out"), "{refused}");
    let metrics = node
        .client
        .get("/metrics")
        .body
        .as_str()
        .unwrap()
        .to_owned();
    let left: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("node_sync_certificate_seconds_left "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(left <= 0, "{metrics}");
}

#[test]
fn a_revoked_store_is_cut_off_and_refused_until_enrolled_again_and_keeps_selling() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    chain.enrol("S002", hub.sync);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);
    let hq = &hub.client;

    let bad = hq.post_as(
        "/api/v1/stores/S002/revoke",
        Some("hq-ops"),
        r#"{"reason": ""}"#,
    );
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    let revoked = hq.post_as(
        "/api/v1/stores/S002/revoke",
        Some("hq-ops"),
        &json!({"reason": "门店电脑被盗"}).to_string(),
    );
    assert_eq!(revoked.status, 201, "{:?}", revoked.body);
    let refused = eventually(20, "S002 cut off", || {
        let s = sync_status(&b.client);
        (s["link"] != "online")
            .then(|| s["refused"].as_str().map(str::to_owned))
            .flatten()
    });
    assert!(refused.contains("门店电脑被盗"), "{refused}");
    // Refused again at the next handshakes; S001 is untouched.
    std::thread::sleep(Duration::from_secs(3));
    assert_ne!(sync_status(&b.client)["link"], "online");
    assert_eq!(sync_status(&a.client)["link"], "online");
    // It keeps selling for cash, on its own.
    let sold = b.client.post(
        "/api/v1/checkouts/quick",
        Some("s002-after-revoke-1"),
        &json!({"amount": {"amount": "9.90"}, "cash_tendered": {"amount": "10"}}).to_string(),
    );
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let today = protocol::calendar::StoreCalendar::default().business_date(now_ms);
    let audit = hq
        .get(&format!(
            "/api/v1/audit?from={}&to={}",
            today - chrono::TimeDelta::days(1),
            today + chrono::TimeDelta::days(1)
        ))
        .body
        .to_string();
    assert!(audit.contains("吊销门店证书"), "{audit}");

    // Enrolled again (a new certificate, its data kept): it syncs what it sold meanwhile.
    drop(b);
    chain.enrol("S002", hub.sync);
    let b = chain.node("S002");
    wait_online(&[&b.client]);
    eventually(20, "the sale made while revoked at headquarters", || {
        (sync_status(&b.client)["backlog"] == 0).then_some(())
    });
    assert!(sync_status(&b.client)["refused"].is_null());
}

#[test]
fn a_store_renews_its_certificate_over_sync_and_connects_with_it_once_the_old_one_runs_out() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let lifetime = ops::pki::Lifetime::For(Duration::from_secs(8));
    let config = chain.enrol_for("S001", hub.sync, lifetime);
    let sync = node::Config::load(&config).unwrap().sync.unwrap();
    let old_key = std::fs::read_to_string(&sync.key).unwrap();
    let node = chain.node("S001");
    let started = std::time::Instant::now();
    let renewed = eventually(20, "the certificate renewed", || {
        let expires = sync_status(&node.client)["certificate_expires_ms"].as_u64()?;
        (expires > now_ms() + 300 * 86_400_000).then_some(expires)
    });
    assert!(renewed < now_ms() + 366 * 86_400_000);
    // A key made here, beside its certificate and the store-issuing CA's.
    let new_key = std::fs::read_to_string(&sync.key).unwrap();
    assert_ne!(new_key, old_key);
    let chain_pem = std::fs::read_to_string(&sync.cert).unwrap();
    assert_eq!(chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sync.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is the store's alone");
    }
    // Past the old certificate's end, headquarters cuts that session; the store comes back
    // with the new certificate and syncs.
    std::thread::sleep(Duration::from_secs(10).saturating_sub(started.elapsed()));
    let sold = tests::chain::quick_sale(&node.client, "after-renewal-1", "9.90", None);
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    eventually(
        20,
        "the sale at headquarters with the new certificate",
        || {
            let s = sync_status(&node.client);
            (s["link"] == "online" && s["backlog"] == 0 && s["refused"].is_null()).then_some(())
        },
    );
    assert_eq!(
        sync_status(&node.client)["connections"]
            .as_u64()
            .map(|n| n >= 2),
        Some(true)
    );
    // Headquarters' store list shows until when the certificate it connects with is good.
    let until = eventually(10, "the new certificate in the store list", || {
        let row = tests::chain::hub_row(&hub.client, "S001")?;
        row["certificate_until_ms"]
            .as_u64()
            .filter(|ms| ms.abs_diff(renewed) < 1_000)
    });
    assert!(until > now_ms() + 300 * 86_400_000);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
