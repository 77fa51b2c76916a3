//! Staff logins (登录) with real processes: headquarters gives staff a password or PIN, every
//! store receives its hash and checks logins offline; once logins exist every call needs a
//! session, and a role does only what it may.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use tests::chain::{Chain, wait_online};
use tests::{Client, bins, eventually};

fn login(c: &Client, staff: &str, password: &str) -> tests::Answer {
    c.post(
        "/api/v1/sessions",
        None,
        &json!({"staff_id": staff, "password": password}).to_string(),
    )
}

#[test]
fn staff_log_in_at_their_store_and_act_within_their_role() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    let hq = &hub.client;
    let staff = json!({"staff": [
        {"id": "c01", "name": "王芳", "store": "S001", "role": "cashier"},
        {"id": "m01", "name": "李店长", "store": "S001", "role": "manager"},
        {"id": "m02", "name": "周店长", "store": "S002", "role": "manager"},
        {"id": "left-1", "name": "赵六", "store": "S001", "role": "cashier", "active": false},
    ]});
    assert_eq!(
        hq.post_as("/api/v1/staff", Some("hq-ops"), &staff.to_string())
            .status,
        201
    );
    // Before any login exists the till is open, as for a new chain.
    assert_eq!(a.client.get("/api/v1/stock").status, 200);
    let secret = |id: &str, password: serde_json::Value| {
        hq.put_as(
            &format!("/api/v1/staff/{id}/password"),
            "unused-key-0001",
            Some("hq-ops"),
            &json!({ "password": password }).to_string(),
        )
    };
    assert_eq!(
        secret("c01", json!("12345")).body["code"],
        "invalid_password"
    );
    assert_eq!(
        secret("nobody", json!("123456")).body["code"],
        "invalid_staff"
    );
    for (id, pin) in [
        ("c01", "246810"),
        ("m01", "135790"),
        ("m02", "112233"),
        ("left-1", "999999"),
    ] {
        assert_eq!(secret(id, json!(pin)).status, 201, "{id}");
    }
    // A store login (a PIN) may not become a chain-wide account with it.
    let widen = json!({"staff": [{"id": "c01", "name": "王芳", "role": "auditor"}]});
    let refused = hq.post_as("/api/v1/staff", Some("hq-ops"), &widen.to_string());
    assert_eq!(refused.code(), "invalid_staff", "{:?}", refused.body);
    eventually(30, "the logins at S001", || {
        (a.client.get("/api/v1/stock").code() == "login_required").then_some(())
    });
    assert_eq!(
        a.client.get("/api/v1/health").status,
        200,
        "health stays open"
    );
    // Wrong secrets, someone who left, another store's manager.
    assert_eq!(login(&a.client, "c01", "000000").code(), "login_failed");
    assert_eq!(login(&a.client, "left-1", "999999").code(), "login_failed");
    assert_eq!(login(&a.client, "nobody", "999999").code(), "login_failed");
    assert_eq!(login(&a.client, "m02", "112233").code(), "role_forbidden");
    // A cashier sells and looks up, but may not return, refund or read reports.
    let session = login(&a.client, "c01", "246810");
    assert_eq!(session.status, 201, "{:?}", session.body);
    let cashier = a
        .client
        .with_bearer(session.body["token"].as_str().unwrap());
    let member = cashier.post(
        "/api/v1/members",
        Some("login-member-0001"),
        &json!({"name": "张三", "phone": "13912345678"}).to_string(),
    );
    assert_eq!(member.status, 201, "{:?}", member.body);
    let sold = cashier.post(
        "/api/v1/checkouts/quick",
        Some("login-sale-0001"),
        &json!({"amount": {"amount": "10.00"}, "cash_tendered": {"amount": "10"}}).to_string(),
    );
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    let sale = sold.body["sale_id"].as_str().unwrap().to_owned();
    assert_eq!(
        cashier.get(&format!("/api/v1/sales/{sale}")).body["staff_id"],
        "c01",
        "the session's staff member is recorded, whatever X-Staff-Id said"
    );
    let back = |c: &Client, key: &str| {
        c.post(
            &format!("/api/v1/sales/{sale}/returns"),
            Some(key),
            &json!({"reason": "质量问题"}).to_string(),
        )
    };
    assert_eq!(back(&cashier, "login-return-0001").code(), "role_forbidden");
    assert_eq!(
        cashier
            .get("/api/v1/reports/sales?from=2026-01-01&to=2026-01-31")
            .code(),
        "role_forbidden"
    );
    // The manager may.
    let session = login(&a.client, "m01", "135790");
    let manager = a
        .client
        .with_bearer(session.body["token"].as_str().unwrap());
    assert_eq!(back(&manager, "login-return-0002").status, 201);
    // A made-up token, and a closed session, are refused.
    assert_eq!(
        a.client.with_bearer("feedface").get("/api/v1/stock").code(),
        "login_required"
    );
    assert_eq!(cashier.post_as("/api/v1/sessions", None, "").status, 400);
    let closed = Client::new(&cashier.base).with_bearer(cashier.bearer.as_deref().unwrap());
    assert_eq!(
        closed.delete_as("/api/v1/sessions", "c01").body["closed"],
        true
    );
    assert_eq!(cashier.get("/api/v1/stock").code(), "login_required");
    // Five wrong PINs lock the account at this store, the right one included.
    for _ in 0..4 {
        assert_eq!(login(&a.client, "c01", "000000").code(), "login_failed");
    }
    assert_eq!(login(&a.client, "c01", "000000").code(), "account_locked");
    assert_eq!(login(&a.client, "c01", "246810").code(), "account_locked");
    // Headquarters' audit log (操作日志): the manager's return at S001, the logins it set.
    let today = sold.body["business_date"].as_str().unwrap().to_owned();
    let audit = eventually(30, "the return in the audit log", || {
        let log = hq
            .get(&format!("/api/v1/audit?from={today}&to={today}"))
            .body;
        let rows = log["actions"].as_array().cloned().unwrap_or_default();
        rows.iter()
            .any(|r| r["action"] == "退货" && r["staff_id"] == "m01" && r["store_id"] == "S001")
            .then_some(rows)
    });
    assert!(
        audit
            .iter()
            .any(|r| r["action"] == "设置员工密码" && r["staff_id"] == "hq-ops"),
        "{audit:?}"
    );
    assert!(
        !audit
            .iter()
            .any(|r| r["action"] == "退货" && r["staff_id"] == "c01")
    );
    let csv = hq.get(&format!(
        "/api/v1/audit?from={today}&to={today}&store=S001&format=csv"
    ));
    assert!(
        csv.body
            .as_str()
            .unwrap_or_default()
            .contains("时间,门店,员工,操作,内容")
    );
    // Headquarters stays open until a headquarters admin has a login; then it wants a session.
    let admin = json!({"staff": [{"id": "hq-ops", "name": "总部运营", "role": "hq_admin"}]});
    assert_eq!(
        hq.post_as("/api/v1/staff", Some("hq-ops"), &admin.to_string())
            .status,
        201
    );
    // A chain-wide login's hash reaches every store: a PIN is refused for it.
    let short = secret("hq-ops", json!("135790"));
    assert_eq!(short.code(), "invalid_password", "{:?}", short.body);
    assert_eq!(secret("hq-ops", json!("correct horse")).status, 201);
    assert_eq!(hq.get("/api/v1/liabilities").code(), "login_required");
    assert_eq!(hq.get("/api/v1/health").status, 200);
    assert_eq!(login(hq, "hq-ops", "wrong horse").code(), "login_failed");
    assert_eq!(
        login(hq, "c01", "246810").code(),
        "role_forbidden",
        "cashiers log in at tills"
    );
    let session = login(hq, "hq-ops", "correct horse");
    assert_eq!(session.status, 201, "{:?}", session.body);
    let admin = hq.with_bearer(session.body["token"].as_str().unwrap());
    assert_eq!(admin.get("/api/v1/liabilities").status, 200);
    // A store manager reads their own store at headquarters, and nothing else.
    let session = login(hq, "m01", "135790");
    assert_eq!(session.status, 201, "{:?}", session.body);
    let manager_at_hq = hq.with_bearer(session.body["token"].as_str().unwrap());
    let period = format!("from={today}&to={today}");
    let own = manager_at_hq.get(&format!("/api/v1/reports/sales?{period}&store=S001"));
    assert_eq!(own.status, 200, "{:?}", own.body);
    for path in [
        format!("/api/v1/reports/sales?{period}&store=S002"),
        format!("/api/v1/reports/sales?{period}"),
        "/api/v1/liabilities".to_owned(),
    ] {
        assert_eq!(manager_at_hq.get(&path).code(), "role_forbidden", "{path}");
    }
    // …and looks after their own store's cashiers: added, given a PIN; nobody else.
    let staff_change =
        json!({"staff": [{"id": "c09", "name": "新人", "store": "S001", "role": "cashier"}]});
    let added = manager_at_hq.post_as("/api/v1/staff", None, &staff_change.to_string());
    assert_eq!(added.status, 201, "{:?}", added.body);
    for other in [
        json!({"id": "c10", "name": "别店", "store": "S002", "role": "cashier"}),
        json!({"id": "c09", "name": "新人", "store": "S001", "role": "manager"}),
        json!({"id": "m02", "name": "周店长", "store": "S001", "role": "cashier"}),
        json!({"id": "hq-9", "name": "总部", "role": "cashier"}),
    ] {
        let body = json!({ "staff": [other] }).to_string();
        let refused = manager_at_hq.post_as("/api/v1/staff", None, &body);
        assert_eq!(refused.code(), "role_forbidden", "{other}");
    }
    let pin = |id: &str| {
        manager_at_hq.put_as(
            &format!("/api/v1/staff/{id}/password"),
            "unused-key-0005",
            None,
            &json!({ "password": "864200" }).to_string(),
        )
    };
    assert_eq!(pin("c09").status, 201);
    assert_eq!(pin("m02").code(), "role_forbidden");
    assert_eq!(
        pin("m01").code(),
        "role_forbidden",
        "not even their own login"
    );
    let own_staff = manager_at_hq.get("/api/v1/staff?store=S001").body;
    assert!(own_staff.to_string().contains("c09"), "{own_staff}");
    assert!(!own_staff.to_string().contains("m02"), "{own_staff}");
    assert_eq!(manager_at_hq.get("/api/v1/staff").code(), "role_forbidden");
    eventually(30, "c09's login at S001", || {
        (login(&a.client, "c09", "864200").status == 201).then_some(())
    });
    // An auditor reads every store and the rules, and changes nothing.
    let auditor = json!({"staff": [{"id": "au01", "name": "审计员", "role": "auditor"}]});
    assert_eq!(
        admin
            .post_as("/api/v1/staff", None, &auditor.to_string())
            .status,
        201
    );
    let set = admin.put_as(
        "/api/v1/staff/au01/password",
        "unused-key-0003",
        None,
        &json!({ "password": "audit 2026" }).to_string(),
    );
    assert_eq!(set.status, 201, "{:?}", set.body);
    let session = login(hq, "au01", "audit 2026");
    assert_eq!(session.status, 201, "{:?}", session.body);
    let auditor = hq.with_bearer(session.body["token"].as_str().unwrap());
    for path in [
        format!("/api/v1/reports/sales?{period}"),
        format!("/api/v1/audit?{period}"),
        "/api/v1/liabilities".to_owned(),
        "/api/v1/member-rules".to_owned(),
        "/api/v1/stores".to_owned(),
    ] {
        assert_eq!(auditor.get(&path).status, 200, "{path}");
    }
    let rules = json!({"points_per_yuan": "5", "offline_overdraft_per_member": "0",
                       "offline_overdraft_per_store": "0"});
    assert_eq!(
        auditor
            .put_as(
                "/api/v1/member-rules",
                "unused-key-0004",
                None,
                &rules.to_string()
            )
            .code(),
        "role_forbidden"
    );
    assert_eq!(
        auditor
            .post_as("/api/v1/staff", None, &staff_change.to_string())
            .code(),
        "role_forbidden"
    );
    assert_eq!(auditor.get("/api/v1/staff").status, 200);
    // At a till an auditor reads, and sells nothing.
    let at_till = eventually(30, "the auditor's login at S001", || {
        let s = login(&a.client, "au01", "audit 2026");
        (s.status == 201).then(|| a.client.with_bearer(s.body["token"].as_str().unwrap()))
    });
    assert_eq!(at_till.get("/api/v1/stock").status, 200);
    let sale = json!({"amount": {"amount": "1.00"}}).to_string();
    assert_eq!(
        at_till
            .post("/api/v1/checkouts/quick", Some("audit-sale-0001"), &sale)
            .code(),
        "role_forbidden"
    );
    assert_eq!(
        admin.get("/api/v1/member-rules").body["current"],
        json!(null)
    );
    // Removing a login (as the admin, with a session now) leaves the others.
    let removed = admin.put_as(
        "/api/v1/staff/m01/password",
        "unused-key-0002",
        None,
        &json!({ "password": null }).to_string(),
    );
    assert_eq!(removed.status, 201, "{:?}", removed.body);
    eventually(30, "m01's login gone", || {
        (login(&a.client, "m01", "135790").code() == "login_failed").then_some(())
    });
}

/// A till's session lasts the store's `session_minutes`; after that every call asks for a new
/// login, and logging in again works.
#[test]
fn a_session_expires_after_the_stores_session_length() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let path = chain.enrol("S001", hub.sync);
    let mut config = node::Config::load(&path).unwrap();
    config.session_minutes = 1;
    std::fs::write(&path, config.to_toml()).unwrap();
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    let hq = &hub.client;
    let staff =
        json!({"staff": [{"id": "c01", "name": "王芳", "store": "S001", "role": "cashier"}]});
    assert_eq!(
        hq.post_as("/api/v1/staff", Some("hq-ops"), &staff.to_string())
            .status,
        201
    );
    let pin = json!({ "password": "246810" }).to_string();
    let set = hq.put_as(
        "/api/v1/staff/c01/password",
        "k-00000001",
        Some("hq-ops"),
        &pin,
    );
    assert_eq!(set.status, 201);
    eventually(30, "the login at S001", || {
        (a.client.get("/api/v1/stock").code() == "login_required").then_some(())
    });
    let session = login(&a.client, "c01", "246810");
    assert_eq!(session.status, 201, "{:?}", session.body);
    let expires = session.body["expires_at_ms"].as_u64().unwrap();
    let cashier = a
        .client
        .with_bearer(session.body["token"].as_str().unwrap());
    assert_eq!(cashier.get("/api/v1/stock").status, 200);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(expires <= now + 60_000, "one minute at most");
    std::thread::sleep(std::time::Duration::from_millis(
        expires.saturating_sub(now) + 500,
    ));
    assert_eq!(cashier.get("/api/v1/stock").code(), "session_expired");
    let again = login(&a.client, "c01", "246810");
    let cashier = a.client.with_bearer(again.body["token"].as_str().unwrap());
    assert_eq!(cashier.get("/api/v1/stock").status, 200);
}

/// The tester's case: a fired headquarters admin kept full rights on the old token, and a
/// manager demoted to cashier kept a manager's. Every call now re-checks the session against
/// the staff directory as it is: deactivated, demoted or with the login changed, the session
/// ends at headquarters and at the till. Anyone logged in may log out, an auditor too.
#[test]
fn a_session_ends_when_headquarters_deactivates_demotes_or_changes_the_login() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    let hq = &hub.client;
    let staff = json!({"staff": [
        {"id": "hq-ops", "name": "总部运营", "role": "hq_admin"},
        {"id": "hq-gone", "name": "离职管理员", "role": "hq_admin"},
        {"id": "au01", "name": "审计员", "role": "auditor"},
        {"id": "m01", "name": "李店长", "store": "S001", "role": "manager"},
    ]});
    assert_eq!(
        hq.post_as("/api/v1/staff", Some("hq-ops"), &staff.to_string())
            .status,
        201
    );
    for (id, secret, key) in [
        ("m01", "135790", "k-00000001"),
        ("au01", "audit horse", "k-00000002"),
        ("hq-ops", "correct horse", "k-00000004"),
    ] {
        let set = hq.put_as(
            &format!("/api/v1/staff/{id}/password"),
            key,
            Some("hq-ops"),
            &json!({ "password": secret }).to_string(),
        );
        assert_eq!(set.status, 201, "{id}: {:?}", set.body);
    }
    let token = |c: &Client, id: &str, secret: &str| {
        let s = login(c, id, secret);
        assert_eq!(s.status, 201, "{id}: {:?}", s.body);
        c.with_bearer(s.body["token"].as_str().unwrap())
    };
    let admin = token(hq, "hq-ops", "correct horse");
    let set = admin.put_as(
        "/api/v1/staff/hq-gone/password",
        "k-00000003",
        None,
        &json!({ "password": "gone horse" }).to_string(),
    );
    assert_eq!(set.status, 201, "{:?}", set.body);
    let gone = token(hq, "hq-gone", "gone horse");
    assert_eq!(gone.get("/api/v1/liabilities").status, 200);
    let manager = eventually(30, "m01's login at S001", || {
        let s = login(&a.client, "m01", "135790");
        (s.status == 201).then(|| a.client.with_bearer(s.body["token"].as_str().unwrap()))
    });
    assert_eq!(manager.get("/api/v1/stock").status, 200);

    // Fired: the admin's old token stops at once; they cannot make another admin.
    let fire = json!({"staff": [{"id": "hq-gone", "name": "离职管理员", "role": "hq_admin", "active": false}]});
    assert_eq!(
        admin
            .post_as("/api/v1/staff", None, &fire.to_string())
            .status,
        201
    );
    let refused = gone.post_as(
        "/api/v1/staff",
        None,
        &json!({"staff": [{"id": "hq-new", "name": "新管理员", "role": "hq_admin"}]}).to_string(),
    );
    assert_eq!((refused.status, refused.code()), (401, "session_revoked"));
    assert_eq!(gone.get("/api/v1/liabilities").code(), "login_required");

    // Demoted at S001: the manager's token ends there once the directory arrives.
    let demote =
        json!({"staff": [{"id": "m01", "name": "李店长", "store": "S001", "role": "cashier"}]});
    assert_eq!(
        admin
            .post_as("/api/v1/staff", None, &demote.to_string())
            .status,
        201
    );
    eventually(30, "the demotion at S001", || {
        (manager.get("/api/v1/stock").code() == "session_revoked").then_some(())
    });

    // A new password ends the sessions opened with the old one.
    let auditor = token(hq, "au01", "audit horse");
    assert_eq!(auditor.get("/api/v1/liabilities").status, 200);
    let logged_out = auditor.delete_as("/api/v1/sessions", "au01");
    assert_eq!(
        logged_out.status, 200,
        "an auditor may log out: {:?}",
        logged_out.body
    );
    assert_eq!(logged_out.body["closed"], true);
    let auditor = token(hq, "au01", "audit horse");
    let reset = admin.put_as(
        "/api/v1/staff/au01/password",
        "k-00000005",
        None,
        &json!({ "password": "new audit horse" }).to_string(),
    );
    assert_eq!(reset.status, 201);
    assert_eq!(auditor.get("/api/v1/liabilities").code(), "session_revoked");
    hub.kill();
    a.kill();
}

/// Secure by default: a hub that is not in the demo's open mode makes its first admin on its
/// first start (the password in a file only its owner reads) and answers nothing else without
/// a login; a till that is not open answers nothing without a login either, until headquarters
/// gives its staff one. A restart makes no second admin.
#[test]
fn a_new_chain_is_closed_from_its_first_start() {
    let chain = Chain::new(bins!());
    let hub = chain.hub_with("127.0.0.1:0".parse().unwrap(), |config| {
        config.open_before_logins = false;
    });
    let file = chain.hub_data().join(hub::first_admin::PASSWORD_FILE);
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("admin"));
    let password = lines.next().unwrap().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only its owner reads it: {mode:o}");
    }
    let hq = &hub.client;
    assert_eq!(hq.get("/api/v1/health").status, 200);
    assert_eq!(hq.get("/api/v1/stores").code(), "login_required");
    assert_eq!(
        hq.post_as("/api/v1/staff", Some("admin"), "{}").code(),
        "login_required",
        "naming oneself is not a login"
    );
    let session = login(hq, "admin", &password);
    assert_eq!(session.status, 201, "{:?}", session.body);
    let admin = hq.with_bearer(session.body["token"].as_str().unwrap());
    assert_eq!(admin.get("/api/v1/stores").status, 200);
    let staff = json!({"staff": [
        {"id": "m01", "name": "李店长", "store": "S001", "role": "manager"},
    ]});
    assert_eq!(
        admin
            .post_as("/api/v1/staff", None, &staff.to_string())
            .status,
        201
    );

    chain.enrol_with("S001", hub.sync, |config| config.open_before_logins = false);
    let a = chain.node("S001");
    assert_eq!(a.client.get("/api/v1/stock").code(), "login_required");
    assert_eq!(a.client.get("/api/v1/sync").code(), "login_required");
    let set = admin.put_as(
        "/api/v1/staff/m01/password",
        "unused-key-0001",
        None,
        &json!({"password": "135790"}).to_string(),
    );
    assert_eq!(set.status, 201, "{:?}", set.body);
    let token = eventually(20, "m01's login at S001", || {
        let answer = login(&a.client, "m01", "135790");
        (answer.status == 201).then(|| answer.body["token"].as_str().unwrap().to_owned())
    });
    assert_eq!(
        a.client.with_bearer(&token).get("/api/v1/stock").status,
        200
    );

    hub.kill();
    let hub = chain.hub_with("127.0.0.1:0".parse().unwrap(), |_| {});
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "no second admin"
    );
    assert_eq!(login(&hub.client, "admin", &password).status, 201);
    hub.kill();
    a.kill();
}

/// 个人信息查阅复制: headquarters exports everything it holds about a member — the full profile,
/// the wallet, and every entry about them from every store — for an admin or an auditor, not for
/// a store manager.
#[test]
fn headquarters_exports_a_members_own_data_on_request() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    let member = tests::chain::register(&a.client, "reg-a-0001", "吴九", "13912340009");
    let topped = a.client.post(
        &format!("/api/v1/members/{member}/top-ups"),
        Some("topup-a-0001"),
        &json!({"amount": {"amount": "100.00"}}).to_string(),
    );
    assert_eq!(topped.status, 201, "{:?}", topped.body);
    let sale = a.client.post(
        "/api/v1/checkouts/quick",
        Some("sale-a-0001"),
        &json!({"member_id": member, "amount": {"amount": "12.00"},
                "cash_tendered": {"amount": "20.00"}})
        .to_string(),
    );
    assert_eq!(sale.status, 201, "{:?}", sale.body);
    let hq = &hub.client;
    let export = eventually(20, "the sale at headquarters", || {
        let export = hq.get(&format!("/api/v1/members/{member}/export"));
        (export.body["history"].as_array().map_or(0, Vec::len) >= 3).then_some(export)
    });
    let body = &export.body;
    assert_eq!(body["profile"]["phone"], "13912340009", "{body}");
    assert_eq!(body["profile"]["name"], "吴九");
    assert_eq!(
        body["wallet"]["stored_value"]["principal"]["amount"], "100.00",
        "{body}"
    );
    let kinds: Vec<String> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| match &h["entry"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.as_object().unwrap().keys().next().unwrap().clone(),
        })
        .collect();
    for kind in ["member_registered", "wallet", "sale"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    // The payment password's hash stays behind (six digits are guessed from it offline), and
    // the export is in the audit log.
    let set = a.client.put_as(
        &format!("/api/v1/members/{member}/password"),
        "pw-a-0001",
        None,
        &json!({"password": "135790"}).to_string(),
    );
    assert_eq!(set.status, 201, "{:?}", set.body);
    let with_password = eventually(20, "the password at headquarters", || {
        let export = hq.get(&format!("/api/v1/members/{member}/export"));
        (export.body["payment_password_set"] == true).then_some(export)
    });
    let text = with_password.body.to_string();
    assert!(!text.contains("argon2"), "{text}");
    assert!(text.contains("payment_password_set"), "{text}");
    let today = body["history"][0]["business_date"]
        .as_str()
        .unwrap()
        .to_owned();
    let audit = hq
        .get(&format!("/api/v1/audit?from={today}&to={today}"))
        .body;
    assert!(
        audit["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "导出会员个人信息"),
        "{audit}"
    );
    assert_eq!(
        hq.get("/api/v1/members/01ARZ3NDEKTSV4RRFFQ69G5FAV/export")
            .code(),
        "member_not_found"
    );
    // A store manager may not; an auditor may.
    let staff = json!({"staff": [
        {"id": "m01", "name": "李店长", "store": "S001", "role": "manager"},
        {"id": "au01", "name": "审计", "role": "auditor"},
        {"id": "hq1", "name": "总部", "role": "hq_admin"},
    ]});
    assert_eq!(
        hq.post_as("/api/v1/staff", Some("hq1"), &staff.to_string())
            .status,
        201
    );
    for (id, pw) in [
        ("m01", "135790"),
        ("au01", "auditor-pass-1"),
        ("hq1", "admin-pass-01"),
    ] {
        let set = hq.put_as(
            &format!("/api/v1/staff/{id}/password"),
            "unused-key-0001",
            Some("hq1"),
            &json!({ "password": pw }).to_string(),
        );
        assert_eq!(set.status, 201, "{id}: {:?}", set.body);
    }
    let as_who = |id: &str, pw: &str| {
        let token = login(hq, id, pw).body["token"].as_str().unwrap().to_owned();
        hq.with_bearer(&token)
    };
    let path = format!("/api/v1/members/{member}/export");
    assert_eq!(as_who("m01", "135790").get(&path).code(), "role_forbidden");
    assert_eq!(as_who("au01", "auditor-pass-1").get(&path).status, 200);
    hub.kill();
    a.kill();
}

/// POSTs a login to `base` from the loopback address `from` (127.0.0.x): the raw answer.
fn login_from(base: &str, from: [u8; 4], staff: &str, password: &str) -> String {
    use std::io::{Read, Write};
    let target: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local = std::net::SocketAddr::from((from, 0));
    socket.bind(&local.into()).unwrap();
    socket.connect(&target.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    let body = json!({"staff_id": staff, "password": password}).to_string();
    write!(
        stream,
        "POST /api/v1/sessions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The tester locked any staff id out for 15 minutes from anywhere. Wrong secrets lock the
/// account for the address they came from: the cashier still logs in at their own till.
#[test]
fn wrong_logins_from_one_address_do_not_lock_a_cashier_out_of_their_till() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    let hq = &hub.client;
    let staff =
        json!({"staff": [{"id": "c01", "name": "王芳", "store": "S001", "role": "cashier"}]});
    assert_eq!(
        hq.post_as("/api/v1/staff", Some("hq-ops"), &staff.to_string())
            .status,
        201
    );
    let set = hq.put_as(
        "/api/v1/staff/c01/password",
        "unused-key-0001",
        Some("hq-ops"),
        &json!({"password": "246810"}).to_string(),
    );
    assert_eq!(set.status, 201, "{:?}", set.body);
    eventually(30, "c01's login at S001", || {
        login_from(&a.client.base, [127, 0, 0, 3], "c01", "246810")
            .starts_with("HTTP/1.1 201")
            .then_some(())
    });
    for _ in 0..5 {
        let answer = login_from(&a.client.base, [127, 0, 0, 9], "c01", "000000");
        assert!(
            answer.starts_with("HTTP/1.1 401") || answer.starts_with("HTTP/1.1 423"),
            "{answer}"
        );
    }
    let locked = login_from(&a.client.base, [127, 0, 0, 9], "c01", "246810");
    assert!(locked.contains("account_locked"), "{locked}");
    let own_till = login_from(&a.client.base, [127, 0, 0, 2], "c01", "246810");
    assert!(own_till.starts_with("HTTP/1.1 201"), "{own_till}");
    hub.kill();
    a.kill();
}
