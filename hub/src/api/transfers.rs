//! 调拨: stock transfers between stores, as headquarters requests, steps and lists them.

use super::*;

pub(super) fn transfer_refused(e: TransferRefused) -> Response {
    let code = match &e {
        TransferRefused::Unknown(_) => Code::TransferNotFound,
        TransferRefused::UnknownSku(_) => Code::UnknownSku,
        TransferRefused::Step(TransferError::NotAllowed { .. }) => Code::TransferNotAllowed,
        TransferRefused::Step(_) => Code::InvalidTransfer,
        TransferRefused::Storage(d) => return unavailable(d.clone()),
    };
    code.answer(e)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferBody {
    #[schema(value_type = String, example = "S001")]
    from: StoreId,
    #[schema(value_type = String, example = "S002")]
    to: StoreId,
    lines: Vec<LineBody>,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LineBody {
    #[schema(value_type = String)]
    sku: Sku,
    /// A decimal string: "6", "1.250".
    #[schema(value_type = String, example = "6")]
    qty: Qty,
}

/// 调拨: headquarters moves goods between two stores (it approves its own request next).
#[utoipa::path(post, path = "/api/v1/transfers", params(("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = TransferBody), responses((status = 201, body = Object)))]
pub(super) async fn request_transfer(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<TransferBody>, JsonRejection>,
) -> Response {
    let staff = match operator(&headers) {
        Ok(staff) => staff,
        Err(response) => return *response,
    };
    let body = match body {
        Ok(axum::Json(body)) => body,
        Err(e) => return body_refused(e, Code::InvalidTransfer),
    };
    let lines = body.lines.into_iter().map(|l| (l.sku, l.qty)).collect();
    let step = TransferStep::Requested {
        from: body.from,
        to: body.to,
        lines,
        note: body.note,
    };
    match hq.ingest.transfer_step(None, step, staff).await {
        Ok(Ok(t)) => (StatusCode::CREATED, axum::Json(t)).into_response(),
        Ok(Err(e)) => transfer_refused(e),
        Err(e) => unavailable(e.to_string()),
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StepBody {
    reason: Option<String>,
}

/// approve · reject (with a reason) · cancel (asks the source to cancel, with a reason).
#[utoipa::path(post, path = "/api/v1/transfers/{id}/{step}", params(("id" = String, Path), ("step" = String, Path, description = "approve, reject or cancel"), ("X-Staff-Id" = Option<String>, Header, description = "who acts, in the demo's open mode (a login sets it otherwise)")), request_body(content = StepBody), responses((status = 201, body = Object)))]
pub(super) async fn transfer_step(
    State(hq): State<Hq>,
    Path((raw, step)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let staff = match operator(&headers) {
        Ok(staff) => staff,
        Err(response) => return *response,
    };
    let Ok(id) = DocId::parse(&raw) else {
        return Code::InvalidId.answer(raw);
    };
    let body: StepBody = match body.is_empty() {
        true => StepBody::default(),
        false => match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(e) => {
                return Code::InvalidTransfer.answer(e);
            }
        },
    };
    let reason = body.reason.unwrap_or_default();
    let step = match step.as_str() {
        "approve" => TransferStep::Approved,
        "reject" => TransferStep::Rejected { reason },
        "cancel" => TransferStep::CancelRequested { reason },
        other => {
            return Code::NotFound.answer(format!(
                "headquarters may approve, reject or cancel a transfer, not {other:?}"
            ));
        }
    };
    match hq.ingest.transfer_step(Some(id), step, staff).await {
        Ok(Ok(t)) => axum::Json(t).into_response(),
        Ok(Err(e)) => transfer_refused(e),
        Err(e) => unavailable(e.to_string()),
    }
}

#[utoipa::path(get, path = "/api/v1/transfers/{id}", params(("id" = String, Path)), responses((status = 200, body = Object)))]
pub(super) async fn get_transfer(State(hq): State<Hq>, Path(raw): Path<String>) -> Response {
    let Ok(id) = DocId::parse(&raw) else {
        return Code::InvalidId.answer(raw);
    };
    answer_from(&hq, move |storage| {
        match inventory::read::<Transfer>(&hub_views(storage), &inventory::keys::transfer(&id)) {
            Ok(Some(t)) => axum::Json(t).into_response(),
            Ok(None) => transfer_refused(TransferRefused::Unknown(id)),
            Err(e) => unavailable(e),
        }
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct TransfersQuery {
    /// requested · approved · shipped (in transit) · received · rejected · cancelled
    state: Option<String>,
}

/// The transfer queue (调拨单), optionally in one state.
#[utoipa::path(get, path = "/api/v1/transfers", params(("state" = Option<String>, Query, description = "requested, approved, shipped, received, rejected or cancelled")), responses((status = 200, body = Object)))]
pub(super) async fn list_transfers(
    State(hq): State<Hq>,
    q: Result<Query<TransfersQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return Code::InvalidQuery.answer("state=");
    };
    answer_from(&hq, move |storage| {
        let records = match storage.views(b"tr/", usize::MAX) {
            Ok(records) => records,
            Err(e) => return unavailable(e.to_string()),
        };
        let mut out = Vec::new();
        for (key, bytes) in records {
            let t: Transfer = match postcard::from_bytes(&bytes) {
                Ok(t) => t,
                Err(e) => return unavailable(format!("{}: {e}", String::from_utf8_lossy(&key))),
            };
            let state = serde_json::to_value(t.state).unwrap_or_default();
            if q.state.as_deref().is_none_or(|s| state == s) {
                out.push(t);
            }
        }
        axum::Json(json!({"transfers": out})).into_response()
    })
    .await
}
