//! 消息: what a member is told, and why. Headquarters derives each notice from the log entry
//! that caused it, once it holds the entry: a store's log is its outbox (a store cut off keeps
//! writing its sales and top-ups, and they reach headquarters, with their notices, when the
//! link is back). A notice is named after its entry, so one entry never makes two notices.
//!
//! Notices hold no personal data: the member's name and phone are read when the message is
//! sent (an erased member is sent nothing), and the marketing consent then too (withdrawn
//! consent is honoured up to the last moment). Transactional notices (a balance changed) need
//! no consent; marketing ones (a campaign's coupon) do.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Payload};
use crate::escrow::Change;
use crate::ids::{MemberId, StoreId};
use crate::money::Fen;
use crate::wallet::{Counter, RightsOp, Wallet, WalletEvent};

/// Whether a notice needs the member's marketing consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// 交易通知: a change to the member's own money or points.
    Transactional,
    /// 营销: sent only with consent, and not in quiet hours.
    Marketing,
}

/// What the notice is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// 储值变动: stored value (principal and bonus) changed by `change`; `balance` after it.
    StoredValue { change: Fen, balance: Fen },
    /// 积分变动
    Points { change: i64, balance: i64 },
    /// 券到账: a campaign's coupon, with the campaign's message if it has one.
    Coupon {
        name: String,
        valid_to: NaiveDate,
        message: Option<String>,
    },
    /// 券即将过期: coupon `coupon` (its id), still unused, is good only until `valid_to`.
    CouponExpiring {
        coupon: String,
        name: String,
        valid_to: NaiveDate,
    },
    /// 生日祝福
    Birthday,
    /// 登录验证码: the one-time code that signs the member in to their own page.
    SignInCode { code: String },
}

/// The chain's wording of each message (消息模板), Chinese by default. Variables: `{name}` in
/// all; `{verb}` (存入/支出, 获得/扣减), `{amount}` and `{balance}` in `stored_value` and
/// `points`; `{coupon}` and `{valid_to}` in `coupon` and `coupon_expiring`. A campaign's own
/// message, when it has one, replaces `coupon`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Texts {
    pub stored_value: String,
    pub points: String,
    pub coupon: String,
    pub coupon_expiring: String,
    pub birthday: String,
}

impl Default for Texts {
    fn default() -> Self {
        Self {
            stored_value: "{name}您好，您的储值账户{verb}{amount}元，当前余额{balance}元。".into(),
            points: "{name}您好，您本次{verb}{amount}积分，当前积分{balance}。".into(),
            coupon: "{name}您好，您获得一张{coupon}，有效期至{valid_to}。".into(),
            coupon_expiring: "{name}您好，您的{coupon}将于{valid_to}到期，请尽快使用。".into(),
            birthday: "{name}，祝您生日快乐！".into(),
        }
    }
}

impl Texts {
    /// Each text: not blank, at most `MESSAGE_CHARS_MAX` characters, and only its own
    /// variables.
    pub fn check(&self) -> Result<(), String> {
        let balance: &[&str] = &["name", "verb", "amount", "balance"];
        let coupon: &[&str] = &["name", "coupon", "valid_to"];
        for (field, text, allowed) in [
            ("stored_value", &self.stored_value, balance),
            ("points", &self.points, balance),
            ("coupon", &self.coupon, coupon),
            ("coupon_expiring", &self.coupon_expiring, coupon),
            ("birthday", &self.birthday, &["name"][..]),
        ] {
            let n = text.trim().chars().count();
            if n == 0 || n > crate::campaign::MESSAGE_CHARS_MAX {
                return Err(format!(
                    "texts.{field}: 1 to {} characters",
                    crate::campaign::MESSAGE_CHARS_MAX
                ));
            }
            for part in text.split('{').skip(1) {
                let Some((variable, _)) = part.split_once('}') else {
                    return Err(format!("texts.{field}: a '{{' without its '}}'"));
                };
                if !allowed.contains(&variable) {
                    return Err(format!(
                        "texts.{field}: unknown variable {{{variable}}} (it may use {})",
                        allowed
                            .iter()
                            .map(|v| format!("{{{v}}}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `text` with each `{variable}` replaced by its value.
pub fn render(text: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(text.to_owned(), |out, (variable, value)| {
            out.replace(&format!("{{{variable}}}"), value)
        })
}

/// One notice to one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// `<store>-<seq>-<kind>`: the entry it comes from; the gateway's idempotency key.
    pub id: String,
    pub member: MemberId,
    pub purpose: Purpose,
    pub subject: Subject,
    /// Where and when it happened (the entry's wall clock).
    pub store: StoreId,
    pub at_ms: u64,
}

impl Notice {
    /// The message for a member called `name`, in the chain's wording.
    pub fn text(&self, name: &str, texts: &Texts) -> String {
        match &self.subject {
            Subject::StoredValue { change, balance } => {
                let (verb, amount) = match change.0 < 0 {
                    true => ("支出", Fen(-change.0)),
                    false => ("存入", *change),
                };
                let (amount, balance) = (amount.to_string(), balance.to_string());
                render(
                    &texts.stored_value,
                    &[
                        ("name", name),
                        ("verb", verb),
                        ("amount", &amount),
                        ("balance", &balance),
                    ],
                )
            }
            Subject::Points { change, balance } => {
                let (verb, points) = match *change < 0 {
                    true => ("扣减", -change),
                    false => ("获得", *change),
                };
                let (points, balance) = (points.to_string(), balance.to_string());
                render(
                    &texts.points,
                    &[
                        ("name", name),
                        ("verb", verb),
                        ("amount", &points),
                        ("balance", &balance),
                    ],
                )
            }
            Subject::Coupon {
                name: coupon,
                valid_to,
                message,
            } => {
                let text = message
                    .as_deref()
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or(&texts.coupon);
                crate::campaign::fill(text, name, coupon, *valid_to)
            }
            Subject::CouponExpiring {
                name: coupon,
                valid_to,
                ..
            } => crate::campaign::fill(&texts.coupon_expiring, name, coupon, *valid_to),
            Subject::Birthday => render(&texts.birthday, &[("name", name)]),
            Subject::SignInCode { code } => {
                format!(
                    "【会员】您的登录验证码是 {code}，5 分钟内有效。请勿告诉他人，店员不会向您索要。"
                )
            }
        }
    }
}

/// The signature a gateway checks (`X-Signature: sha256=<hex>`): HMAC-SHA256 under the
/// shared secret of `<timestamp>.<body>`, so a body cannot be replayed under another time.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(secret)
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `ops` changed the counters `which` selects by, in units.
fn moved(ops: &[RightsOp], which: impl Fn(&Counter) -> bool) -> i128 {
    ops.iter()
        .filter(|op| which(&op.counter))
        .map(|op| match &op.change {
            Change::Credit { units, .. } => i128::from(*units),
            Change::Debit { units, .. } => -i128::from(*units),
            Change::Transfer { .. } | Change::Reclaim { .. } => 0,
        })
        .sum()
}

fn stored_value(c: &Counter) -> bool {
    matches!(c, Counter::Principal | Counter::Bonus)
}

fn points(c: &Counter) -> bool {
    matches!(c, Counter::Points { .. })
}

/// The notices an entry gives its member, given their wallet after it and a campaign's
/// message by id.
pub fn of_entry(
    entry: &Entry,
    wallet: &Wallet,
    campaign_message: impl Fn(&str) -> Option<String>,
) -> Vec<Notice> {
    let Some((member, ops)) = entry.payload.rights_ops() else {
        return Vec::new();
    };
    let notice = |kind: &str, purpose, subject| Notice {
        id: format!("{}-{}-{kind}", entry.origin, entry.seq),
        member,
        purpose,
        subject,
        store: entry.origin.clone(),
        at_ms: entry.hlc.wall_ms,
    };
    let mut out = Vec::new();
    if let Payload::Wallet {
        event:
            WalletEvent::CampaignCoupon {
                campaign,
                name,
                from,
                to,
                ..
            },
        ..
    } = &entry.payload
    {
        // One message for a run's booklet (券包: its coupons share campaign, member and
        // period), and none for coupons already past their last day (a run dated back, 补发).
        if *to >= entry.business_date {
            out.push(Notice {
                id: format!("{member}-{campaign}-{from}-coupon"),
                ..notice(
                    "coupon",
                    Purpose::Marketing,
                    Subject::Coupon {
                        name: name.clone(),
                        valid_to: *to,
                        message: campaign_message(campaign),
                    },
                )
            });
        }
        return out;
    }
    let balance = |which: fn(&Counter) -> bool| -> i64 {
        let sum: u128 = wallet
            .counters
            .iter()
            .filter(|(c, _)| which(c))
            .map(|(_, r)| u128::from(r.balance()))
            .sum();
        i64::try_from(sum).unwrap_or(i64::MAX)
    };
    let clamp = |n: i128| i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX });
    let sv = moved(ops, stored_value);
    if sv != 0 {
        out.push(notice(
            "sv",
            Purpose::Transactional,
            Subject::StoredValue {
                change: Fen(clamp(sv)),
                balance: Fen(balance(stored_value)),
            },
        ));
    }
    let pt = moved(ops, points);
    if pt != 0 {
        out.push(notice(
            "pt",
            Purpose::Transactional,
            Subject::Points {
                change: clamp(pt),
                balance: balance(points),
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(subject: Subject) -> Notice {
        Notice {
            id: "S001-7-sv".into(),
            member: MemberId::mint(1, 1),
            purpose: Purpose::Transactional,
            subject,
            store: StoreId::parse("S001").unwrap(),
            at_ms: 0,
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_and_the_body() {
        // Worked out apart, with Python's hmac module.
        assert_eq!(
            signature(
                b"0123456789abcdef-secret",
                1_764_900_000,
                br#"{"id":"S001-7-sv"}"#
            ),
            "0460c139a1ae82a93a411cb29c7075662f154042120c9786cf9466c56572fcc4"
        );
    }

    #[test]
    fn a_notice_reads_as_a_chinese_message_with_the_members_name() {
        let paid = notice(Subject::StoredValue {
            change: Fen(-1_250),
            balance: Fen(8_750),
        });
        assert_eq!(
            paid.text("王芳", &Texts::default()),
            "王芳您好，您的储值账户支出12.50元，当前余额87.50元。"
        );
        let coupon = notice(Subject::Coupon {
            name: "满100减20".into(),
            valid_to: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            message: Some("{name}，{coupon}已到账，{valid_to}前有效".into()),
        });
        assert_eq!(
            coupon.text("王芳", &Texts::default()),
            "王芳，满100减20已到账，2026-12-31前有效"
        );
    }

    #[test]
    fn a_chain_can_word_its_messages_with_their_variables_and_no_others() {
        let texts = Texts {
            points: "{name}：积分{verb}{amount}，现有{balance}".into(),
            ..Texts::default()
        };
        texts.check().unwrap();
        let earned = notice(Subject::Points {
            change: 30,
            balance: 130,
        });
        assert_eq!(earned.text("李雷", &texts), "李雷：积分获得30，现有130");
        let unknown = Texts {
            birthday: "{name}生日快乐，送您{coupon}".into(),
            ..Texts::default()
        };
        assert!(unknown.check().unwrap_err().contains("{coupon}"));
        let open = Texts {
            coupon: "{name".into(),
            ..Texts::default()
        };
        assert!(open.check().is_err());
        assert!(Texts::default().check().is_ok());
    }
}
