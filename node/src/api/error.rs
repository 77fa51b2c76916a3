//! The error catalogue: every failure the API reports, with a stable code, an HTTP status and a
//! Chinese message for the till (with the English detail beside it).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::journal::{InventoryError, Rejection, TenderError};
use protocol::member::CardRefusal;
use protocol::pricing::PricingError;
use protocol::returns::ReturnError;
use protocol::sale::SaleError;
use protocol::stock::TransferError;
use protocol::wallet::WalletError;

/// Stable error codes. Clients branch on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    MalformedJson,
    InvalidRequest,
    InvalidQuery,
    InvalidAmount,
    AmountTooLarge,
    CurrencyNotAccepted,
    TenderShort,
    InvalidPhone,
    InvalidId,
    FieldInvalid,
    IdempotencyKeyMissing,
    IdempotencyConflict,
    PhoneTaken,
    CardTaken,
    MemberNotFound,
    ReferrerNotFound,
    SaleNotFound,
    NotFound,
    PayloadTooLarge,
    Storage,
    Unavailable,
    InsufficientBalance,
    RightsElsewhere,
    /// The rights are at another store headquarters cannot reach now (switched off, cut off):
    /// the chain's offline overdraft may apply.
    RightsUnreachable,
    /// A member this store has not had from headquarters yet (first met while offline).
    MemberNotHere,
    /// A member this store holds only as their listing, offline: their profile and card are
    /// changed on top of the whole profile (会员名录).
    ProfileNotHere,
    StoreFenced,
    OfflineTooLong,
    ClockBehind,
    HostNotAllowed,
    SessionRevoked,
    UnknownSku,
    UnknownBarcode,
    InvalidQuantity,
    TransferNotFound,
    StocktakeNotFound,
    TransferNotAllowed,
    DiscrepancyRequired,
    StocktakeInProgress,
    NotForSale,
    NotCarried,
    TendersMismatch,
    CouponNotFound,
    CouponUsed,
    GiftNotFound,
    ReferralRefused,
    GiftUnavailable,
    GiftLimit,
    CouponNotValid,
    CouponNotApplicable,
    PointsNotAccepted,
    TopUpRuleInvalid,
    CardNotFound,
    CardNotValid,
    PasswordRequired,
    PasswordWrong,
    PasswordLocked,
    ManagerRequired,
    ReturnElsewhere,
    AlreadyReturned,
    ReturnExceedsSale,
    ReturnNotReady,
    UnknownStaff,
    OrderNotFound,
    HeldOrdersFull,
    LoginRequired,
    SessionExpired,
    LoginFailed,
    AccountLocked,
    RoleForbidden,
    /// The store's log is being restored from headquarters (a new PC, an older backup).
    StoreRestoring,
    /// The request was recorded before the store's data was restored from headquarters.
    RecordedBeforeRestore,
    /// 挂失: the card was reported lost.
    CardLost,
    /// 补卡: the card was replaced by a new one.
    CardReplaced,
    /// 退卡: the membership was closed.
    MembershipClosed,
    /// 退卡: the closing would pay another amount than the preview the cashier confirmed.
    ClosingChanged,
    /// The card is not in the state the action needs (found again but not lost, no card).
    CardStateInvalid,
    /// The member owes an offline overdraft.
    MemberOwes,
    /// 动态会员码: a real code of the member's, over two minutes old.
    MemberCodeExpired,
    /// 动态会员码: taken at this store already.
    MemberCodeUsed,
    /// 动态会员码: no member has it.
    MemberCodeInvalid,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MalformedJson => "malformed_json",
            Code::InvalidRequest => "invalid_request",
            Code::InvalidQuery => "invalid_query",
            Code::InvalidAmount => "invalid_amount",
            Code::AmountTooLarge => "amount_too_large",
            Code::CurrencyNotAccepted => "currency_not_accepted",
            Code::TenderShort => "tender_short",
            Code::InvalidPhone => "invalid_phone",
            Code::InvalidId => "invalid_id",
            Code::FieldInvalid => "field_invalid",
            Code::IdempotencyKeyMissing => "idempotency_key_missing",
            Code::IdempotencyConflict => "idempotency_conflict",
            Code::PhoneTaken => "phone_taken",
            Code::CardTaken => "card_taken",
            Code::MemberNotFound => "member_not_found",
            Code::ReferrerNotFound => "referrer_not_found",
            Code::SaleNotFound => "sale_not_found",
            Code::NotFound => "not_found",
            Code::PayloadTooLarge => "payload_too_large",
            Code::Storage => "storage_error",
            Code::Unavailable => "unavailable",
            Code::InsufficientBalance => "insufficient_balance",
            Code::RightsElsewhere => "rights_elsewhere",
            Code::RightsUnreachable => "rights_unreachable",
            Code::MemberNotHere => "member_not_here",
            Code::ProfileNotHere => "profile_not_here",
            Code::StoreFenced => "store_fenced",
            Code::OfflineTooLong => "offline_too_long",
            Code::ClockBehind => "clock_behind",
            Code::HostNotAllowed => "host_not_allowed",
            Code::SessionRevoked => "session_revoked",
            Code::UnknownSku => "unknown_sku",
            Code::UnknownBarcode => "unknown_barcode",
            Code::InvalidQuantity => "invalid_quantity",
            Code::TransferNotFound => "transfer_not_found",
            Code::StocktakeNotFound => "stocktake_not_found",
            Code::TransferNotAllowed => "transfer_not_allowed",
            Code::DiscrepancyRequired => "discrepancy_required",
            Code::StocktakeInProgress => "stocktake_in_progress",
            Code::NotForSale => "not_for_sale",
            Code::NotCarried => "not_carried",
            Code::TendersMismatch => "tenders_mismatch",
            Code::CouponNotFound => "coupon_not_found",
            Code::CouponUsed => "coupon_used",
            Code::GiftNotFound => "gift_not_found",
            Code::ReferralRefused => "referral_refused",
            Code::GiftUnavailable => "gift_unavailable",
            Code::GiftLimit => "gift_limit_reached",
            Code::CouponNotValid => "coupon_not_valid",
            Code::CouponNotApplicable => "coupon_not_applicable",
            Code::PointsNotAccepted => "points_not_accepted",
            Code::TopUpRuleInvalid => "top_up_rule_invalid",
            Code::CardNotFound => "card_not_found",
            Code::CardNotValid => "card_not_valid",
            Code::PasswordRequired => "password_required",
            Code::PasswordWrong => "password_wrong",
            Code::PasswordLocked => "password_locked",
            Code::ManagerRequired => "manager_required",
            Code::ReturnElsewhere => "return_elsewhere",
            Code::AlreadyReturned => "already_returned",
            Code::ReturnExceedsSale => "return_exceeds_sale",
            Code::ReturnNotReady => "return_not_ready",
            Code::UnknownStaff => "unknown_staff",
            Code::OrderNotFound => "order_not_found",
            Code::HeldOrdersFull => "held_orders_full",
            Code::LoginRequired => "login_required",
            Code::SessionExpired => "session_expired",
            Code::LoginFailed => "login_failed",
            Code::AccountLocked => "account_locked",
            Code::RoleForbidden => "role_forbidden",
            Code::StoreRestoring => "store_restoring",
            Code::RecordedBeforeRestore => "recorded_before_restore",
            Code::CardLost => "card_lost",
            Code::CardReplaced => "card_replaced",
            Code::MembershipClosed => "membership_closed",
            Code::ClosingChanged => "closing_changed",
            Code::CardStateInvalid => "card_state_invalid",
            Code::MemberOwes => "member_owes",
            Code::MemberCodeExpired => "member_code_expired",
            Code::MemberCodeUsed => "member_code_used",
            Code::MemberCodeInvalid => "member_code_invalid",
        }
    }

    fn status(self) -> StatusCode {
        use StatusCode as S;
        match self {
            Code::MalformedJson
            | Code::InvalidId
            | Code::IdempotencyKeyMissing
            | Code::InvalidQuery => S::BAD_REQUEST,
            Code::InvalidRequest
            | Code::InvalidAmount
            | Code::AmountTooLarge
            | Code::CurrencyNotAccepted
            | Code::TenderShort
            | Code::InvalidPhone
            | Code::FieldInvalid
            | Code::ReferrerNotFound
            | Code::InsufficientBalance
            | Code::TopUpRuleInvalid
            | Code::CardNotValid
            | Code::UnknownStaff => S::UNPROCESSABLE_ENTITY,
            Code::UnknownSku
            | Code::UnknownBarcode
            | Code::TransferNotFound
            | Code::CouponNotFound
            | Code::GiftNotFound
            | Code::StocktakeNotFound
            | Code::OrderNotFound => S::NOT_FOUND,
            Code::InvalidQuantity
            | Code::DiscrepancyRequired
            | Code::NotForSale
            | Code::NotCarried
            | Code::TendersMismatch
            | Code::CouponNotValid
            | Code::CouponNotApplicable
            | Code::PointsNotAccepted => S::UNPROCESSABLE_ENTITY,
            Code::RightsElsewhere
            | Code::RightsUnreachable
            | Code::MemberNotHere
            | Code::ProfileNotHere
            | Code::CouponUsed
            | Code::GiftUnavailable
            | Code::GiftLimit
            | Code::ReferralRefused
            | Code::StocktakeInProgress
            | Code::TransferNotAllowed
            | Code::StoreFenced
            | Code::OfflineTooLong
            | Code::ClockBehind
            | Code::ReturnElsewhere
            | Code::AlreadyReturned
            | Code::ReturnExceedsSale
            | Code::ReturnNotReady
            | Code::HeldOrdersFull
            | Code::RecordedBeforeRestore
            | Code::CardLost
            | Code::CardReplaced
            | Code::MembershipClosed
            | Code::ClosingChanged
            | Code::CardStateInvalid
            | Code::MemberOwes
            | Code::MemberCodeExpired
            | Code::MemberCodeUsed => S::CONFLICT,
            Code::MemberCodeInvalid => S::NOT_FOUND,
            Code::PasswordRequired
            | Code::PasswordWrong
            | Code::LoginRequired
            | Code::SessionExpired
            | Code::LoginFailed => S::UNAUTHORIZED,
            Code::ManagerRequired | Code::RoleForbidden => S::FORBIDDEN,
            Code::PasswordLocked | Code::AccountLocked => S::LOCKED,
            Code::CardNotFound => S::NOT_FOUND,
            Code::IdempotencyConflict | Code::PhoneTaken | Code::CardTaken => S::CONFLICT,
            Code::MemberNotFound | Code::SaleNotFound | Code::NotFound => S::NOT_FOUND,
            Code::PayloadTooLarge => S::PAYLOAD_TOO_LARGE,
            Code::HostNotAllowed => S::MISDIRECTED_REQUEST,
            Code::SessionRevoked => S::UNAUTHORIZED,
            Code::Storage => S::INTERNAL_SERVER_ERROR,
            Code::Unavailable | Code::StoreRestoring => S::SERVICE_UNAVAILABLE,
        }
    }

    /// What the cashier reads.
    fn message_zh(self) -> &'static str {
        match self {
            Code::MalformedJson => "请求不是有效的 JSON",
            Code::InvalidRequest => "请求内容不正确",
            Code::InvalidQuery => "查询参数不正确",
            Code::InvalidAmount => "金额无效：请用字符串表示，最多两位小数，且须大于零",
            Code::AmountTooLarge => "金额超过本店单笔上限",
            Code::CurrencyNotAccepted => "本店不收此币种",
            Code::TenderShort => "实收金额不足",
            Code::InvalidPhone => "手机号格式不正确",
            Code::InvalidId => "编号格式不正确",
            Code::FieldInvalid => "资料填写不正确",
            Code::IdempotencyKeyMissing => "缺少 Idempotency-Key 请求头",
            Code::IdempotencyConflict => "该 Idempotency-Key 已用于另一笔不同的请求",
            Code::PhoneTaken => "该手机号已被其他会员使用",
            Code::CardTaken => "该会员卡号已被其他会员使用",
            Code::MemberNotFound => "会员不存在",
            Code::ReferrerNotFound => "推荐人不存在",
            Code::SaleNotFound => "销售单不存在",
            Code::NotFound => "找不到该资源",
            Code::PayloadTooLarge => "请求内容过大",
            Code::Storage => "存储出错，本次操作未完成",
            Code::Unavailable => "系统暂不可用，请稍后重试",
            Code::InsufficientBalance => "余额不足（储值、积分或次数）",
            Code::RightsElsewhere => {
                "该会员余额暂存于其他门店，暂时无法调到本店，请改用其他支付方式"
            }
            Code::RightsUnreachable => {
                "该会员余额存于其他门店，该门店目前离线，暂时无法调用，请改用其他支付方式"
            }
            Code::MemberNotHere => {
                "本店尚未从总部取到该会员的储值记录（首次到店且网络断开），暂不能用储值支付，请改用其他支付方式"
            }
            Code::ProfileNotHere => {
                "本店只有该会员的名录资料（首次到店且网络断开），网络恢复后才能修改其资料或会员卡，或到持有其完整资料的门店办理"
            }
            Code::UnknownSku => "商品不存在",
            Code::UnknownBarcode => "条码不存在",
            Code::InvalidQuantity => "数量不正确（计件须为整数，称重最多三位小数，且须大于零）",
            Code::TransferNotFound => "调拨单不存在",
            Code::StocktakeNotFound => "盘点单不存在或已结束",
            Code::TransferNotAllowed => "调拨单当前状态或本店身份不允许此操作",
            Code::DiscrepancyRequired => "实收数量与发货数量不符，请填写差异原因",
            Code::StocktakeInProgress => "该商品正在盘点中，请先完成盘点",
            Code::NotForSale => "该商品暂不可售（未定价或已下架）",
            Code::NotCarried => "本店不经营该商品（不在本店经营品项，请联系总部）",
            Code::TendersMismatch => "各支付方式合计与应付金额不符（只有现金可以找零）",
            Code::CouponNotFound => "该会员没有这张优惠券",
            Code::CouponUsed => "该优惠券已使用",
            Code::GiftNotFound => "积分商城没有这件礼品",
            Code::ReferralRefused => "不能这样绑定推荐人（本人、已有推荐人或形成循环）",
            Code::GiftUnavailable => "这件礼品本店暂不可兑换（已下架或库存不足）",
            Code::GiftLimit => "该会员已达这件礼品的每人限兑数量",
            Code::CouponNotValid => "该优惠券不在有效期内",
            Code::CouponNotApplicable => "未达到优惠券使用条件（门槛或适用商品）",
            Code::PointsNotAccepted => "积分抵现超出本单上限或本店不支持",
            Code::StoreFenced => {
                "本店已被总部冻结：会员储值、积分与次卡业务暂停，请联系总部重新开通"
            }
            Code::HostNotAllowed => "访问地址不是本店收银系统的地址",
            Code::SessionRevoked => "您的账号权限已变更，请重新登录",
            Code::ClockBehind => {
                "本机时钟落后于该会员上次修改支付密码的时间，新密码无法生效：请校准时钟或联网后再改"
            }
            Code::OfflineTooLong => {
                "本店与总部断开已超过离线期限：储值、积分、次卡和优惠券暂停使用（现金收银照常），联网后自动恢复"
            }
            Code::TopUpRuleInvalid => "充值活动不存在或未达到活动金额",
            Code::CardNotFound => "该会员没有这张卡",
            Code::CardNotValid => "该卡已过期或尚未生效",
            Code::PasswordRequired => "请输入支付密码",
            Code::PasswordWrong => "支付密码错误",
            Code::PasswordLocked => "支付密码错误次数过多，已锁定，请店长重置",
            Code::ManagerRequired => "需要店长操作",
            Code::ReturnElsewhere => "该销售单不是本店开出的，请到原门店退货",
            Code::AlreadyReturned => "该销售单已退货",
            Code::ReturnExceedsSale => "退货数量超过该商品可退的数量",
            Code::ReturnNotReady => "该销售单在其他门店的退货尚未同步到本店，请稍后再试",
            Code::UnknownStaff => "员工编号不存在、已离职或不属于本店",
            Code::OrderNotFound => "挂单不存在：已结账或已作废",
            Code::HeldOrdersFull => "挂单数量已达上限，请先结账或作废一些挂单",
            Code::LoginRequired => "请先登录",
            Code::SessionExpired => "登录已过期，请重新登录",
            Code::LoginFailed => "员工编号或密码错误",
            Code::AccountLocked => "密码错误次数过多，账号已暂时锁定",
            Code::RoleForbidden => "当前岗位无权进行此操作",
            Code::StoreRestoring => {
                "本店数据正在从总部恢复（换机或从备份恢复后），恢复完成前不能记账；请保持联网，稍候再试"
            }
            Code::RecordedBeforeRestore => {
                "这笔操作在本店数据恢复之前已经记账（已从总部恢复），不会重复记账，请在销售记录中查看"
            }
            Code::CardLost => {
                "该会员卡已挂失，不能用卡查找会员；请会员用手机号查找，或办理解挂、补卡"
            }
            Code::CardReplaced => "该会员卡已补办新卡，旧卡作废",
            Code::MembershipClosed => "该会员已退卡，不能再办理储值、积分或次卡业务",
            Code::ClosingChanged => {
                "退卡金额与试算不同（总部规则或余额刚有变化），请重新试算后再退卡"
            }
            Code::CardStateInvalid => "会员卡当前状态不允许此操作",
            Code::MemberOwes => "该会员尚有离线透支未还清，还清后才能退卡",
            Code::MemberCodeExpired => "会员码已过期，请会员刷新页面出示新码",
            Code::MemberCodeUsed => "该会员码已在本店使用过，请会员出示新码",
            Code::MemberCodeInvalid => "会员码无效：没有会员有这个码",
        }
    }
}

/// An error answer: `{code, message, detail}`.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub detail: String,
    /// The request field at fault, when one is (a page shows the error next to it).
    pub field: Option<&'static str>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `member_not_found`.
    pub code: &'static str,
    /// 中文说明 (for the cashier).
    pub message: &'static str,
    /// English detail naming the offending value or field.
    pub detail: String,
    /// The request field at fault, when one is, e.g. `phone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: Code, detail: impl std::fmt::Display) -> Self {
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
        let body = ErrorBody {
            code: self.code.as_str(),
            message: self.code.message_zh(),
            detail: self.detail,
            field: self.field,
        };
        (self.code.status(), axum::Json(body)).into_response()
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let code = match &r {
            Rejection::IdempotencyConflict(_) => Code::IdempotencyConflict,
            Rejection::PhoneTaken(..) => Code::PhoneTaken,
            Rejection::CardTaken(..) => Code::CardTaken,
            Rejection::MemberNotFound(_) => Code::MemberNotFound,
            Rejection::Referral(_) => Code::ReferralRefused,
            Rejection::Gift(g) => match g {
                protocol::gifts::GiftRefused::Unknown(_) => Code::GiftNotFound,
                protocol::gifts::GiftRefused::Limit { .. } => Code::GiftLimit,
                protocol::gifts::GiftRefused::Withdrawn(_)
                | protocol::gifts::GiftRefused::OutOfStock { .. }
                | protocol::gifts::GiftRefused::NoTemplate { .. }
                | protocol::gifts::GiftRefused::NotOnShelf { .. } => Code::GiftUnavailable,
            },
            Rejection::ReferrerNotFound(_) => Code::ReferrerNotFound,
            Rejection::Sale(SaleError::TooLarge { .. }) => Code::AmountTooLarge,
            Rejection::Sale(SaleError::Currency { .. }) => Code::CurrencyNotAccepted,
            Rejection::Sale(SaleError::TenderShort { .. }) => Code::TenderShort,
            Rejection::Sale(SaleError::CategoryTooLong) => Code::FieldInvalid,
            Rejection::Sale(SaleError::MemberRequired | SaleError::TenderMixed) => {
                Code::InvalidRequest
            }
            Rejection::Wallet(w) => match w {
                WalletError::NotPositive => Code::InvalidAmount,
                WalletError::Insufficient { .. } | WalletError::Rights(_) => {
                    Code::InsufficientBalance
                }
                WalletError::RightsElsewhere { .. } => Code::RightsElsewhere,
                WalletError::UnknownRule(_) | WalletError::RuleNotMet { .. } => {
                    Code::TopUpRuleInvalid
                }
                WalletError::UnknownCard(_) => Code::CardNotFound,
                WalletError::UnknownCoupon(_) => Code::CouponNotFound,
                WalletError::CouponUsed(_) => Code::CouponUsed,
                WalletError::CouponNotValid { .. } => Code::CouponNotValid,
                WalletError::CardExpired(_)
                | WalletError::CardNotYetValid(..)
                | WalletError::CardClosed(_) => Code::CardNotValid,
                WalletError::NotTimed(_)
                | WalletError::ClockedIn(..)
                | WalletError::NotClockedIn(_) => Code::CardStateInvalid,
                WalletError::Owes(_) => Code::MemberOwes,
                WalletError::TooLong(_)
                | WalletError::ReasonMissing
                | WalletError::UsesOutOfRange
                | WalletError::PointsOutOfRange
                | WalletError::EmptyPeriod => Code::FieldInvalid,
            },
            Rejection::Sale(_) => Code::InvalidAmount,
            Rejection::Profile(_) => Code::FieldInvalid,
            Rejection::SaleNotFound(_) => Code::SaleNotFound,
            Rejection::ReturnElsewhere(..) => Code::ReturnElsewhere,
            Rejection::AlreadyReturned(_) => Code::AlreadyReturned,
            Rejection::Staff(protocol::staff::StaffError::Storage(_)) => Code::Storage,
            Rejection::Staff(_) => Code::UnknownStaff,
            Rejection::OrderNotFound(_) => Code::OrderNotFound,
            Rejection::Held(_) => Code::HeldOrdersFull,
            Rejection::Backdate(_) => Code::FieldInvalid,
            Rejection::ItemReturn(e) => match e {
                ReturnError::TooMany { .. } => Code::ReturnExceedsSale,
                ReturnError::NothingLeft(_) => Code::AlreadyReturned,
                ReturnError::NotReady => Code::ReturnNotReady,
                ReturnError::Damaged(_) => Code::Storage,
                ReturnError::NotPositive => Code::InvalidQuantity,
                ReturnError::Lines | ReturnError::UnknownLine(_) => Code::InvalidRequest,
            },
            Rejection::Inventory(i) => match i {
                InventoryError::UnknownSku(_) => Code::UnknownSku,
                InventoryError::Invalid(_) => Code::InvalidQuantity,
                InventoryError::UnknownTransfer(_) => Code::TransferNotFound,
                InventoryError::UnknownStocktake(_) => Code::StocktakeNotFound,
                InventoryError::BeingCounted { .. } => Code::StocktakeInProgress,
                InventoryError::NotForSale(_) => Code::NotForSale,
                InventoryError::NotCarried(_) => Code::NotCarried,
                InventoryError::Transfer(TransferError::Discrepancy) => Code::DiscrepancyRequired,
                InventoryError::Transfer(TransferError::NotAllowed { .. }) => {
                    Code::TransferNotAllowed
                }
                InventoryError::Transfer(_) => Code::InvalidRequest,
            },
            Rejection::EntryTooLarge(_) => Code::PayloadTooLarge,
            Rejection::FeedUnreadable { .. } => Code::Storage,
            Rejection::Pricing(p) => pricing_error(p),
            Rejection::Tender(t) => match t {
                TenderError::CashShort { .. } => Code::TenderShort,
                TenderError::Mismatch { .. } | TenderError::ChangeOnNonCash { .. } => {
                    Code::TendersMismatch
                }
                TenderError::Invalid(_) => Code::InvalidRequest,
            },
            Rejection::Storage(_) => Code::Storage,
            Rejection::Unavailable => Code::Unavailable,
            Rejection::Withdrawn => Code::RightsElsewhere,
            Rejection::ClockBehind { .. } => Code::ClockBehind,
            Rejection::Restoring { .. } => Code::StoreRestoring,
            Rejection::RecordedBeforeRestore { .. } => Code::RecordedBeforeRestore,
            Rejection::RestoreBroken(_) => Code::Storage,
            Rejection::Card(refusal) => match refusal {
                CardRefusal::Lost(_) => Code::CardLost,
                CardRefusal::Replaced(_) => Code::CardReplaced,
                CardRefusal::Closed(_) => Code::MembershipClosed,
            },
            Rejection::MembershipClosed(_) => Code::MembershipClosed,
            Rejection::ClosingChanged { .. } => Code::ClosingChanged,
            Rejection::CardState(_) => Code::CardStateInvalid,
        };
        let field = match &r {
            Rejection::Profile(p) => p.field(),
            Rejection::PhoneTaken(..) => Some("phone"),
            Rejection::CardTaken(..) => Some("card_no"),
            Rejection::ReferrerNotFound(_) => Some("referrer"),
            Rejection::Backdate(_) => Some("sold_at"),
            Rejection::Wallet(WalletError::UnknownRule(_) | WalletError::RuleNotMet { .. }) => {
                Some("rule")
            }
            Rejection::Wallet(WalletError::ReasonMissing) => Some("reason"),
            Rejection::Wallet(WalletError::PointsOutOfRange) => Some("points"),
            _ => None,
        };
        ApiError {
            field,
            ..ApiError::new(code, r)
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::new(Code::Storage, e)
    }
}

/// The code a pricing refusal answers with.
pub(crate) fn pricing_error(e: &PricingError) -> Code {
    match e {
        PricingError::CouponThreshold { .. } | PricingError::CouponNotApplicable(_) => {
            Code::CouponNotApplicable
        }
        PricingError::InsufficientPoints { .. } => Code::InsufficientBalance,
        PricingError::PointsAboveCap { .. }
        | PricingError::PointsNotAccepted
        | PricingError::PointsNotWhole { .. } => Code::PointsNotAccepted,
        PricingError::SetAbovePrice { .. } => Code::InvalidAmount,
        _ => Code::InvalidRequest,
    }
}
