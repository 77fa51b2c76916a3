//! 营销 at headquarters: coupon templates (券模板), segments (人群) with a live count, campaigns
//! (营销活动) and their runs. Each change is one entry of headquarters' log; a run evaluates
//! the segment here (`crate::segments`) and hands the members found to the ingest thread,
//! which gives each one coupon per run however often the run is repeated.

use protocol::campaign::{Campaign, CouponTemplate, MarketingChange, MarketingError, Validity};
use protocol::pricing::{CouponScope, OfferForm};
use protocol::project::marketing::{self, Published, keys};
use protocol::segment::Segment;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;
use crate::ingest::MarketingRefused;

/// Members listed with a segment's count (the rest are counted only).
const SAMPLE_MAX: usize = 20;

/// A template as the page sends it: the offer in yuan (`OfferForm`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TemplateForm {
    id: String,
    name: String,
    offer: OfferForm,
    validity: Validity,
    #[serde(default)]
    scope: CouponScope,
    #[serde(default)]
    quota: Option<u64>,
    per_member: u32,
    #[serde(default)]
    stacks: Option<bool>,
    #[serde(default)]
    withdrawn: bool,
}

impl TemplateForm {
    fn template(self) -> Result<CouponTemplate, MarketingError> {
        let offer = self
            .offer
            .offer()
            .map_err(|e| MarketingError::new("offer", e))?;
        Ok(CouponTemplate {
            id: self.id,
            name: self.name,
            offer,
            validity: self.validity,
            scope: self.scope,
            quota: self.quota,
            per_member: self.per_member,
            stacks: self.stacks,
            withdrawn: self.withdrawn,
        })
    }
}

/// The request field a marketing error names, as the page knows it.
fn field(e: &MarketingError) -> Option<&'static str> {
    const FIELDS: [&str; 22] = [
        "id",
        "name",
        "offer",
        "validity",
        "scope",
        "quota",
        "per_member",
        "template",
        "segment",
        "message",
        "conditions",
        "birthday",
        "dormant",
        "joined",
        "tier",
        "tags",
        "home_store",
        "shopped_at",
        "spend",
        "visits",
        "custom",
        "coupons",
    ];
    FIELDS.into_iter().find(|f| *f == e.field)
}

fn refused(e: MarketingRefused) -> Response {
    match e {
        MarketingRefused::Invalid(e) => {
            let mut error = ApiError::new(Code::InvalidMarketing, &e);
            error.field = field(&e);
            error.into_response()
        }
        MarketingRefused::Unknown { .. } => Code::MarketingNotFound.answer(e),
        MarketingRefused::Withdrawn { .. } | MarketingRefused::Expired { .. } => {
            Code::MarketingClosed.answer(e)
        }
        MarketingRefused::Storage(_) => unavailable(e.to_string()),
    }
}

fn all<T: DeserializeOwned>(
    storage: &dyn HubStore,
    prefix: &[u8],
) -> Result<Vec<Published<T>>, String> {
    storage
        .views(prefix, usize::MAX)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|(_, v)| postcard::from_bytes(v).map_err(|e| e.to_string()))
        .collect()
}

fn published<T: Serialize>(p: &Published<T>, extra: serde_json::Value) -> serde_json::Value {
    let mut out = json!({"published_at_ms": p.at.wall_ms, "staff": p.staff});
    if let (Some(out), Ok(serde_json::Value::Object(item)), serde_json::Value::Object(extra)) =
        (out.as_object_mut(), serde_json::to_value(&p.item), extra)
    {
        out.extend(item);
        out.extend(extra);
    }
    out
}

/// Every template (with the coupons it has issued), segment and campaign (with its runs).
#[utoipa::path(get, path = "/api/v1/marketing", responses((status = 200, body = Object)))]
pub(super) async fn overview(State(hq): State<Hq>) -> Response {
    let found = read(&hq, |storage| {
        let views = hub_views(storage);
        let templates: Vec<Published<CouponTemplate>> = all(storage, keys::TEMPLATES)?;
        let segments: Vec<Published<Segment>> = all(storage, keys::SEGMENTS)?;
        let campaigns: Vec<Published<Campaign>> = all(storage, keys::CAMPAIGNS)?;
        let mut t = Vec::new();
        for p in &templates {
            let issued = marketing::template_issued(&views, &p.item.id)?;
            let offer = OfferForm::of(&p.item.offer);
            t.push(published(p, json!({"issued": issued, "offer": offer})));
        }
        let mut c = Vec::new();
        for p in &campaigns {
            let issued = marketing::campaign_issued(&views, &p.item.id)?;
            let runs: Vec<protocol::campaign::Run> = storage
                .views(&keys::runs(&p.item.id), usize::MAX)
                .map_err(|e| e.to_string())?
                .iter()
                .map(|(_, v)| postcard::from_bytes(v).map_err(|e| e.to_string()))
                .collect::<Result<_, String>>()?;
            c.push(published(p, json!({"issued": issued, "runs": runs})));
        }
        let s: Vec<_> = segments.iter().map(|p| published(p, json!({}))).collect();
        Ok::<_, String>(json!({"templates": t, "segments": s, "campaigns": c}))
    })
    .await;
    match found {
        Ok(body) => axum::Json(body).into_response(),
        Err(answer) => answer,
    }
}

async fn publish(hq: &Hq, headers: &HeaderMap, change: MarketingChange) -> Response {
    let staff = match operator(headers) {
        Ok(staff) => staff,
        Err(response) => return *response,
    };
    match hq.ingest.publish_marketing(change, staff).await {
        Ok(Ok(())) => (StatusCode::CREATED, axum::Json(json!({"written": true}))).into_response(),
        Ok(Err(e)) => refused(e),
        Err(e) => unavailable(e.to_string()),
    }
}

/// 券模板: adds or replaces a template (by id); published to every store.
#[utoipa::path(put, path = "/api/v1/marketing/templates", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = Object, description = "id, name, offer (amount_off | percent_off | voucher | experience), validity (dates {from,to} | days {days}), scope {skus, categories}, quota, per_member, stacks, withdrawn"), responses((status = 201, body = Object), (status = 422, body = super::doc::ErrorBody)))]
pub(super) async fn put_template(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<TemplateForm>, JsonRejection>,
) -> Response {
    match body.map(|axum::Json(form)| form.template()) {
        Ok(Ok(t)) => publish(&hq, &headers, MarketingChange::Template(t)).await,
        Ok(Err(e)) => refused(e.into()),
        Err(e) => body_refused(e, Code::InvalidMarketing),
    }
}

/// 人群: adds or replaces a segment (by id). A condition naming an unknown field is refused.
#[utoipa::path(put, path = "/api/v1/marketing/segments", params(("X-Staff-Id" = Option<String>, Header, description = "who acts")), request_body(content = Object, description = "id, name, conditions: [{birthday: {within_days}}, {dormant: {visits, window_days, quiet_days}}, {joined: {within_days}}, {tier: {any}}, {tags: {any}}, {home_store: {any}}, {shopped_at: {any, within_days}}, {spend: {within_days, at_least, at_most}}, {visits: {within_days, at_least, at_most}}, {custom: {key, value}}, \"consent\"]"), responses((status = 201, body = Object), (status = 422, body = super::doc::ErrorBody)))]
pub(super) async fn put_segment(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<Segment>, JsonRejection>,
) -> Response {
    match body {
        Ok(axum::Json(s)) => publish(&hq, &headers, MarketingChange::Segment(s)).await,
        Err(e) => body_refused(e, Code::InvalidMarketing),
    }
}

/// 营销活动: adds or replaces a campaign (by id); its template and segment must exist.
#[utoipa::path(put, path = "/api/v1/marketing/campaigns", params(("X-Staff-Id" = Option<String>, Header, description = "who acts")), request_body(content = Object, description = "id, name, template, segment, schedule (once | daily), message ({name}, {coupon}, {valid_to}), withdrawn"), responses((status = 201, body = Object), (status = 404, body = super::doc::ErrorBody), (status = 422, body = super::doc::ErrorBody)))]
pub(super) async fn put_campaign(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<Campaign>, JsonRejection>,
) -> Response {
    match body {
        Ok(axum::Json(c)) => publish(&hq, &headers, MarketingChange::Campaign(c)).await,
        Err(e) => body_refused(e, Code::InvalidMarketing),
    }
}

/// The members in a segment today (saved or not): the count, and the first few, masked.
#[utoipa::path(post, path = "/api/v1/marketing/segments/count", request_body(content = Object, description = "a segment, as for PUT"), responses((status = 200, body = Object), (status = 422, body = super::doc::ErrorBody)))]
pub(super) async fn count_segment(
    State(hq): State<Hq>,
    body: Result<axum::Json<Segment>, JsonRejection>,
) -> Response {
    let segment = match body {
        Ok(axum::Json(s)) => s,
        Err(e) => return body_refused(e, Code::InvalidMarketing),
    };
    if let Err(e) = segment.check() {
        return refused(e.into());
    }
    let on = today();
    // The count, and the records of the sample shown (names and phones are in those only).
    let found = read(&hq, move |storage| {
        let members = crate::segments::evaluate(storage, &segment, on)?;
        let shown: Vec<MemberId> = members.iter().take(SAMPLE_MAX).map(|(id, _)| *id).collect();
        let sample = crate::segments::records(storage, &shown)?;
        Ok::<_, String>((members.len(), sample))
    })
    .await;
    match found {
        Ok((count, records)) => {
            let sample: Vec<_> = records
                .iter()
                .map(|r| {
                    json!({"member_id": r.member_id, "name": r.profile.name,
                           "phone_masked": r.profile.phone.masked(), "tier": r.profile.tier,
                           "home_store": r.profile.home_store})
                })
                .collect();
            axum::Json(json!({"on": on, "count": count, "sample": sample})).into_response()
        }
        Err(answer) => answer,
    }
}

/// `?on=YYYY-MM-DD&coupons=N`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunQuery {
    on: Option<chrono::NaiveDate>,
    coupons: Option<u32>,
}

/// How far back a run may be dated (补发: a campaign of the chain's past, e.g. imported;
/// twenty years).
const RUN_BACK_DAYS_MAX: i64 = 7_320;

/// Runs a campaign: its segment evaluated today (or as of `on`, a day in the past: 补发),
/// `coupons` coupons to each member (券包, default 1, at most the template's per-member
/// limit) for this run; a run repeated, or resumed after a crash, gives nobody a coupon
/// twice.
#[utoipa::path(post, path = "/api/v1/marketing/campaigns/{id}/run", params(("id" = String, Path), ("on" = Option<String>, Query, description = "the day it runs as of (default today; not in the future)"), ("coupons" = Option<u32>, Query, description = "coupons to each member (default 1)"), ("X-Staff-Id" = Option<String>, Header, description = "who acts")), responses((status = 200, body = Object), (status = 404, body = super::doc::ErrorBody), (status = 409, body = super::doc::ErrorBody)))]
pub(super) async fn run_campaign(
    State(hq): State<Hq>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<RunQuery>, QueryRejection>,
) -> Response {
    let staff = match operator(&headers) {
        Ok(staff) => staff,
        Err(response) => return *response,
    };
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(e.body_text()),
    };
    if let Err(e) = protocol::campaign::check_id("id", &id) {
        return refused(e.into());
    }
    let today = today();
    let on = q.on.unwrap_or(today);
    if on > today || (today - on).num_days() > RUN_BACK_DAYS_MAX {
        return bad_query(format!(
            "on: a day from {RUN_BACK_DAYS_MAX} days ago to today ({today})"
        ));
    }
    let coupons = q.coupons.unwrap_or(1);
    let run =
        crate::segments::run_campaign(&hq.ingest, hq.storage.clone(), id, (on, coupons), staff);
    match run.await {
        Ok(run) => axum::Json(json!(run)).into_response(),
        Err(crate::segments::RunError::Refused(e)) => refused(e),
        Err(crate::segments::RunError::Unavailable(e)) => unavailable(e),
    }
}

/// The most notices the outbox page lists.
const OUTBOX_LISTED: usize = 500;

/// 消息: the outbox — how many notices are pending, sent, failed or suppressed, and the
/// latest, newest first (no name or phone: those are read only when a message is sent).
#[utoipa::path(get, path = "/api/v1/outbox", responses((status = 200, body = Object)))]
pub(super) async fn outbox(State(hq): State<Hq>) -> Response {
    let found = read(&hq, |storage| {
        Ok::<_, crate::storage::HubStoreError>((
            storage.notice_counts()?,
            storage.latest_notices(OUTBOX_LISTED)?,
        ))
    })
    .await;
    let (counts, notices) = match found {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let total = counts.pending + counts.sent + counts.failed + counts.suppressed;
    let rows: Vec<_> = notices
        .iter()
        .map(|(n, d)| {
            let kind = match &n.subject {
                protocol::notice::Subject::StoredValue { .. } => "stored_value",
                protocol::notice::Subject::Points { .. } => "points",
                protocol::notice::Subject::Coupon { .. } => "coupon",
                protocol::notice::Subject::CouponExpiring { .. } => "coupon_expiring",
                protocol::notice::Subject::Birthday => "birthday",
                protocol::notice::Subject::SignInCode { .. } => "sign_in_code",
            };
            json!({"id": n.id, "member_id": n.member, "purpose": n.purpose, "kind": kind,
                   "store": n.store, "at_ms": n.at_ms, "state": d.state, "attempts": d.attempts,
                   "next_ms": d.next_ms, "done_ms": d.done_ms, "last_error": d.last_error})
        })
        .collect();
    // The rules the sender keeps, and the chain's wording (no secret, no gateway address).
    let rules = hq.notify.as_ref().map(|n| {
        json!({"per_second": n.per_second, "quiet_from": n.quiet_from, "quiet_to": n.quiet_to,
               "marketing_per_day": n.marketing_per_day, "expiring_days": n.expiring_days,
               "birthday": n.birthday, "stale_hours": n.stale_hours, "keep_days": n.keep_days,
               "texts": n.texts})
    });
    axum::Json(json!({"counts": counts, "total": total, "notices": rows, "rules": rules}))
        .into_response()
}

/// `?format=json|csv|xlsx`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportQuery {
    pub(super) format: Option<String>,
}

/// The campaign report's columns (field, header).
const REPORT_COLUMNS: [(&str, &str); 13] = [
    ("campaign", "活动"),
    ("name", "名称"),
    ("targeted", "发券会员"),
    ("issued", "发券张数"),
    ("redeemed", "核销张数"),
    ("redemption_percent", "核销率%"),
    ("discount", "优惠金额"),
    ("redeemer_sales", "核销订单金额"),
    ("window_from", "统计开始"),
    ("window_to", "统计结束"),
    ("targeted_avg_spend", "发券会员人均消费"),
    ("others_avg_spend", "其他会员人均消费"),
    ("uplift", "人均提升"),
];

/// The longest window the report reads purchases over.
const REPORT_DAYS_MAX: i64 = 366;

/// 活动效果: members given the campaign's coupon, coupons issued and redeemed (net of coupons
/// given back by returns), the discount given and what the redeeming sales came to; and what
/// the members given a coupon spent per head from the first day a coupon was good to the last
/// (or today), next to every other member of the directory in the same days (the uplift).
#[utoipa::path(get, path = "/api/v1/marketing/campaigns/{id}/report", params(("id" = String, Path), ("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object), (status = 404, body = super::doc::ErrorBody)))]
pub(super) async fn campaign_report(
    State(hq): State<Hq>,
    Path(id): Path<String>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Response {
    let format = match query {
        Ok(Query(q)) => q.format,
        Err(e) => return bad_query(e.body_text()),
    };
    if let Err(e) = protocol::campaign::check_id("id", &id) {
        return refused(e.into());
    }
    if let Err(e) = protocol::reports::query::check_format(format.as_deref()) {
        return bad_query(e);
    }
    let on = today();
    let wanted = id.clone();
    let body = match read(&hq, move |storage| report(storage, &wanted, on)).await {
        Ok(Some(body)) => body,
        Ok(None) => {
            return refused(MarketingRefused::Unknown {
                kind: "campaign",
                id,
            });
        }
        Err(answer) => return answer,
    };
    super::reports::table_report(format.as_deref(), body, "rows", &REPORT_COLUMNS)
}

fn report(
    storage: &dyn HubStore,
    id: &str,
    today: chrono::NaiveDate,
) -> Result<Option<serde_json::Value>, String> {
    let views = hub_views(storage);
    let Some(c) = marketing::campaign(&views, id)? else {
        return Ok(None);
    };
    let issued = marketing::campaign_issued(&views, id)?;
    let redeemed = marketing::redeemed(&views, id)?;
    let mut targeted = std::collections::HashSet::new();
    let mut window: Option<(chrono::NaiveDate, chrono::NaiveDate)> = None;
    crate::targets::targeted(storage, id, None, |member, run| {
        targeted.insert(member);
        let (from, to) = (run.from, run.to);
        window = Some(window.map_or((from, to), |(f, t)| (f.min(from), t.max(to))));
    })?;
    let (mut targeted_spend, mut others_spend) = (0i64, 0i64);
    let window = window.map(|(from, to)| {
        let to = to.min(today);
        (
            from.max(to - chrono::TimeDelta::days(REPORT_DAYS_MAX - 1)),
            to,
        )
    });
    if let Some((from, to)) = window {
        let mut date = from;
        while date <= to {
            let day = protocol::reports::keys::member_prefix(date);
            for (key, value) in storage.views(&day, usize::MAX).map_err(|e| e.to_string())? {
                let rest = String::from_utf8_lossy(&key[day.len()..]).into_owned();
                let Some(member) = rest.split_once('/').map(|(_, m)| m) else {
                    continue;
                };
                let member = MemberId::parse(member).map_err(|e| e.to_string())?;
                let cell: protocol::reports::SalesCell =
                    postcard::from_bytes(&value).map_err(|e| e.to_string())?;
                match targeted.contains(&member) {
                    true => targeted_spend += cell.net - cell.returned,
                    false => others_spend += cell.net - cell.returned,
                }
            }
            let Some(next) = date.succ_opt() else { break };
            date = next;
        }
    }
    let members =
        usize::try_from(storage.member_count().map_err(|e| e.to_string())?).unwrap_or(usize::MAX);
    let others = members.saturating_sub(targeted.len());
    let per_head = |sum: i64, n: usize| match i64::try_from(n) {
        Ok(n) if n > 0 => sum / n,
        _ => 0,
    };
    let (targeted_avg, others_avg) = (
        per_head(targeted_spend, targeted.len()),
        per_head(others_spend, others),
    );
    let percent = match issued {
        0 => "0.0".to_owned(),
        n => format!("{:.1}", redeemed.redeemed as f64 * 100.0 / n as f64),
    };
    let yuan = |fen: i64| Fen(fen).to_string();
    let runs: Vec<protocol::campaign::Run> = storage
        .views(&keys::runs(id), usize::MAX)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|(_, v)| postcard::from_bytes(v).map_err(|e| e.to_string()))
        .collect::<Result<_, String>>()?;
    let row = json!({
        "campaign": id, "name": c.item.name, "targeted": targeted.len(), "issued": issued,
        "redeemed": redeemed.redeemed, "redemption_percent": percent,
        "discount": yuan(redeemed.discount), "redeemer_sales": yuan(redeemed.sales),
        "window_from": window.map(|w| w.0.to_string()), "window_to": window.map(|w| w.1.to_string()),
        "targeted_avg_spend": yuan(targeted_avg), "others_avg_spend": yuan(others_avg),
        "uplift": yuan(targeted_avg - others_avg),
    });
    Ok(Some(
        json!({"rows": [row], "runs": runs, "members": members}),
    ))
}
