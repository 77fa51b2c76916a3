//! The chain's member directory at headquarters (phones masked) and members' wallets.

use super::*;

/// A member as headquarters sees it; the phone is masked (HQ staff search, they do not dial).
pub(super) fn member_json(record: MemberRecord) -> Response {
    let p = record.profile;
    axum::Json(json!({
        "member_id": record.member_id.to_string(),
        "name": p.name,
        "phone_masked": p.phone.masked(),
        "card_no": p.card_no,
        "card_status": p.card_status.as_str(),
        "former_cards": p.former_cards,
        "tier": p.tier,
        "tags": p.tags,
        "notes": p.notes,
        "home_store": p.home_store,
        "join_date": p.join_date,
    }))
    .into_response()
}

/// A wallet's stored value as the pages show it: the total, principal and bonus.
pub(super) fn stored_value_json(summary: &protocol::wallet::Summary) -> serde_json::Value {
    json!({
        "total": Money::cny(Fen(summary.principal.0 + summary.bonus.0)),
        "principal": Money::cny(summary.principal),
        "bonus": Money::cny(summary.bonus),
    })
}

pub(super) fn found(
    record: Result<Option<MemberRecord>, crate::storage::HubStoreError>,
) -> Response {
    match record {
        Ok(Some(record)) => member_json(record),
        Ok(None) => Code::MemberNotFound.answer("no such member"),
        Err(e) => unavailable(e.to_string()),
    }
}

#[utoipa::path(get, path = "/api/v1/members/{member_id}", params(("member_id" = String, Path)), responses((status = 200, body = Object)))]
pub(super) async fn get_member(State(hq): State<Hq>, Path(raw): Path<String>) -> Response {
    match member_in_path(&raw) {
        Ok(id) => answer_from(&hq, move |storage| found(storage.member(&id))).await,
        Err(refused) => *refused,
    }
}

#[derive(Deserialize)]
pub(super) struct Lookup {
    phone: String,
}

#[utoipa::path(get, path = "/api/v1/members/lookup", params(("phone" = String, Query)), responses((status = 200, body = Object)))]
pub(super) async fn lookup_member(
    State(hq): State<Hq>,
    q: Result<Query<Lookup>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(e.body_text()),
    };
    let phone = match Phone::parse(&q.phone) {
        Ok(phone) => phone,
        Err(e) => {
            return Code::InvalidPhone.answer(e);
        }
    };
    answer_from(&hq, move |storage| match storage.member_by_phone(&phone) {
        Ok(Some(id)) => found(storage.member(&id)),
        Ok(None) => found(Ok(None)),
        Err(e) => unavailable(e.to_string()),
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Search {
    q: String,
}

/// 会员搜索: up to 20 members of the whole chain by part of the name, the phone's last digits
/// or the card number, phones masked, each with the stores that follow them (`whole_at`: they
/// hold, or are fetching, the whole record; every other store holds the member's listing).
#[utoipa::path(get, path = "/api/v1/members/search", params(("q" = String, Query, description = "part of the name, the phone's last digits or the card number")), responses((status = 200, body = Object)))]
pub(super) async fn search_members(
    State(hq): State<Hq>,
    q: Result<Query<Search>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q.q,
        Err(e) => return bad_query(e.body_text()),
    };
    let chars = q.trim().chars().count();
    if chars == 0 || chars > protocol::member::SEARCH_CHARS_MAX {
        return bad_query(
            "q: give 1 to 32 characters of a name, a phone's last digits or a card number".into(),
        );
    }
    let storage = hq.storage.clone();
    let routes = hq.ingest.routes();
    let found = tokio::task::spawn_blocking(move || {
        storage
            .search_members(&q, protocol::member::SEARCH_RESULTS_MAX)
            .map(|found| {
                let routes = routes.read().unwrap_or_else(|p| p.into_inner());
                found
                    .into_iter()
                    .map(|m| {
                        let p = m.profile;
                        // 会员名录: the stores holding the member whole; the others hold
                        // their listing (no notes, no custom fields).
                        let whole_at = routes.followers(&m.member_id);
                        json!({"member_id": m.member_id.to_string(), "name": p.name,
                           "phone_masked": p.phone.masked(), "card_no": p.card_no,
                           "card_status": p.card_status.as_str(),
                           "tier": p.tier, "home_store": p.home_store, "whole_at": whole_at})
                    })
                    .collect::<Vec<_>>()
            })
    })
    .await;
    match found {
        Ok(Ok(members)) => axum::Json(json!({ "members": members })).into_response(),
        Ok(Err(e)) => unavailable(e.to_string()),
        Err(e) => unavailable(e.to_string()),
    }
}

/// A member's wallet as headquarters sees it, with where each counter's rights are held.
#[utoipa::path(get, path = "/api/v1/members/{member_id}/wallet", params(("member_id" = String, Path)), responses((status = 200, body = Object)))]
pub(super) async fn get_wallet(State(hq): State<Hq>, Path(raw): Path<String>) -> Response {
    let id = match member_in_path(&raw) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let of = id;
    let wallet = match read(&hq, move |storage| {
        Ok::<_, crate::storage::HubStoreError>(match storage.member(&of)? {
            None => None,
            // A member with no wallet yet has an empty one.
            Some(_) => Some(storage.wallet(&of)?.unwrap_or_default()),
        })
    })
    .await
    {
        Ok(Some(wallet)) => wallet,
        Ok(None) => return found(Ok(None)),
        Err(answer) => return answer,
    };
    let summary = wallet.summary(&StoreId::hq(), today(), &PointsPolicy::default());
    let rights: serde_json::Map<String, serde_json::Value> = wallet
        .counters
        .iter()
        .map(|(counter, r)| {
            let held: serde_json::Map<String, serde_json::Value> = r
                .replicas()
                .into_iter()
                .map(|s| (s.to_string(), json!(r.held(&s))))
                .filter(|(_, held)| held != &json!(0))
                .collect();
            (counter.to_string(), json!(held))
        })
        .collect();
    axum::Json(json!({
        "member_id": id.to_string(),
        "stored_value": stored_value_json(&summary),
        "points": {"balance": summary.points, "lots": summary.lots},
        "cards": summary.cards,
        // Offline overdrafts and stored value a fenced store spent twice: what the member owes.
        "owed": Money::cny(summary.owed),
        "rights_held": rights,
    }))
    .into_response()
}

/// 批量打标签: a tag and the phones of the members to give it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TagBody {
    tag: String,
    phones: Vec<String>,
}

/// The most phones a refusal lists.
const BAD_PHONES_LISTED: usize = 20;

/// 批量打标签: gives `tag` to the members with these phones (a target list brought in for a
/// segment: 标签 is a segment condition). Every phone must name a member, or nothing is
/// written and the answer lists the ones that do not; a member tagged already is left as is.
#[utoipa::path(post, path = "/api/v1/members/tags", request_body(content = TagBody, description = "tag, phones (at most 10,000)"), params(("X-Staff-Id" = String, Header, description = "who acts")), responses((status = 200, body = Object), (status = 422, body = super::doc::ErrorBody)))]
pub(super) async fn tag_members(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<TagBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let by = match operator(&headers) {
        Ok(staff) => staff,
        Err(response) => return *response,
    };
    let body = match body {
        Ok(axum::Json(body)) => body,
        Err(e) => return super::body_refused(e, Code::InvalidRequest),
    };
    let tag = body.tag.trim().to_owned();
    let patch = protocol::member::ProfilePatch {
        tags_add: vec![tag.clone()],
        ..Default::default()
    };
    if let Err(e) = patch.validate() {
        return Code::InvalidRequest.answer(format!("tag: {e}"));
    }
    let max = crate::ingest::TAG_MEMBERS_MAX;
    if body.phones.is_empty() || body.phones.len() > max {
        return Code::InvalidRequest.answer(format!("1 to {max} phones a request"));
    }
    let phones = body.phones;
    let found = read(&hq, move |storage| {
        let (mut members, mut bad) = (Vec::with_capacity(phones.len()), Vec::new());
        for raw in &phones {
            let found = match Phone::parse(raw) {
                Ok(phone) => storage.member_by_phone(&phone)?,
                Err(_) => None,
            };
            match found {
                Some(id) => members.push(id),
                None => bad.push(raw.clone()),
            }
        }
        Ok::<_, crate::storage::HubStoreError>((members, bad))
    })
    .await;
    let (mut members, bad) = match found {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    if !bad.is_empty() {
        let listed: Vec<_> = bad.iter().take(BAD_PHONES_LISTED).collect();
        return Code::InvalidPhone.answer(format!(
            "{} phones name no member (nothing was tagged): {listed:?}",
            bad.len()
        ));
    }
    members.sort();
    members.dedup();
    let n = members.len();
    let write = crate::ingest::HqWrite::TagMembers {
        tag: tag.clone(),
        members,
    };
    match hq.ingest.hq_write(write, by).await {
        Ok(Ok(())) => axum::Json(json!({"tag": tag, "members": n})).into_response(),
        Ok(Err(e)) => super::staff::write_error(e),
        Err(e) => unavailable(e.to_string()),
    }
}
