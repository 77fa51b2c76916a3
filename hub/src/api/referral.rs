//! 拓客 at headquarters: the rewards a referrer is given (published as one entry of
//! headquarters' log each, `protocol::referral`) and the referral report per referrer and
//! level (`crate::ingest::referral` keeps what it reads).

use protocol::referral::{Published, ReferralRules, Reward};

use super::*;
use crate::ingest::HqWrite;
use crate::ingest::referral::{Given, TakenBack, keys, live_sales};

/// One level's reward as the page sends it: points, bonus in yuan, a template's coupon.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RewardForm {
    #[serde(default)]
    points: u64,
    /// Bonus stored value in yuan ("5.00").
    #[serde(default)]
    bonus: Option<String>,
    /// A coupon template's id.
    #[serde(default)]
    coupon: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesForm {
    level1: RewardForm,
    /// Leave out for one level only.
    #[serde(default)]
    level2: Option<RewardForm>,
}

fn reward_of(form: RewardForm, field: &'static str) -> Result<Reward, Box<Response>> {
    let bonus = match form
        .bonus
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        None => Fen(0),
        Some(text) => protocol::money::parse_amount(text)
            .ok()
            .and_then(|d| Fen::from_decimal(d, protocol::money::Rounding::default()).ok())
            .ok_or_else(|| {
                Box::new(
                    ApiError::new(Code::InvalidRules, "bonus is an amount in yuan")
                        .on(field)
                        .into_response(),
                )
            })?,
    };
    Ok(Reward {
        points: form.points,
        bonus,
        coupon: form.coupon.filter(|c| !c.trim().is_empty()),
    })
}

fn shown(r: &Reward) -> serde_json::Value {
    json!({"points": r.points, "bonus": r.bonus.to_decimal().to_string(), "coupon": r.coupon})
}

/// The referral rewards in force (`current`, null before any) and every earlier set.
#[utoipa::path(get, path = "/api/v1/referral-rules", responses((status = 200, body = Object)))]
pub(super) async fn get_rules(State(hq): State<Hq>) -> Response {
    answer_from(&hq, move |storage| {
        super::rules::history(storage, keys::HISTORY, "rules", |p: &Published| {
            let r = &p.rules;
            let body = json!({"level1": shown(&r.level1), "level2": r.level2.as_ref().map(shown)});
            (p.at, p.staff.clone(), body)
        })
    })
    .await
}

/// Publishes the referral rewards: `level1` for the member who referred a new one, `level2`
/// (optional) for the one who referred them; each points, bonus (yuan) and a coupon template.
/// Given on the new member's first paid sale, taken back if it is returned in full.
#[utoipa::path(put, path = "/api/v1/referral-rules", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode")), request_body = RulesForm, responses((status = 201, body = Object)))]
pub(super) async fn set_rules(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<RulesForm>, JsonRejection>,
) -> Response {
    let form = match body {
        Ok(axum::Json(form)) => form,
        Err(e) => return super::body_refused(e, Code::InvalidRules),
    };
    let level1 = match reward_of(form.level1, "level1") {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let level2 = match form.level2.map(|f| reward_of(f, "level2")).transpose() {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let rules = ReferralRules { level1, level2 };
    staff::write(&hq, &headers, HqWrite::ReferralRules(rules)).await
}

/// The referral report's columns (field, header).
const REPORT_COLUMNS: [(&str, &str); 11] = [
    ("referrer", "推荐人"),
    ("name", "姓名"),
    ("phone_masked", "手机"),
    ("level", "级别"),
    ("referred", "推荐人数"),
    ("paid", "已首单"),
    ("rewarded", "已奖励"),
    ("points", "奖励积分"),
    ("bonus", "奖励赠送金"),
    ("taken_back_points", "收回积分"),
    ("kept_points", "已用未收回积分"),
];

/// 拓客报表: per referrer and level, the members they brought (level 2: those their
/// members brought), how many of them made a first paid sale, the rewards given and what was
/// taken back when a first sale came back in full. `?format=csv|xlsx` for a file.
#[utoipa::path(get, path = "/api/v1/reports/referrals", params(("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object)))]
pub(super) async fn report(
    State(hq): State<Hq>,
    query: Result<Query<super::marketing::ReportQuery>, QueryRejection>,
) -> Response {
    super::reports::stored_table(&hq, query, rows, &REPORT_COLUMNS).await
}

fn rows(storage: &dyn HubStore) -> Result<serde_json::Value, String> {
    let views = hub_views(storage);
    let mut direct: BTreeMap<MemberId, Vec<MemberId>> = BTreeMap::new();
    for (key, _) in storage
        .views(keys::REFERRED, usize::MAX)
        .map_err(|e| e.to_string())?
    {
        let rest = String::from_utf8_lossy(&key[keys::REFERRED.len()..]).into_owned();
        let Some((referrer, member)) = rest.split_once('/') else {
            continue;
        };
        let (Ok(referrer), Ok(member)) = (MemberId::parse(referrer), MemberId::parse(member))
        else {
            continue;
        };
        direct.entry(referrer).or_default().push(member);
    }
    let mut rows = Vec::new();
    for (referrer, members) in &direct {
        let second: Vec<MemberId> = members
            .iter()
            .flat_map(|m| direct.get(m).cloned().unwrap_or_default())
            .collect();
        let record = storage.member(referrer).map_err(|e| e.to_string())?;
        let (name, phone) = record
            .map(|r| (r.profile.name, r.profile.phone.masked()))
            .unwrap_or_default();
        for (level, referred) in [(1u8, members), (2u8, &second)] {
            if referred.is_empty() {
                continue;
            }
            let (mut paid, mut rewarded, mut points, mut bonus) = (0u64, 0u64, 0u64, 0i64);
            let (mut back, mut kept) = (0u64, 0u64);
            for m in referred {
                let given: Option<Given> = inventory::read(&views, &keys::given(m, level))?;
                paid += u64::from(given.is_some() || live_sales(&views, m)? > 0);
                if let Some(g) = given.filter(|g| g.referrer == *referrer) {
                    rewarded += 1;
                    points += g.points;
                    bonus += g.bonus;
                    let taken: Option<TakenBack> =
                        inventory::read(&views, &keys::taken_back(m, level))?;
                    if let Some(t) = taken {
                        back += t.points;
                        kept += t.kept_points;
                    }
                }
            }
            rows.push(json!({"referrer": referrer.to_string(), "name": name,
                "phone_masked": phone, "level": level, "referred": referred.len(),
                "paid": paid, "rewarded": rewarded, "points": points,
                "bonus": Fen(bonus).to_decimal().to_string(), "taken_back_points": back,
                "kept_points": kept}));
        }
    }
    Ok(json!({"rows": rows}))
}
