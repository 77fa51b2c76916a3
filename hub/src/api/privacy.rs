//! 个人信息查阅复制: a member's own data on request (PIPL art. 45) — the profile as headquarters
//! holds it (the full phone, birthday, tags, notes), the wallet (stored value, points by lot,
//! cards, coupons, what is owed), and every entry of every store's log that concerns them
//! (registration and edits, sales, returns, top-ups and other wallet changes), as one JSON
//! file, without the payment password's hash. Headquarters' admins and auditors may export;
//! each export is an entry of headquarters' log, in the audit log.
//!
//! 删除个人信息 (PIPL art. 47): a member erased on request. Headquarters writes the erasure in
//! its log; every replica then destroys the member's key and what it kept of their person
//! (`protocol::seal`). Only headquarters' admins may erase.

use protocol::entry::{Entry, Payload};

use super::*;
use crate::ingest::HqWrite;

/// The member an entry is about, if any.
fn concerns(payload: &Payload) -> Option<MemberId> {
    match payload {
        Payload::MemberRegistered { member_id, .. }
        | Payload::MemberEdited { member_id, .. }
        | Payload::Wallet { member_id, .. }
        | Payload::MemberErased { member_id } => Some(*member_id),
        Payload::QuickSale(sale) | Payload::Sale { sale, .. } => sale.member_id,
        Payload::Checkout { sale, .. } => sale.member_id,
        Payload::Return { member_id, .. } => *member_id,
        Payload::ItemReturn { ret, .. } => ret.member_id,
        Payload::Audit {
            note:
                protocol::audit::Note::TierChanged { member_id, .. }
                | protocol::audit::Note::TierMoved { member_id, .. }
                | protocol::audit::Note::CardLost { member_id, .. }
                | protocol::audit::Note::CardFound { member_id, .. }
                | protocol::audit::Note::CardReissued { member_id, .. },
        } => Some(*member_id),
        Payload::Audit {
            note: protocol::audit::Note::HeldVoided { member_id, .. },
        } => *member_id,
        _ => None,
    }
}

/// One entry as the export lists it: where, when, who, what (the payload without the profile
/// change's bytes, which the profile above already shows).
fn entry_json(store: &StoreId, entry: &Entry) -> serde_json::Value {
    let what = match &entry.payload {
        Payload::MemberRegistered { .. } => json!("member_registered"),
        Payload::MemberEdited { .. } => json!("member_edited"),
        // The payment password's hash is not the member's data to take away: six digits are
        // guessed from it offline.
        Payload::Wallet {
            event: protocol::wallet::WalletEvent::PasswordSet { .. },
            ..
        } => json!("payment_password_set"),
        other => serde_json::to_value(other).unwrap_or_default(),
    };
    json!({
        "store_id": store, "seq": entry.seq, "recorded_at_ms": entry.hlc.wall_ms,
        "business_date": entry.business_date, "staff_id": entry.staff,
        "action": protocol::audit::action(entry).map(|a| a.0),
        "entry": what,
    })
}

/// 个人信息导出: everything headquarters holds about one member, as a file.
#[utoipa::path(get, path = "/api/v1/members/{member_id}/export", params(("member_id" = String, Path)), responses((status = 200, body = Object, description = "member-<id>.json: profile, wallet and every entry about the member")))]
pub(super) async fn export_member(
    State(hq): State<Hq>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = match member_in_path(&raw) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let storage = hq.storage.clone();
    let read = tokio::task::spawn_blocking(move || {
        let Some(record) = storage.member(&id).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let wallet = storage
            .wallet(&id)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let mut history = Vec::new();
        staff::each_entry(&*storage, |store, entry| {
            if concerns(&entry.payload) == Some(id) {
                history.push(entry_json(store, &entry));
            }
        })?;
        Ok::<_, String>(Some((record, wallet, history)))
    })
    .await;
    let (record, wallet, history) = match read {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return super::members::found(Ok(None)),
        Ok(Err(e)) => return unavailable(e),
        Err(e) => return unavailable(e.to_string()),
    };
    let by = operator_or_system(&headers);
    // In the audit log before the file leaves: who took whose data, when.
    let note = protocol::audit::Note::MemberExported { member_id: id };
    match hq.ingest.hq_write(HqWrite::Note(note), by.clone()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return unavailable(e.to_string()),
        Err(e) => return unavailable(e.to_string()),
    }
    let p = &record.profile;
    let summary = wallet.summary(&StoreId::hq(), today(), &PointsPolicy::default());
    let body = json!({
        "member_id": id.to_string(),
        "exported_at_ms": login::now_ms(),
        "exported_by": by,
        "profile": {
            "name": p.name, "phone": p.phone.as_str(), "card_no": p.card_no,
            "birthday": p.birthday, "gender": p.gender, "tags": p.tags, "notes": p.notes,
            "tier": p.tier, "custom": p.custom, "home_store": p.home_store,
            "join_date": p.join_date, "referrer": p.referrer,
        },
        "wallet": {
            "stored_value": {
                "principal": Money::cny(summary.principal),
                "bonus": Money::cny(summary.bonus),
            },
            "points": summary.points,
            "points_lots": summary.lots,
            "cards": summary.cards,
            "owed": Money::cny(summary.owed),
        },
        "payment_password_set": wallet.password.is_some(),
        "history": history,
    });
    let disposition = format!("attachment; filename=\"member-{id}.json\"");
    (
        [(axum::http::header::CONTENT_DISPOSITION, disposition)],
        axum::Json(body),
    )
        .into_response()
}

/// 删除会员: erases a member on request, once the chain owes them no stored value and they owe
/// no store. Their name, phone and the rest become unreadable everywhere; their sales and wallet
/// history stay, under their id, so the books still add up.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/erase", params(("member_id" = String, Path)), responses((status = 200, body = Object, description = "erased")))]
pub(super) async fn erase_member(
    State(hq): State<Hq>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = match member_in_path(&raw) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let by = operator_or_system(&headers);
    match hq.ingest.hq_write(HqWrite::Erase(id), by).await {
        Ok(Ok(())) => axum::Json(json!({ "erased": id.to_string() })).into_response(),
        Ok(Err(e)) => staff::write_error(e),
        Err(e) => unavailable(e.to_string()),
    }
}

/// 挂失 at headquarters (the member called the service line): the card stops finding them at
/// every store, as the change reaches each; they are still found by phone. Finding it again,
/// reissuing and closing are done at a till, where the member shows who they are.
#[utoipa::path(post, path = "/api/v1/members/{member_id}/card/lost", params(("member_id" = String, Path)), responses((status = 200, body = Object, description = "reported lost"), (status = 409, body = Object)))]
pub(super) async fn card_lost(
    State(hq): State<Hq>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = match member_in_path(&raw) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let by = operator_or_system(&headers);
    match hq.ingest.hq_write(HqWrite::CardLost(id), by).await {
        Ok(Ok(())) => {
            answer_from(&hq, move |storage| {
                super::members::found(storage.member(&id))
            })
            .await
        }
        Ok(Err(e)) => staff::write_error(e),
        Err(e) => unavailable(e.to_string()),
    }
}
