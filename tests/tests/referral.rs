//! 拓客 with real processes: headquarters publishes two levels of rewards; B registers at
//! S001 with A's referral code and C is linked to A later (补填推荐人) — a malformed or unknown
//! code, a phone already registered, a second referrer, oneself and a loop are refused. B's
//! first paid sale, at S002, rewards A once (a second sale nothing); its receipt prints B's own
//! code; returned in full, the reward is taken back, and the referral report says so.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use tests::chain::{Chain, register, wait_online};
use tests::{Client, bins, eventually};

fn member(node: &Client, id: &str) -> serde_json::Value {
    node.get(&format!("/api/v1/members/{id}")).body
}

fn cash_sale(node: &Client, key: &str, member: &str, yuan: &str) -> tests::Answer {
    node.post(
        "/api/v1/checkouts/quick",
        Some(key),
        &json!({"member_id": member, "amount": {"amount": yuan}}).to_string(),
    )
}

#[test]
fn a_referred_members_first_paid_sale_rewards_their_referrer_once_and_a_full_return_takes_it_back()
{
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    chain.enrol("S002", hub.sync);
    let (a_node, b_node) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a_node.client, &b_node.client]);
    let (s1, s2, hq) = (&a_node.client, &b_node.client, &hub.client);
    let bad = hq.put_as(
        "/api/v1/referral-rules",
        "ref-rules-1",
        Some("hq-mkt"),
        &json!({"level1": {"points": 100, "coupon": "NO-SUCH"}}).to_string(),
    );
    assert_eq!(
        (bad.status, bad.body["field"].as_str()),
        (422, Some("coupon")),
        "{:?}",
        bad.body
    );
    let rules = json!({"level1": {"points": 100, "bonus": "5.00"}, "level2": {"points": 20}});
    let put = hq.put_as(
        "/api/v1/referral-rules",
        "ref-rules-2",
        Some("hq-mkt"),
        &rules.to_string(),
    );
    assert_eq!(put.status, 201, "{:?}", put.body);

    let a = register(s1, "ref-reg-0001", "推荐人", "13966660001");
    let code = member(s1, &a)["referral_code"].as_str().unwrap().to_owned();
    let join = |key: &str, phone: &str, code: &str| {
        s1.post(
            "/api/v1/members",
            Some(key),
            &json!({"name": "好友", "phone": phone, "referral_code": code}).to_string(),
        )
    };
    let malformed = join("ref-reg-0002", "13966660002", "R12");
    assert_eq!(
        (malformed.status, malformed.body["field"].as_str()),
        (422, Some("referral_code"))
    );
    assert_eq!(
        join("ref-reg-0003", "13966660002", "R0000000000").code(),
        "referrer_not_found"
    );
    assert_eq!(
        join("ref-reg-0004", "13966660001", &code).code(),
        "phone_taken"
    );
    let b = join("ref-reg-0005", "13966660002", &code.to_lowercase());
    assert_eq!(b.status, 201, "{:?}", b.body);
    let b = b.body["member_id"].as_str().unwrap().to_owned();
    assert_eq!(member(s1, &b)["referrer"], a.as_str());

    // 补填推荐人: C, then the refusals (nothing written for any).
    let c = register(s1, "ref-reg-0006", "后来者", "13966660003");
    let c_code = member(s1, &c)["referral_code"].as_str().unwrap().to_owned();
    let link = |key: &str, who: &str, code: &str| {
        s1.patch(
            &format!("/api/v1/members/{who}"),
            Some(key),
            &json!({"referral_code": code}).to_string(),
        )
    };
    assert_eq!(link("ref-edit-0001", &c, &code).status, 200);
    assert_eq!(
        link("ref-edit-0002", &c, &c_code).code(),
        "referral_refused",
        "a second referrer"
    );
    assert_eq!(
        link("ref-edit-0003", &a, &code).code(),
        "referral_refused",
        "oneself"
    );
    assert_eq!(
        link("ref-edit-0004", &a, &c_code).code(),
        "referral_refused",
        "a loop"
    );
    assert!(member(s1, &a)["referrer"].is_null());

    // B's first paid sale, at S002: A is rewarded once.
    eventually(30, "S002 to know B", || {
        (s2.get("/api/v1/members/lookup?phone=13966660002").status == 200).then_some(())
    });
    let first = cash_sale(s2, "ref-sale-0001", &b, "80.00");
    assert_eq!(first.status, 201, "{:?}", first.body);
    let sale_id = first.body["sale_id"].as_str().unwrap().to_owned();
    assert_eq!(cash_sale(s2, "ref-sale-0002", &b, "20.00").status, 201);
    let rewarded = eventually(30, "A's reward", || {
        let w = s1.get(&format!("/api/v1/members/{a}/wallet")).body;
        (w["points"]["balance"] == 100).then_some(w)
    });
    assert_eq!(rewarded["stored_value"]["bonus"]["amount"], "5.00");
    let report = eventually(30, "the reward in the report", || {
        let r = hq.get("/api/v1/reports/referrals").body;
        let row = r["rows"]
            .as_array()?
            .iter()
            .find(|r| r["referrer"] == a.as_str() && r["level"] == 1)?
            .clone();
        (row["rewarded"] == 1).then_some(row)
    });
    assert_eq!(
        (
            report["referred"].as_u64(),
            report["paid"].as_u64(),
            report["points"].as_u64()
        ),
        (Some(2), Some(1), Some(100))
    );

    // Returned in full: taken back (as far as A has not spent it).
    let back = s2.post(
        &format!("/api/v1/sales/{sale_id}/returns"),
        Some("ref-ret-0001"),
        &json!({"reason": "不要了"}).to_string(),
    );
    assert_eq!(back.status, 201, "{:?}", back.body);
    let row = eventually(30, "the take-back in the report", || {
        let r = hq.get("/api/v1/reports/referrals").body;
        let row = r["rows"]
            .as_array()?
            .iter()
            .find(|r| r["referrer"] == a.as_str() && r["level"] == 1)?
            .clone();
        (row["taken_back_points"].as_u64()? + row["kept_points"].as_u64()? == 100).then_some(row)
    });
    // A spent nothing: all of it comes back, from wherever the bank had placed it.
    assert_eq!(
        (
            row["taken_back_points"].as_u64(),
            row["kept_points"].as_u64()
        ),
        (Some(100), Some(0)),
        "{row}"
    );
    eventually(30, "A's points and bonus after the take-back", || {
        let w = s1.get(&format!("/api/v1/members/{a}/wallet")).body;
        (w["points"]["balance"] == 0 && w["stored_value"]["bonus"]["amount"] == "0.00")
            .then_some(())
    });
    let csv = hq
        .get("/api/v1/reports/referrals?format=csv")
        .body
        .to_string();
    assert!(csv.contains("推荐人,姓名,手机,级别"), "{csv}");
}
