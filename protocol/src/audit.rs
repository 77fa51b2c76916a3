//! 操作日志: which entries are sensitive actions an auditor looks at — returns, refunds, points
//! by hand, payment-password resets, coupons given, write-offs, stocktake results, offline
//! overdrafts, and headquarters' changes to the catalogue, staff, logins, commission rules and
//! fenced stores' balances — each with a Chinese label and a one-line detail. Who did it and
//! when are the entry's own (`staff`, `hlc`, `business_date`; the idempotency key names the
//! till by the tills' convention, e.g. `till-2-000123`).

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Payload};
use crate::ids::{CardNo, DocId, MemberId, SaleId, StaffId};
use crate::stock::StockMovement;
use crate::wallet::{Movement, WalletEvent};

/// A till action kept for the audit log that is not itself a change of money or stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Note {
    /// 作废挂单: a held order voided before payment.
    HeldVoided {
        order: DocId,
        held_by: StaffId,
        member_id: Option<MemberId>,
        lines: u32,
    },
    /// 补录: the sale in the entry before this one was made at `sold_at` (the store's local
    /// time), not when it was entered.
    LateSale {
        sale: SaleId,
        sold_at: NaiveDateTime,
    },
    /// 会员等级变更: the profile edit in the entry before this one set the member's tier by hand
    /// (or the registration gave a tier other than the chain's first).
    TierChanged {
        member_id: MemberId,
        from: String,
        to: String,
    },
    /// 个人信息导出: headquarters exported everything it holds about a member (查阅复制).
    MemberExported { member_id: MemberId },
    /// 吊销证书: headquarters refuses the store's certificates issued before now.
    CertificateRevoked {
        store: crate::ids::StoreId,
        reason: String,
    },
    /// 挂失: the profile edit before this one reported the member's card lost.
    CardLost { member_id: MemberId, card: CardNo },
    /// 解挂: the card was found again; `check` is how the member proved who they are.
    CardFound {
        member_id: MemberId,
        card: CardNo,
        check: IdentityCheck,
    },
    /// 补卡: a new card number replaced `from`, carrying everything the member held.
    CardReissued {
        member_id: MemberId,
        from: Option<CardNo>,
        to: CardNo,
        check: IdentityCheck,
    },
    /// 会员导入: headquarters imported members from a file (each member's own entries follow
    /// or precede this one; this is the run as a whole).
    MembersImported {
        import: String,
        imported: u64,
        skipped: u64,
    },
    /// 会员等级变更: the profile change in the entry before this one moved the member's tier,
    /// by hand (with the reason), at the till (a sale took them over a threshold) or at
    /// headquarters' review.
    TierMoved {
        member_id: MemberId,
        from: String,
        to: String,
        why: crate::tiers::TierWhy,
    },
    /// 交班: the writer closed their shift: its totals, and the yuan they counted in the drawer
    /// (beyond its float) against what it should hold.
    ShiftClosed {
        shift: crate::shift::Shift,
        counted: crate::Fen,
    },
}

/// How a member proved who they are before their card was found again or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityCheck {
    /// They gave their payment password at the till.
    PaymentPassword,
    /// A store manager saw their identity document (身份证) and says so.
    IdDocument,
}

impl IdentityCheck {
    pub fn label(self) -> &'static str {
        match self {
            IdentityCheck::PaymentPassword => "支付密码",
            IdentityCheck::IdDocument => "证件",
        }
    }
}

/// What a sensitive entry did: a label and a detail; `None` for the routine (sales, top-ups,
/// registrations, rights moving, stock received).
pub fn action(entry: &Entry) -> Option<(&'static str, String)> {
    let overdraft = |tenders: &mut dyn Iterator<Item = &crate::sale::Tender>| -> i64 {
        tenders.map(|t| t.overdraft().0).sum()
    };
    Some(match &entry.payload {
        Payload::Return {
            sale,
            amount,
            reason,
            ..
        } => ("退货", format!("{sale} 退 {amount} 元：{reason}")),
        Payload::ItemReturn { ret, .. } => (
            "退货",
            format!(
                "{} 退 {} 行 {} 元：{}",
                ret.sale_id,
                ret.lines.len(),
                ret.amount,
                ret.reason
            ),
        ),
        Payload::Wallet { event, .. } => match event {
            WalletEvent::Refunded {
                principal,
                bonus_forfeited,
                reason,
            } => (
                "退储值",
                format!("退本金 {principal} 元，作废赠送 {bonus_forfeited} 元：{reason}"),
            ),
            WalletEvent::PointsAdjusted { points, reason } => {
                ("手工调整积分", format!("{} 分：{reason}", points.0))
            }
            WalletEvent::Closed { reason, .. } | WalletEvent::ClosedUnderRules { reason, .. } => {
                let closing = event.closing().unwrap_or_default();
                let mut kept = String::new();
                if closing.bonus_refunded.0 > 0 {
                    kept.push_str(&format!("，退赠送 {} 元", closing.bonus_refunded));
                }
                if closing.fee.0 > 0 {
                    kept.push_str(&format!("，扣手续费 {} 元", closing.fee));
                }
                (
                    "退卡",
                    format!(
                        "退现金 {} 元（本金 {}，卡 {} 张{kept}），作废赠送 {} 元、积分 {}、优惠券 {}：{reason}",
                        closing.cash(),
                        closing.principal,
                        closing.cards.len(),
                        closing.bonus_forfeited,
                        closing.points_forfeited,
                        closing.coupons_forfeited
                    ),
                )
            }
            WalletEvent::PasswordSet { .. } => ("设置支付密码", String::new()),
            WalletEvent::PasswordFailed => ("支付密码错误", String::new()),
            WalletEvent::CouponIssued { name, to, .. } => {
                ("发放优惠券", format!("{name}，有效至 {to}"))
            }
            WalletEvent::Rights {
                movement: Movement::Reclaim { from },
            } => ("收回冻结门店余额", format!("自 {from}")),
            WalletEvent::GiftRedeemed { name, points, .. } => {
                ("积分兑换", format!("{name}，{points} 分"))
            }
            WalletEvent::ReferralRevoked {
                referee,
                points,
                bonus,
                kept_points,
                kept_bonus,
                ..
            } => (
                "收回拓客奖励",
                format!(
                    "{referee} 首单全额退货：收回积分 {points}、赠送金 {bonus} 元；已用未收回积分 {kept_points}、赠送金 {kept_bonus} 元"
                ),
            ),
            _ => return None,
        },
        Payload::Stock { movement, changes } => match movement {
            StockMovement::Damaged { reason } => {
                ("报损", format!("{} 种商品：{reason}", changes.len()))
            }
            StockMovement::Counted { stocktake, counts } => {
                let differ = counts.iter().filter(|(_, c, e)| c != e).count();
                ("盘点结果", format!("{stocktake}：{differ} 种商品有差异"))
            }
            _ => return None,
        },
        Payload::Sale { sale, .. } | Payload::QuickSale(sale) if sale.tender.overdraft().0 > 0 => (
            "离线透支",
            format!("{} 透支 {} 元", sale.sale_id, sale.tender.overdraft()),
        ),
        Payload::Checkout { sale, .. } if overdraft(&mut sale.tenders.iter()) > 0 => (
            "离线透支",
            format!(
                "{} 透支 {} 元",
                sale.sale_id,
                crate::Fen(overdraft(&mut sale.tenders.iter()))
            ),
        ),
        Payload::Catalogue {
            version,
            part,
            parts,
            changes,
        } => (
            "商品资料变更",
            format!("第 {version} 版 {part}/{parts}：{} 项", changes.len()),
        ),
        Payload::StoreCatalogue {
            stores,
            version,
            part,
            parts,
            changes,
            ..
        } => (
            "门店经营品项",
            format!(
                "第 {version} 版 {part}/{parts}：{} 项，{} 家门店",
                changes.len(),
                stores.len()
            ),
        ),
        Payload::Staff { staff } => (
            "员工资料变更",
            staff
                .iter()
                .map(|s| s.id.to_string())
                .collect::<Vec<_>>()
                .join("、"),
        ),
        Payload::StaffCredentials { id, hash } => match hash {
            Some(_) => ("设置员工密码", id.to_string()),
            None => ("停用员工登录", id.to_string()),
        },
        Payload::CommissionRules { rules } => ("提成规则", format!("自 {} 起", rules.from)),
        Payload::Checkout { sale, .. } if overridden(sale).next().is_some() => (
            "改价",
            format!(
                "{}：{}",
                sale.sale_id,
                overridden(sale)
                    .map(|(sku, from, to)| format!("{sku} {from} → {to} 元"))
                    .collect::<Vec<_>>()
                    .join("，")
            ),
        ),
        Payload::Audit { note } => match note {
            Note::HeldVoided {
                order,
                held_by,
                member_id,
                lines,
            } => (
                "作废挂单",
                format!(
                    "{order}（{held_by} 挂单，{lines} 行{}）",
                    member_id.map(|m| format!("，会员 {m}")).unwrap_or_default()
                ),
            ),
            Note::LateSale { sale, sold_at } => (
                "补录",
                format!("{sale} 销售于 {}", sold_at.format("%Y-%m-%d %H:%M")),
            ),
            Note::TierChanged {
                member_id,
                from,
                to,
            } => ("会员等级变更", format!("{member_id}：{from} → {to}")),
            Note::MemberExported { member_id } => ("导出会员个人信息", member_id.to_string()),
            Note::CertificateRevoked { store, reason } => {
                ("吊销门店证书", format!("{store}：{reason}"))
            }
            Note::CardLost { member_id, card } => ("挂失", format!("{member_id}：卡 {card}")),
            Note::CardFound {
                member_id,
                card,
                check,
            } => (
                "解挂",
                format!("{member_id}：卡 {card}，核验{}", check.label()),
            ),
            Note::MembersImported {
                import,
                imported,
                skipped,
            } => (
                "会员导入",
                format!("{import}：导入 {imported} 人，已导入过 {skipped} 人"),
            ),
            Note::CardReissued {
                member_id,
                from,
                to,
                check,
            } => (
                "补卡",
                format!(
                    "{member_id}：{} → {to}，核验{}",
                    from.as_ref().map_or("无卡".to_owned(), ToString::to_string),
                    check.label()
                ),
            ),
            Note::TierMoved {
                member_id,
                from,
                to,
                why,
            } => (
                "会员等级变更",
                format!(
                    "{member_id}：{from} → {to}（{}）",
                    match why {
                        crate::tiers::TierWhy::ByHand { reason } => format!("手动：{reason}"),
                        crate::tiers::TierWhy::Earned { qualifying, basis } =>
                            format!("达标自动升级，{}", basis.shown(*qualifying)),
                        crate::tiers::TierWhy::Review {
                            qualifying,
                            basis,
                            as_of,
                        } => format!("总部 {as_of} 等级评定，{}", basis.shown(*qualifying)),
                    }
                ),
            ),
            Note::ShiftClosed { shift, counted } => (
                "交班",
                format!(
                    "销售 {} 笔 {} 元，退货 {} 笔 {} 元；应有现金 {} 元，实点 {} 元，差额 {} 元",
                    shift.sales,
                    crate::Fen(shift.sales_amount),
                    shift.returns,
                    crate::Fen(shift.returned),
                    crate::Fen(shift.cash_expected),
                    counted,
                    crate::Fen(counted.0 - shift.cash_expected)
                ),
            ),
        },
        Payload::MemberErased { member_id } => ("删除会员个人信息", member_id.to_string()),
        Payload::CardRules { rules } => (
            "退卡与计时规则",
            format!(
                "退赠送 {}%，次卡{}，手续费 {}%；计时卡每 {} 分钟计，{}，免费 {} 分钟",
                rules.bonus_refund_percent,
                match rules.cards {
                    crate::card_rules::CardRefund::ProRata => "按剩余比例退",
                    crate::card_rules::CardRefund::None => "不退",
                },
                rules.fee_percent,
                rules.step_minutes,
                match rules.rounding {
                    crate::card_rules::StepRounding::Up => "不足一段按一段",
                    crate::card_rules::StepRounding::Nearest => "四舍五入",
                    crate::card_rules::StepRounding::Down => "不足一段不计",
                },
                rules.free_minutes
            ),
        ),
        Payload::ReferralRules { rules } => (
            "拓客奖励规则",
            format!(
                "一级：积分 {}、赠送金 {} 元{}；二级：{}",
                rules.level1.points,
                rules.level1.bonus,
                rules
                    .level1
                    .coupon
                    .as_deref()
                    .map(|t| format!("、券 {t}"))
                    .unwrap_or_default(),
                rules
                    .level2
                    .as_ref()
                    .map(|r| format!("积分 {}、赠送金 {} 元", r.points, r.bonus))
                    .unwrap_or_else(|| "不奖励".to_owned())
            ),
        ),
        Payload::Gifts { table } => (
            "积分商城",
            format!(
                "{} 件礼品：{}",
                table.gifts.len(),
                table
                    .gifts
                    .iter()
                    .map(|g| format!("{} {}分", g.name, g.points))
                    .collect::<Vec<_>>()
                    .join("，")
            ),
        ),
        Payload::Tiers { table } => (
            "会员等级",
            format!(
                "{} 个等级，按{}，{} 天滚动：{}",
                table.tiers.len(),
                match table.basis {
                    crate::tiers::Basis::Spend => "消费金额",
                    crate::tiers::Basis::Points => "积分",
                },
                table.period_days,
                table
                    .tiers
                    .iter()
                    .map(|t| format!("{} {}起", t.name, table.shown(t.threshold)))
                    .collect::<Vec<_>>()
                    .join("，")
            ),
        ),
        Payload::ChainRules { rules } => (
            "会员规则",
            format!(
                "每元 {} 分，{} 条充值规则，{} 个等级折扣，离线透支每人 {} 元",
                rules.earn.points_per_yuan,
                rules.top_up_rules.len(),
                rules.tier_percent_off.len(),
                rules.overdraft_member
            ),
        ),
        _ => return None,
    })
}

/// An item sale's lines whose price the till set below the catalogue's (改价): SKU, the line's
/// price and what it was sold for.
fn overridden(
    sale: &crate::sale::ItemSale,
) -> impl Iterator<Item = (&crate::ids::Sku, crate::Fen, crate::Fen)> {
    sale.lines.iter().filter_map(|l| {
        let off = l.off(crate::pricing::Step::Override);
        (off.0 > 0).then(|| (&l.sku, l.gross, crate::Fen(l.gross.0 - off.0)))
    })
}

#[cfg(test)]
// Amounts in fen are written yuan_fen (100_00 is 100 yuan).
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;
    use crate::entry::EntryHash;
    use crate::ids::{StaffId, StoreId, TxId};
    use crate::{Fen, Hlc, MemberId, SaleId};

    fn entry(payload: Payload) -> Entry {
        Entry {
            origin: StoreId::parse("S001").unwrap(),
            seq: 1,
            hlc: Hlc {
                wall_ms: 0,
                logical: 0,
            },
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            staff: StaffId::parse("m01").unwrap(),
            tx: TxId::parse("till-1-000001").unwrap(),
            prev_hash: EntryHash::GENESIS,
            payload,
        }
    }

    #[test]
    fn sensitive_actions_are_named_and_routine_ones_are_not() {
        let member = MemberId::mint(1, 1);
        let refund = entry(Payload::Wallet {
            member_id: member,
            event: WalletEvent::Refunded {
                principal: Fen(100_00),
                bonus_forfeited: Fen(10_00),
                reason: "搬家".into(),
            },
            ops: Vec::new(),
        });
        let (label, detail) = action(&refund).unwrap();
        assert_eq!(label, "退储值");
        assert!(
            detail.contains("100.00") && detail.contains("搬家"),
            "{detail}"
        );
        let registered = entry(Payload::MemberRegistered {
            member_id: member,
            change: Vec::new(),
        });
        assert_eq!(action(&registered), None);
        let sale = crate::sale::QuickSale {
            sale_id: SaleId::for_entry(&StoreId::parse("S001").unwrap(), 1),
            member_id: None,
            category: None,
            amount: Fen(5_00),
            currency: crate::Currency::CNY,
            tender: crate::sale::Tender::Cash {
                tendered: Fen(5_00),
                change: Fen(0),
            },
            points_earned: crate::points::Points(0),
        };
        let paid = entry(Payload::Sale {
            sale,
            ops: Vec::new(),
        });
        assert_eq!(action(&paid), None, "a plain sale is routine");
    }

    #[test]
    fn a_price_set_at_the_till_and_the_notes_are_named() {
        use crate::pricing::{LineStep, PricedLine, Rounded, Step};
        let store = StoreId::parse("S001").unwrap();
        let line = |off: i64| PricedLine {
            sku: crate::Sku::parse("A1").unwrap(),
            category: "饮品".into(),
            qty: crate::catalogue::Qty(2000),
            unit_price: Fen(1_80),
            gross: Fen(3_60),
            steps: vec![LineStep {
                step: Step::Override,
                off: Fen(off),
                rounded: Rounded::Price(crate::Rounding::HalfAwayFromZero),
                note: String::new(),
            }],
            net: Fen(3_60 - off),
            discountable: false,
            earns_points: true,
        };
        let sale = |off: i64| crate::sale::ItemSale {
            sale_id: SaleId::for_entry(&store, 1),
            member_id: None,
            lines: vec![line(off)],
            subtotal: Fen(3_60),
            discount: Fen(off),
            due: Fen(3_60 - off),
            tenders: Vec::new(),
            points_used: 0,
            points_earned: crate::points::Points(0),
            coupon: None,
            served_by: None,
        };
        let checkout = |off: i64| {
            entry(Payload::Checkout {
                sale: sale(off),
                ops: Vec::new(),
                stock: Vec::new(),
            })
        };
        let (label, detail) = action(&checkout(60)).unwrap();
        assert_eq!(label, "改价");
        assert!(detail.contains("A1 3.60 → 3.00"), "{detail}");
        assert_eq!(action(&checkout(0)), None, "a 改价 to the price is none");
        let note = |note: Note| action(&entry(Payload::Audit { note })).unwrap().0;
        let member = MemberId::mint(1, 1);
        assert_eq!(
            note(Note::TierChanged {
                member_id: member,
                from: "普通".into(),
                to: "金卡".into()
            }),
            "会员等级变更"
        );
        assert_eq!(
            note(Note::LateSale {
                sale: SaleId::for_entry(&store, 1),
                sold_at: chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
                    .unwrap()
                    .and_hms_opt(9, 0, 0)
                    .unwrap()
            }),
            "补录"
        );
        assert_eq!(
            note(Note::HeldVoided {
                order: DocId::for_entry("H", &store, 1),
                held_by: StaffId::parse("c01").unwrap(),
                member_id: None,
                lines: 2
            }),
            "作废挂单"
        );
    }
}
