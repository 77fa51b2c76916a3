//! The stores: their links and lag, holds and fences of quiet stores, and their logs for an
//! audit.

use super::*;

/// Every store the hub has heard from: link state and how far behind it is.
/// Each store's link and sync lag (同步状态), as JSON, CSV or Excel.
#[utoipa::path(get, path = "/api/v1/stores", params(("format" = Option<String>, Query, description = "json (default), csv or xlsx")), responses((status = 200, body = Object, description = "每个门店的链路与同步落后")))]
pub(super) async fn stores(
    State(hq): State<Hq>,
    q: Result<Query<reports::FormatQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad_query("the only parameter is format".into());
    };
    match hq.ingest.stores().await {
        Ok(rows) => reports::table_report(
            q.format.as_deref(),
            json!({"stores": rows}),
            "stores",
            &[
                ("store_id", "门店"),
                ("connected", "在线"),
                ("acked_seq", "总部已收"),
                ("log_len", "门店日志"),
                ("entries_behind", "落后条数"),
                ("seconds_behind", "落后秒数"),
            ],
        ),
        Err(e) => unavailable(e.to_string()),
    }
}

/// The longest hold an operator may place: 30 days.
pub(super) const HOLD_SECONDS_MAX: u64 = 30 * 24 * 3600;
pub(super) const REASON_CHARS_MAX: usize = 200;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct HoldBody {
    /// How long the store has to show a sign of life before it is fenced.
    seconds: u64,
    reason: String,
}

pub(super) fn hold_error(e: HoldError) -> Response {
    let code = match &e {
        HoldError::UnknownStore(_) => Code::UnknownStore,
        HoldError::Headquarters => Code::InvalidStore,
        HoldError::Online(_) => Code::StoreOnline,
        HoldError::AlreadyOnHold(_) => Code::AlreadyOnHold,
        HoldError::Fenced(_) => Code::StoreFenced,
        HoldError::NotOnHold(_) => Code::NotOnHold,
        HoldError::TooSoon { .. } => Code::HoldTooShort,
        HoldError::Ingest(e) => return unavailable(e.to_string()),
    };
    code.answer(e)
}

/// 挂起门店: puts a store that has gone quiet on hold. If it does not come back within
/// `seconds`, it is fenced and headquarters takes back every right it holds, so its members can
/// spend their balance elsewhere. Any connection from the store voids the hold.
#[utoipa::path(post, path = "/api/v1/stores/{store_id}/hold", params(("store_id" = String, Path), ("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = HoldBody), responses((status = 201, body = Object)))]
pub(super) async fn hold_store(
    State(hq): State<Hq>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Result<axum::Json<HoldBody>, JsonRejection>,
) -> Response {
    let (staff, store) = match operator_and_store(&headers, &raw) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let bad = |detail: String| Code::InvalidHold.answer(detail);
    let body = match body {
        Ok(axum::Json(body)) => body,
        Err(e) => return body_refused(e, Code::InvalidHold),
    };
    if body.seconds == 0 || body.seconds > HOLD_SECONDS_MAX {
        return bad(format!("seconds is 1 to {HOLD_SECONDS_MAX}"));
    }
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_CHARS_MAX {
        return bad(format!(
            "a reason of 1 to {REASON_CHARS_MAX} characters is required"
        ));
    }
    let until_ms = crate::ingest::system_now_ms() + body.seconds * 1000;
    match hq
        .ingest
        .hold(
            store.clone(),
            until_ms,
            staff.to_string(),
            reason.to_owned(),
        )
        .await
    {
        Ok(fence) => axum::Json(json!({"store_id": store, "fence": fence})).into_response(),
        Err(e) => hold_error(e),
    }
}

/// 撤销挂起: voids a hold before it is posted.
#[utoipa::path(delete, path = "/api/v1/stores/{store_id}/hold", params(("store_id" = String, Path), ("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), responses((status = 200, body = Object)))]
pub(super) async fn void_hold(
    State(hq): State<Hq>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (staff, store) = match operator_and_store(&headers, &raw) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    match hq.ingest.void_hold(store.clone(), staff.to_string()).await {
        Ok(()) => axum::Json(json!({"store_id": store, "fence": null})).into_response(),
        Err(e) => hold_error(e),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeBody {
    reason: String,
}

/// 吊销证书: refuses the store's certificates issued before now, at once (a connected store is
/// cut off within seconds) and at every handshake after, with the reason; a certificate issued
/// later (the store enrolled again) is good. Its balances are not touched: that is a hold.
#[utoipa::path(post, path = "/api/v1/stores/{store_id}/revoke", params(("store_id" = String, Path), ("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = RevokeBody), responses((status = 201, body = Object)))]
pub(super) async fn revoke_store(
    State(hq): State<Hq>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Result<axum::Json<RevokeBody>, JsonRejection>,
) -> Response {
    let (staff, store) = match operator_and_store(&headers, &raw) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    if store == StoreId::hq() {
        return Code::InvalidStore.answer("headquarters has no store certificate");
    }
    let body = match body {
        Ok(axum::Json(body)) => body,
        Err(e) => return body_refused(e, Code::InvalidRequest),
    };
    let reason = body.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > REASON_CHARS_MAX {
        return Code::InvalidRequest.answer(format!(
            "a reason of 1 to {REASON_CHARS_MAX} characters is required"
        ));
    }
    let revocation = crate::storage::Revocation {
        at_ms: crate::ingest::system_now_ms(),
        by: staff.to_string(),
        reason: reason.clone(),
    };
    let (writer, who) = (hq.storage.clone(), store.clone());
    let kept = revocation.clone();
    match tokio::task::spawn_blocking(move || writer.revoke(&who, &kept)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return unavailable(e.to_string()),
        Err(e) => return unavailable(e.to_string()),
    }
    let note = protocol::audit::Note::CertificateRevoked {
        store: store.clone(),
        reason,
    };
    match hq
        .ingest
        .hq_write(crate::ingest::HqWrite::Note(note), staff)
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return unavailable(e.to_string()),
        Err(e) => return unavailable(e.to_string()),
    }
    (
        axum::http::StatusCode::CREATED,
        axum::Json(json!({"store_id": store, "revoked": revocation})),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EntriesQuery {
    /// The first seq to list (1 by default).
    from_seq: Option<u64>,
    /// At most this many (100 by default, 1,000 at most).
    limit: Option<usize>,
}

/// 日志查阅: a store's log as headquarters holds it, for an audit — each entry's seq, time,
/// business day, staff, request key, kind, what it did (the audit log's label where it is a
/// sensitive action), its hash, and whether it links to the entry before it.
#[utoipa::path(get, path = "/api/v1/stores/{store_id}/entries", params(("store_id" = String, Path), ("from_seq" = Option<i64>, Query, description = "1 or more"), ("limit" = Option<usize>, Query, description = "100 by default, 1,000 at most")), responses((status = 200, body = Object)))]
pub(super) async fn store_entries(
    State(hq): State<Hq>,
    Path(raw): Path<String>,
    q: Result<Query<EntriesQuery>, QueryRejection>,
) -> Response {
    let store = match store_in_path(&raw) {
        Ok(store) => store,
        Err(refused) => return *refused,
    };
    let (from, limit) = match q {
        Ok(Query(q)) => (q.from_seq.unwrap_or(1).max(1), q.limit.unwrap_or(100)),
        Err(e) => return bad_query(e.body_text()),
    };
    if !(1..=1_000).contains(&limit) {
        return bad_query("limit is 1 to 1000".into());
    }
    if i64::try_from(from).is_err() {
        return bad_query("from_seq is a log position, 1 to 9223372036854775807".into());
    }
    // The entry before the first, to check the first link too.
    let start = from.saturating_sub(1).max(1);
    let (storage, of) = (hq.storage.clone(), store.clone());
    let read = tokio::task::spawn_blocking(move || storage.entries(&of, start, limit + 1)).await;
    let raw_entries = match read {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => return unavailable(e.to_string()),
        Err(e) => return unavailable(e.to_string()),
    };
    let mut prev = None;
    let mut rows = Vec::new();
    for bytes in raw_entries {
        let entry = match protocol::Entry::decode(&bytes) {
            Ok(e) => e,
            Err(e) => return unavailable(format!("a stored entry does not decode: {e}")),
        };
        let hash = protocol::EntryHash::of_encoded(&bytes);
        let linked = match prev {
            Some(p) => entry.prev_hash == p,
            None => entry.seq != 1 || entry.prev_hash == protocol::EntryHash::GENESIS,
        };
        prev = Some(hash);
        if entry.seq < from {
            continue;
        }
        let payload = serde_json::to_value(&entry.payload).unwrap_or_default();
        let kind = payload
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_else(|| payload.as_str().unwrap_or_default().to_owned());
        let action = protocol::audit::action(&entry);
        rows.push(json!({
            "seq": entry.seq, "recorded_at_ms": entry.hlc.wall_ms,
            "business_date": entry.business_date, "staff_id": entry.staff, "key": entry.tx,
            "kind": kind, "action": action.as_ref().map(|a| a.0),
            "detail": action.map(|a| a.1), "hash": hash.to_string(), "linked": linked,
        }));
    }
    rows.truncate(limit);
    axum::Json(json!({ "store_id": store, "entries": rows })).into_response()
}
