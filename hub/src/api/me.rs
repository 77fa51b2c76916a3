//! 会员自助: the member's own page's API. A member asks for a sign-in code by phone (sent
//! through the outbox; the answer is the same whether or not the phone is a member's, so the
//! page tells no one who is), signs in with it, and then reads their own card — stored value,
//! points by lot, cards, coupons, purchases at every store — and their member code (动态会员码)
//! as digits, a QR code and a barcode. Every call after sign-in carries the member's token;
//! staff logins do not open these routes and a member's token opens nothing else.

use protocol::member_code;
use protocol::notice::{Notice, Purpose, Subject};
use protocol::seal::KeyState;

use super::error::ApiError;
use super::*;
use crate::member_auth::{self, SignInError};

fn sign_in_error(e: SignInError) -> Response {
    match e {
        SignInError::TooSoon(_) => Code::TooManyRequests.answer(e),
        SignInError::Locked(_) => Code::AccountLocked.answer(e),
        SignInError::Wrong(_) | SignInError::NoCode => Code::SignInFailed.answer(e),
    }
}

fn phone_in(raw: &str) -> Result<Phone, Box<Response>> {
    Phone::parse(raw).map_err(|e| Box::new(Code::InvalidPhone.answer(e)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CodeRequestBody {
    #[schema(example = "13800138001")]
    phone: String,
}

/// 获取验证码: a one-time code for signing in, sent to the phone if it is a member's.
#[utoipa::path(post, path = "/api/v1/me/codes", request_body = CodeRequestBody, responses((status = 202, body = Object)))]
pub(super) async fn request_code(
    State(hq): State<Hq>,
    body: Result<axum::Json<CodeRequestBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(axum::Json(b)) => b,
        Err(e) => return body_refused(e, Code::InvalidRequest),
    };
    let phone = match phone_in(&body.phone) {
        Ok(phone) => phone,
        Err(refused) => return *refused,
    };
    if hq.notify.is_none() {
        return unavailable(
            "headquarters has no message gateway ([notify] in hub.toml): codes cannot be sent"
                .into(),
        );
    }
    let code = match member_auth::new_code() {
        Ok(code) => code,
        Err(e) => return unavailable(e.to_string()),
    };
    let now = login::now_ms();
    if let Err(e) = hq.member_auth.issue(&phone, &code, now) {
        return sign_in_error(e);
    }
    // Queued off the answer: a member's phone and a stranger's are answered alike, and as fast.
    let storage = hq.storage.clone();
    let masked = phone.masked();
    tokio::task::spawn_blocking(move || {
        let queued = storage
            .member_by_phone(&phone)
            .and_then(|member| match member {
                Some(member) => {
                    let notice = Notice {
                        id: format!("signin-{member}-{now}"),
                        member,
                        purpose: Purpose::Transactional,
                        subject: Subject::SignInCode { code },
                        store: StoreId::hq(),
                        at_ms: now,
                    };
                    storage.queue_notices(&[notice]).map(|_| true)
                }
                None => Ok(false),
            });
        match queued {
            Ok(sent) => tracing::info!(phone = %masked, sent, "sign-in code asked for"),
            Err(e) => tracing::error!(phone = %masked, error = %e, "a sign-in code was not queued"),
        }
    });
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"sent": true, "valid_minutes": member_auth::CODE_MS / 60_000})),
    )
        .into_response()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignInBody {
    #[schema(example = "13800138001")]
    phone: String,
    #[schema(example = "123456")]
    code: String,
}

/// 会员登录: the phone and the code it was sent; a token for the member's own page.
#[utoipa::path(post, path = "/api/v1/me/sessions", request_body = SignInBody, responses((status = 201, body = Object)))]
pub(super) async fn sign_in(
    State(hq): State<Hq>,
    body: Result<axum::Json<SignInBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(axum::Json(b)) => b,
        Err(e) => return body_refused(e, Code::InvalidRequest),
    };
    let phone = match phone_in(&body.phone) {
        Ok(phone) => phone,
        Err(refused) => return *refused,
    };
    let now = login::now_ms();
    if let Err(e) = hq.member_auth.take(&phone, &body.code, now) {
        return sign_in_error(e);
    }
    let of = phone.clone();
    let member = match read(&hq, move |storage| storage.member_by_phone(&of)).await {
        Ok(Some(member)) => member,
        // A code is sent only to a member's phone: none was, so none is right.
        Ok(None) => return sign_in_error(SignInError::NoCode),
        Err(answer) => return answer,
    };
    let token = match login::new_token() {
        Ok(token) => token,
        Err(e) => return unavailable(e.to_string()),
    };
    hq.member_auth.open(token.clone(), member, now);
    (
        StatusCode::CREATED,
        axum::Json(json!({"token": token, "expires_ms": now + member_auth::SESSION_MS})),
    )
        .into_response()
}

/// The member the request's token signed in, or the answer refusing it.
pub(super) fn signed_in(hq: &Hq, headers: &HeaderMap) -> Result<MemberId, Box<Response>> {
    login::bearer(headers)
        .and_then(|t| hq.member_auth.member(t, login::now_ms()))
        .ok_or_else(|| {
            Box::new(Code::LoginRequired.answer("sign in first: POST /api/v1/me/sessions"))
        })
}

/// 退出: ends the member's session.
#[utoipa::path(delete, path = "/api/v1/me/sessions", responses((status = 200, body = Object)))]
pub(super) async fn sign_out(State(hq): State<Hq>, headers: HeaderMap) -> Response {
    if let Some(token) = login::bearer(&headers) {
        hq.member_auth.close(token);
    }
    axum::Json(json!({"signed_out": true})).into_response()
}

/// The most purchases the page lists.
const PURCHASES_SHOWN: usize = 20;

/// 我的会员卡: the signed-in member's profile, stored value, points by lot, cards, coupons
/// and recent purchases at every store.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Object)))]
pub(super) async fn me(State(hq): State<Hq>, headers: HeaderMap) -> Response {
    let member = match signed_in(&hq, &headers) {
        Ok(member) => member,
        Err(refused) => return *refused,
    };
    answer_from(&hq, move |storage| {
        let record = match storage.member(&member) {
            Ok(Some(record)) => record,
            Ok(None) => return Code::MemberNotFound.answer("no such member"),
            Err(e) => return unavailable(e.to_string()),
        };
        let wallet = match storage.wallet(&member) {
            Ok(wallet) => wallet.unwrap_or_default(),
            Err(e) => return unavailable(e.to_string()),
        };
        let purchases = match storage.views(
            &protocol::project::history::prefix(&member),
            PURCHASES_SHOWN,
        ) {
            Ok(rows) => rows,
            Err(e) => return unavailable(e.to_string()),
        };
        let referred = match storage.views(
            &crate::ingest::referral::keys::referred_prefix(&member),
            usize::MAX,
        ) {
            Ok(rows) => rows.len(),
            Err(e) => return unavailable(e.to_string()),
        };
        let day = today();
        let summary = wallet.summary(&StoreId::hq(), day, &PointsPolicy::default());
        let coupons: Vec<_> = wallet
            .coupons
            .iter()
            .map(|(id, def)| {
                let state = match wallet.usable_coupon(id, day) {
                    Ok(_) => "usable",
                    Err(protocol::wallet::WalletError::CouponUsed(_)) => "used",
                    Err(_) => "not_valid_today",
                };
                json!({"coupon_id": id, "name": def.name, "offer": def.offer,
                       "valid_from": def.from, "valid_to": def.to, "state": state})
            })
            .collect();
        let mut bought = Vec::with_capacity(purchases.len());
        for (key, value) in purchases {
            let p: protocol::project::history::Purchase = match postcard::from_bytes(&value) {
                Ok(p) => p,
                Err(e) => return unavailable(format!("{}: {e}", String::from_utf8_lossy(&key))),
            };
            let at = StoreCalendar::default().local_time(p.at_ms);
            bought.push(
                json!({"store": p.store, "sale_id": p.sale_id, "returned": p.returned,
                "amount": Money::cny(p.amount), "lines": p.lines, "points": p.points,
                "at": at.format("%Y-%m-%d %H:%M").to_string()}),
            );
        }
        let p = &record.profile;
        axum::Json(json!({
            "member_id": member,
            "name": p.name,
            "phone_masked": p.phone.masked(),
            "tier": p.tier,
            "card_no": p.card_no,
            "card_status": p.card_status.as_str(),
            "stored_value": super::members::stored_value_json(&summary),
            "points": {"balance": summary.points, "lots": summary.lots},
            "cards": summary.cards,
            "coupons": coupons,
            "password_set": summary.password_set,
            "purchases": bought,
            "referral_code": protocol::referral::code(&member),
            "referred": referred,
        }))
        .into_response()
    })
    .await
}

/// 会员码: the signed-in member's code now (动态会员码), until when the page shows it, and
/// the same as a QR code and a Code 128 barcode (SVG).
#[utoipa::path(get, path = "/api/v1/me/code", responses((status = 200, body = Object)))]
pub(super) async fn member_code(State(hq): State<Hq>, headers: HeaderMap) -> Response {
    let member = match signed_in(&hq, &headers) {
        Ok(member) => member,
        Err(refused) => return *refused,
    };
    let key = match read(&hq, move |storage| storage.member_key(&member)).await {
        Ok(KeyState::Held(key)) => key,
        Ok(_) => {
            return Code::MemberNotFound
                .answer("this member has no key (erased, or registered before keys): no code");
        }
        Err(answer) => return answer,
    };
    let (code, until_ms) = member_code::code(&key, &member, login::now_ms());
    let qr = match qrcode::QrCode::new(code.as_bytes()) {
        Ok(qr) => qr
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(e) => return unavailable(format!("QR code: {e}")),
    };
    // Code 128 in its numeric set (Ć): two digits a symbol.
    let barcode = barcoders::sym::code128::Code128::new(format!("Ć{code}"))
        .map_err(|e| e.to_string())
        .and_then(|b| {
            barcoders::generators::svg::SVG::new(80)
                .xdim(2)
                .generate(b.encode())
                .map_err(|e| e.to_string())
        });
    let barcode = match barcode {
        Ok(svg) => svg,
        Err(e) => return unavailable(format!("barcode: {e}")),
    };
    let seconds_left = until_ms.saturating_sub(login::now_ms()).div_ceil(1000);
    axum::Json(
        json!({"code": code, "until_ms": until_ms, "seconds_left": seconds_left,
                      "qr_svg": qr, "barcode_svg": barcode}),
    )
    .into_response()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordBody {
    /// The new payment password: six digits.
    #[schema(example = "135246")]
    password: String,
    /// The one in force now, if there is one…
    old_password: Option<String>,
    /// …or a code just sent to the member's phone (POST /api/v1/me/codes).
    code: Option<String>,
}

/// 修改支付密码: the member sets their payment password (six digits), proving it is them with
/// the old one or with a fresh code sent to their phone; the first one needs only the
/// sign-in. Written into their wallet at headquarters and passed on to the stores that hold it.
#[utoipa::path(put, path = "/api/v1/me/password", request_body = PasswordBody, responses((status = 200, body = Object)))]
pub(super) async fn set_password(
    State(hq): State<Hq>,
    headers: HeaderMap,
    body: Result<axum::Json<PasswordBody>, JsonRejection>,
) -> Response {
    let member = match signed_in(&hq, &headers) {
        Ok(member) => member,
        Err(refused) => return *refused,
    };
    let body = match body {
        Ok(axum::Json(b)) => b,
        Err(e) => return body_refused(e, Code::InvalidRequest),
    };
    if !protocol::secret::is_payment_password(&body.password) {
        return ApiError::new(Code::InvalidPassword, "a payment password is six digits")
            .on("password")
            .into_response();
    }
    let (phone, current) = match read(&hq, move |storage| {
        let phone = storage.member(&member)?.map(|r| r.profile.phone);
        let wallet = storage.wallet(&member)?.unwrap_or_default();
        Ok::<_, crate::storage::HubStoreError>((phone, wallet.password.map(|(_, _, hash)| hash)))
    })
    .await
    {
        Ok((Some(phone), current)) => (phone, current),
        Ok((None, _)) => return Code::MemberNotFound.answer("no such member"),
        Err(answer) => return answer,
    };
    let now = login::now_ms();
    if let Some(hash) = current {
        let proven = match (&body.old_password, &body.code) {
            (_, Some(code)) => hq.member_auth.take(&phone, code, now).map(|()| true),
            (Some(old), None) => match hq.member_auth.check(&phone, now) {
                // Locked: not even checked (nor hashed).
                Err(e) => Err(e),
                Ok(()) => {
                    let (old, hash) = (old.clone(), hash.clone());
                    let right = tokio::task::spawn_blocking(move || {
                        protocol::secret::is_payment_password(&old)
                            && protocol::secret::matches(&old, &hash) == Some(true)
                    })
                    .await
                    .unwrap_or(false);
                    // A wrong old password counts as a wrong code: five lock the phone.
                    match right {
                        true => {
                            hq.member_auth.right(&phone);
                            Ok(true)
                        }
                        false => match hq.member_auth.wrong(&phone, now) {
                            SignInError::Locked(m) => Err(SignInError::Locked(m)),
                            _ => Ok(false),
                        },
                    }
                }
            },
            (None, None) => {
                return ApiError::new(
                    Code::SignInFailed,
                    "give the old payment password, or a code sent to your phone",
                )
                .on("old_password")
                .into_response();
            }
        };
        match proven {
            Ok(true) => {}
            Ok(false) => {
                return ApiError::new(Code::SignInFailed, "the old payment password is wrong")
                    .on("old_password")
                    .into_response();
            }
            Err(e) => return sign_in_error(e),
        }
    }
    let mut salt = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut salt) {
        return unavailable(e.to_string());
    }
    let new = body.password;
    let hash = match tokio::task::spawn_blocking(move || protocol::secret::hash(&new, salt)).await {
        Ok(Some(hash)) => hash,
        _ => return unavailable("hashing the password failed".into()),
    };
    let write = crate::ingest::HqWrite::MemberPassword { member, hash };
    match hq.ingest.hq_write(write, StaffId::system()).await {
        Ok(Ok(())) => axum::Json(json!({"password_set": true})).into_response(),
        Ok(Err(e)) => super::staff::write_error(e),
        Err(e) => unavailable(e.to_string()),
    }
}
