//! Headquarters' error catalogue: every failure the hub's API reports, with a stable code, an
//! HTTP status and a Chinese message for the page (the English detail, naming the value at
//! fault, beside it). The node's is `node/src/api/error.rs`; the codes both use mean the same.

use std::fmt::Display;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Stable error codes. Pages and scripts branch on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidRequest,
    InvalidQuery,
    InvalidId,
    InvalidStore,
    InvalidSku,
    InvalidBarcode,
    InvalidPhone,
    InvalidChange,
    InvalidTransfer,
    InvalidHold,
    InvalidStaff,
    InvalidPassword,
    InvalidRules,
    InvalidCommissionRules,
    StaffRequired,
    NotFound,
    UnknownStore,
    UnknownSku,
    UnknownBarcode,
    MemberNotFound,
    TransferNotFound,
    NotOnHold,
    DuplicateBarcode,
    /// 门店经营品项: a store that would stop carrying a product still holds some.
    StockHeld,
    TransferNotAllowed,
    AlreadyOnHold,
    StoreOnline,
    StoreFenced,
    HoldTooShort,
    NotErasable,
    CardStateInvalid,
    PayloadTooLarge,
    HostNotAllowed,
    LoginRequired,
    LoginFailed,
    AccountLocked,
    SessionExpired,
    SessionRevoked,
    RoleForbidden,
    Unavailable,
    InvalidMarketing,
    MarketingNotFound,
    MarketingClosed,
    /// Asked too often (a sign-in code): wait.
    TooManyRequests,
    /// 会员登录: the code is wrong, expired or was never sent.
    SignInFailed,
    /// 积分商城
    GiftNotFound,
    GiftUnavailable,
    GiftLimit,
    InsufficientPoints,
    /// The member's points are on their way back to headquarters: ask again in a moment.
    PointsGathering,
    PointsUnreachable,
}

impl Code {
    /// Every code, for the catalogue's own test and the documentation.
    pub const ALL: [Code; 51] = [
        Code::InvalidRequest,
        Code::InvalidQuery,
        Code::InvalidId,
        Code::InvalidStore,
        Code::InvalidSku,
        Code::InvalidBarcode,
        Code::InvalidPhone,
        Code::InvalidChange,
        Code::InvalidTransfer,
        Code::InvalidHold,
        Code::InvalidStaff,
        Code::InvalidPassword,
        Code::InvalidRules,
        Code::InvalidCommissionRules,
        Code::StaffRequired,
        Code::NotFound,
        Code::UnknownStore,
        Code::UnknownSku,
        Code::UnknownBarcode,
        Code::MemberNotFound,
        Code::TransferNotFound,
        Code::NotOnHold,
        Code::DuplicateBarcode,
        Code::StockHeld,
        Code::TransferNotAllowed,
        Code::AlreadyOnHold,
        Code::StoreOnline,
        Code::StoreFenced,
        Code::HoldTooShort,
        Code::NotErasable,
        Code::CardStateInvalid,
        Code::PayloadTooLarge,
        Code::HostNotAllowed,
        Code::LoginRequired,
        Code::LoginFailed,
        Code::AccountLocked,
        Code::SessionExpired,
        Code::SessionRevoked,
        Code::RoleForbidden,
        Code::Unavailable,
        Code::InvalidMarketing,
        Code::MarketingNotFound,
        Code::MarketingClosed,
        Code::TooManyRequests,
        Code::SignInFailed,
        Code::GiftNotFound,
        Code::GiftUnavailable,
        Code::GiftLimit,
        Code::InsufficientPoints,
        Code::PointsGathering,
        Code::PointsUnreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid_request",
            Code::InvalidQuery => "invalid_query",
            Code::InvalidId => "invalid_id",
            Code::InvalidStore => "invalid_store",
            Code::InvalidSku => "invalid_sku",
            Code::InvalidBarcode => "invalid_barcode",
            Code::InvalidPhone => "invalid_phone",
            Code::InvalidChange => "invalid_change",
            Code::InvalidTransfer => "invalid_transfer",
            Code::InvalidHold => "invalid_hold",
            Code::InvalidStaff => "invalid_staff",
            Code::InvalidPassword => "invalid_password",
            Code::InvalidRules => "invalid_rules",
            Code::InvalidCommissionRules => "invalid_commission_rules",
            Code::StaffRequired => "staff_required",
            Code::NotFound => "not_found",
            Code::UnknownStore => "unknown_store",
            Code::UnknownSku => "unknown_sku",
            Code::UnknownBarcode => "unknown_barcode",
            Code::MemberNotFound => "member_not_found",
            Code::TransferNotFound => "transfer_not_found",
            Code::NotOnHold => "not_on_hold",
            Code::DuplicateBarcode => "duplicate_barcode",
            Code::StockHeld => "stock_held",
            Code::TransferNotAllowed => "transfer_not_allowed",
            Code::AlreadyOnHold => "already_on_hold",
            Code::StoreOnline => "store_online",
            Code::StoreFenced => "store_fenced",
            Code::HoldTooShort => "hold_too_short",
            Code::NotErasable => "not_erasable",
            Code::CardStateInvalid => "card_state_invalid",
            Code::PayloadTooLarge => "payload_too_large",
            Code::HostNotAllowed => "host_not_allowed",
            Code::LoginRequired => "login_required",
            Code::LoginFailed => "login_failed",
            Code::AccountLocked => "account_locked",
            Code::SessionExpired => "session_expired",
            Code::SessionRevoked => "session_revoked",
            Code::RoleForbidden => "role_forbidden",
            Code::Unavailable => "unavailable",
            Code::InvalidMarketing => "invalid_marketing",
            Code::MarketingNotFound => "marketing_not_found",
            Code::MarketingClosed => "marketing_closed",
            Code::TooManyRequests => "too_many_requests",
            Code::SignInFailed => "sign_in_failed",
            Code::GiftNotFound => "gift_not_found",
            Code::GiftUnavailable => "gift_unavailable",
            Code::GiftLimit => "gift_limit_reached",
            Code::InsufficientPoints => "insufficient_points",
            Code::PointsGathering => "points_on_the_way",
            Code::PointsUnreachable => "points_unreachable",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidRequest
            | Code::InvalidQuery
            | Code::InvalidId
            | Code::InvalidStore
            | Code::InvalidSku
            | Code::InvalidBarcode
            | Code::InvalidChange
            | Code::InvalidTransfer
            | Code::InvalidHold
            | Code::StaffRequired => StatusCode::BAD_REQUEST,
            Code::InvalidPhone
            | Code::InvalidStaff
            | Code::InvalidPassword
            | Code::InvalidRules
            | Code::InvalidCommissionRules
            | Code::InvalidMarketing
            | Code::HoldTooShort => StatusCode::UNPROCESSABLE_ENTITY,
            Code::NotFound
            | Code::UnknownStore
            | Code::UnknownSku
            | Code::UnknownBarcode
            | Code::MemberNotFound
            | Code::TransferNotFound
            | Code::MarketingNotFound
            | Code::NotOnHold => StatusCode::NOT_FOUND,
            Code::DuplicateBarcode
            | Code::StockHeld
            | Code::TransferNotAllowed
            | Code::AlreadyOnHold
            | Code::StoreOnline
            | Code::StoreFenced
            | Code::MarketingClosed
            | Code::NotErasable
            | Code::CardStateInvalid => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::HostNotAllowed => StatusCode::MISDIRECTED_REQUEST,
            Code::LoginRequired
            | Code::LoginFailed
            | Code::SessionExpired
            | Code::SessionRevoked => StatusCode::UNAUTHORIZED,
            Code::AccountLocked => StatusCode::LOCKED,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::SignInFailed => StatusCode::UNAUTHORIZED,
            Code::GiftNotFound => StatusCode::NOT_FOUND,
            Code::GiftUnavailable
            | Code::GiftLimit
            | Code::PointsGathering
            | Code::PointsUnreachable => StatusCode::CONFLICT,
            Code::InsufficientPoints => StatusCode::UNPROCESSABLE_ENTITY,
            Code::RoleForbidden => StatusCode::FORBIDDEN,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn message_zh(self) -> &'static str {
        match self {
            Code::InvalidRequest => "请求内容不正确",
            Code::InvalidQuery => "查询参数不正确",
            Code::InvalidId => "编号格式不正确",
            Code::InvalidStore => "门店编号不正确",
            Code::InvalidSku => "商品编码不正确",
            Code::InvalidBarcode => "条码格式不正确",
            Code::InvalidPhone => "手机号格式不正确",
            Code::InvalidChange => "商品资料填写不正确",
            Code::InvalidTransfer => "调拨单填写不正确",
            Code::InvalidHold => "挂起参数不正确",
            Code::InvalidStaff => "员工资料填写不正确",
            Code::InvalidPassword => "密码须为 6 到 64 个字符（总部账号至少 10 个字符）",
            Code::InvalidRules => "会员规则填写不正确",
            Code::InvalidCommissionRules => "提成规则填写不正确",
            Code::StaffRequired => "请填写操作员",
            Code::NotFound => "找不到该资源",
            Code::UnknownStore => "门店不存在或从未同步",
            Code::UnknownSku => "商品不存在",
            Code::UnknownBarcode => "条码不存在",
            Code::MemberNotFound => "会员不存在",
            Code::TransferNotFound => "调拨单不存在",
            Code::NotOnHold => "门店未挂起",
            Code::DuplicateBarcode => "条码已被其他商品使用",
            Code::StockHeld => "该门店仍有这件商品的库存，请先调出或报损，再调整经营品项",
            Code::TransferNotAllowed => "调拨单当前状态不允许此操作",
            Code::AlreadyOnHold => "门店已挂起",
            Code::StoreOnline => "门店在线，无需挂起",
            Code::StoreFenced => "门店已冻结，不可撤销",
            Code::HoldTooShort => {
                "门店可能仍在离线使用会员余额：挂起须持续到其离线期限结束之后，否则同一笔钱可能被花两次"
            }
            Code::NotErasable => "该会员还不能删除：请先退还储值或收回欠款",
            Code::CardStateInvalid => "会员卡当前状态不允许此操作",
            Code::PayloadTooLarge => "一次提交的内容太多，请分批提交",
            Code::HostNotAllowed => "访问地址不是总部系统的地址",
            Code::LoginRequired => "请先登录",
            Code::LoginFailed => "员工编号或密码错误",
            Code::AccountLocked => "密码错误次数过多，账号已暂时锁定",
            Code::SessionExpired => "登录已过期，请重新登录",
            Code::SessionRevoked => "您的账号权限已变更，请重新登录",
            Code::RoleForbidden => "当前岗位无权进行此操作",
            Code::Unavailable => "系统暂不可用，请稍后重试",
            Code::InvalidMarketing => "营销设置填写不正确",
            Code::MarketingNotFound => "券模板、人群或营销活动不存在",
            Code::MarketingClosed => "券模板或营销活动已停用或已过期",
            Code::TooManyRequests => "操作太频繁，请稍后再试",
            Code::SignInFailed => "验证码错误或已失效",
            Code::GiftNotFound => "积分商城没有这件礼品",
            Code::GiftUnavailable => "这件礼品暂不可兑换（已下架、已兑完，或需到店兑换）",
            Code::GiftLimit => "您已达这件礼品的每人限兑数量",
            Code::InsufficientPoints => "积分不足",
            Code::PointsGathering => "正在调取您在门店的积分，请稍候",
            Code::PointsUnreachable => "部分积分在暂时离线的门店，请稍后再试或到店兑换",
        }
    }

    /// The answer refusing a request with this code: `{code, message, detail}` and the status.
    pub fn answer(self, detail: impl Display) -> Response {
        ApiError::new(self, detail).into_response()
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub detail: String,
    /// The request field at fault, when one is (a page shows the error next to it).
    pub field: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: Code, detail: impl Display) -> Self {
        Self {
            code,
            detail: detail.to_string(),
            field: None,
        }
    }

    /// Names the request field at fault.
    pub fn on(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code.status().is_server_error() {
            tracing::error!(code = self.code.as_str(), detail = %self.detail, "request failed");
        }
        let body = super::doc::ErrorBody {
            code: self.code.as_str().to_owned(),
            message: self.code.message_zh().to_owned(),
            detail: self.detail,
            field: self.field,
        };
        (self.code.status(), axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every code is named once, says something in Chinese, and answers with an error status.
    #[test]
    fn every_code_is_distinct_and_has_a_message_and_an_error_status() {
        let names: BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len(), "a code is named twice");
        for code in Code::ALL {
            assert!(!code.message_zh().is_empty(), "{code:?}");
            assert!(
                code.status().is_client_error() || code.status().is_server_error(),
                "{code:?}"
            );
        }
    }
}
