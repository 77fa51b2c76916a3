//! 积分兑换 at the till: a gift of headquarters' points mall (`protocol::gifts`) given for its
//! points, spent through the member's rights like any points spend (headquarters is asked when
//! they are held elsewhere), within this store's allotment of the gift and the member's limit;
//! a coupon issued at once, goods taken off this store's shelf in the same request.

use protocol::catalogue::Qty;
use protocol::gifts::{GiftKind, GiftRefused, may_give};
use protocol::stock::StockMovement;
use protocol::wallet::GiftCoupon;

use super::*;

impl Journal {
    pub(super) fn redeem_gift(
        &mut self,
        r: &Request<WalletRequest>,
        id: &str,
        now_ms: u64,
    ) -> Result<Outcome, Rejection> {
        let member = r.body.member_id;
        let here = self.settings.store_id.clone();
        let today = self.settings.calendar.business_date(now_ms);
        let policy = self.settings.wallet.points;
        let ov = Overlay::new(&*self.store);
        let table = protocol::gifts::current(&ov).map_err(Rejection::Storage)?;
        let gift = table
            .as_ref()
            .and_then(|p| p.table.gift(id))
            .ok_or_else(|| GiftRefused::Unknown(id.to_owned()))?
            .clone();
        let given = protocol::gifts::given(&ov, id, &here).map_err(Rejection::Storage)?;
        let had = protocol::gifts::had(&ov, &member, id).map_err(Rejection::Storage)?;
        may_give(&gift, &here, given.times, had)?;
        let mut wallet = self.wallet_of(&member)?;
        let mut ops = Vec::new();
        let seq = self.tip.next_seq;
        let (coupon, goods) = match &gift.kind {
            GiftKind::Coupon { template } => {
                let refused = || GiftRefused::NoTemplate {
                    gift: gift.id.clone(),
                    template: template.clone(),
                };
                let t = protocol::project::marketing::live_template(&ov, template)
                    .map_err(Rejection::Storage)?
                    .ok_or_else(refused)?;
                let c = GiftCoupon::of(t, CardId::for_entry(&here, seq), today);
                ops.extend(wallet.issue_coupon(&here, &c.coupon, (c.from, c.to))?);
                (Some(c), None)
            }
            GiftKind::Goods { sku, qty } => {
                let wanted = Qty(i64::from(*qty) * 1000);
                let on_hand = protocol::inventory::level(&ov, &here, sku)
                    .map_err(Rejection::Storage)?
                    .on_hand;
                if on_hand.0 < wanted.0 {
                    return Err(GiftRefused::NotOnShelf {
                        gift: gift.id.clone(),
                        on_hand,
                        wanted,
                    }
                    .into());
                }
                let changes = self.stock_changes(&[(sku.clone(), Qty(-wanted.0))])?;
                let movement = StockMovement::Gift {
                    member,
                    gift: gift.id.clone(),
                };
                (None, Some(Payload::Stock { movement, changes }))
            }
        };
        // The points last: a gift that cannot be given asks headquarters for nothing.
        ops.splice(
            0..0,
            wallet.spend_points(&here, gift.points, today, &policy)?,
        );
        let event = WalletEvent::GiftRedeemed {
            gift: gift.id.clone(),
            name: gift.name.clone(),
            points: gift.points,
            coupon,
        };
        let wallet_entry = Payload::Wallet {
            member_id: member,
            event,
            ops,
        };
        let payloads = std::iter::once(wallet_entry)
            .chain(goods)
            .map(|p| (p, today))
            .collect();
        self.append_all(r, now_ms, payloads, |ov| {
            Ok(Outcome::Wallet {
                member_id: member,
                seq: Some(seq),
                wallet: wallet_summary(ov, &member, &here, today, &policy)?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{member_of, new_member, request, sale, seeded_env, settings};
    use super::*;
    use crate::journal::{StockAction, StockRequest};
    use crate::store::MemStore;
    use protocol::catalogue::{CatalogueChange, Product, Unit};
    use protocol::gifts::{Gift, GiftTable};
    use protocol::{EntryHash, Sku};

    const NOW: u64 = 1_795_451_400_000;

    fn hq_entries(payloads: Vec<Payload>) -> Vec<FeedItem> {
        let mut prev = EntryHash::GENESIS;
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let seq = i as u64 + 1;
                let entry = Entry {
                    origin: StoreId::hq(),
                    seq,
                    hlc: Hlc {
                        wall_ms: NOW - 60_000 + seq,
                        logical: 0,
                    },
                    business_date: date,
                    staff: StaffId::system(),
                    tx: TxId::parse(&format!("hq-{seq:08}")).unwrap(),
                    prev_hash: prev,
                    payload,
                };
                prev = entry.hash();
                FeedItem {
                    position: seq,
                    entry: entry.encode(),
                }
            })
            .collect()
    }

    fn gift(id: &str, points: u64, kind: GiftKind, per_member: u32, stock: u32) -> Gift {
        Gift {
            id: id.into(),
            name: format!("礼品 {id}"),
            points,
            kind,
            per_member,
            stock,
            stores: Default::default(),
            withdrawn: false,
        }
    }

    /// A store that heard of a cup in the catalogue, a ¥10 coupon template and a mall of
    /// three gifts, with five cups on the shelf and a member holding 600 points.
    fn store_with_mall(seed: u64) -> (Journal, MemberId) {
        let cup = Sku::parse("CUP-1").unwrap();
        let product = Product {
            sku: cup.clone(),
            name: "保温杯".into(),
            barcodes: Vec::new(),
            department: "百货".into(),
            category: "杯具".into(),
            unit: Unit::Piece,
            price: Some(Fen(5_900)),
            special: None,
            earns_points: true,
            discountable: true,
            active: true,
            low_stock: None,
        };
        let template = protocol::campaign::CouponTemplate {
            id: "t10".into(),
            name: "10元代金券".into(),
            offer: protocol::pricing::Coupon::Voucher {
                value: Fen(1_000),
                threshold: Fen(0),
            },
            validity: protocol::campaign::Validity::Days { days: 30 },
            scope: Default::default(),
            quota: None,
            per_member: 5,
            stacks: None,
            withdrawn: false,
        };
        let table = GiftTable {
            gifts: vec![
                gift(
                    "cup",
                    200,
                    GiftKind::Goods {
                        sku: cup.clone(),
                        qty: 2,
                    },
                    5,
                    10,
                ),
                gift(
                    "c10",
                    100,
                    GiftKind::Coupon {
                        template: "t10".into(),
                    },
                    1,
                    10,
                ),
                gift(
                    "rare",
                    10,
                    GiftKind::Coupon {
                        template: "t10".into(),
                    },
                    5,
                    1,
                ),
            ],
        };
        let items = hq_entries(vec![
            Payload::Catalogue {
                version: 1,
                part: 0,
                parts: 1,
                changes: vec![CatalogueChange::Product(product)],
            },
            Payload::Marketing {
                change: protocol::campaign::MarketingChange::Template(template),
            },
            Payload::Gifts { table },
        ]);
        let store = Arc::new(MemStore::default());
        let mut j = Journal::open(store, settings(), seeded_env(seed)).unwrap();
        j.apply_feed(3, items, Vec::new()).unwrap();
        let member = member_of(
            j.handle(Command::RegisterMember(request(
                "reg-00000001",
                new_member("13900000031"),
            )))
            .unwrap(),
        );
        j.handle(Command::QuickCheckout(request(
            "sale-00000001",
            sale(Some(member), "600.00"),
        )))
        .unwrap();
        j.handle(Command::Stock(request(
            "stock-0000001",
            StockRequest {
                action: StockAction::Receive {
                    supplier: "供应商".into(),
                    note: String::new(),
                    lines: vec![(cup, Qty(5_000), None)],
                },
            },
        )))
        .unwrap();
        (j, member)
    }

    fn redeem(
        j: &mut Journal,
        key: &str,
        member: MemberId,
        gift: &str,
    ) -> Result<Reply, Rejection> {
        j.handle(Command::Wallet(request(
            key,
            WalletRequest {
                member_id: member,
                action: WalletAction::RedeemGift { gift: gift.into() },
            },
        )))
    }

    fn points(j: &Journal, member: &MemberId) -> u64 {
        let wallet = j.wallet_of(member).unwrap();
        let today = j.settings.calendar.business_date(NOW);
        wallet.points_live(today, &j.settings.wallet.points)
    }

    fn on_hand(j: &Journal) -> Qty {
        let ov = Overlay::new(&*j.store);
        let cup = Sku::parse("CUP-1").unwrap();
        protocol::inventory::level(&ov, &j.settings.store_id, &cup)
            .unwrap()
            .on_hand
    }

    /// A coupon gift spends its points and puts the coupon in the wallet in one entry; a
    /// goods gift spends its points and takes its goods off the shelf, two entries of one
    /// request.
    #[test]
    fn a_gift_spends_its_points_and_gives_its_coupon_or_its_goods() {
        let (mut j, member) = store_with_mall(31);
        assert_eq!(points(&j, &member), 600);
        let before = j.tip.next_seq;
        redeem(&mut j, "gift-0000001", member, "c10").unwrap();
        assert_eq!(points(&j, &member), 500);
        assert_eq!(j.tip.next_seq, before + 1);
        let wallet = j.wallet_of(&member).unwrap();
        let coupon = CardId::for_entry(&j.settings.store_id, before);
        let def = &wallet.coupons[&coupon];
        assert_eq!(def.name, "10元代金券");
        assert_eq!((def.to - def.from).num_days(), 29, "30 days from today");
        redeem(&mut j, "gift-0000002", member, "cup").unwrap();
        assert_eq!(points(&j, &member), 300);
        assert_eq!(on_hand(&j), Qty(3_000), "two cups of five left the shelf");
        assert_eq!(j.tip.next_seq, before + 3, "the points, then the goods");
        let ov = Overlay::new(&*j.store);
        let here = j.settings.store_id.clone();
        let given = protocol::gifts::given(&ov, "cup", &here).unwrap();
        assert_eq!((given.times, given.points), (1, 200));
        assert_eq!(protocol::gifts::had(&ov, &member, "cup").unwrap(), 1);
    }

    /// Out of this store's allotment, over the member's limit, above their points, off the
    /// shelf, not on offer: each refused, and nothing is written.
    #[test]
    fn a_gift_refused_for_stock_limit_points_or_shelf_writes_nothing() {
        let (mut j, member) = store_with_mall(32);
        redeem(&mut j, "gift-0000001", member, "rare").unwrap();
        redeem(&mut j, "gift-0000002", member, "c10").unwrap();
        let tip = j.tip.next_seq;
        let left = points(&j, &member);
        let refused = |j: &mut Journal, key: &str, gift: &str| {
            let r = redeem(j, key, member, gift).unwrap_err();
            assert_eq!(j.tip.next_seq, tip, "{gift}: nothing written");
            r
        };
        assert!(matches!(
            refused(&mut j, "gift-0000003", "rare"),
            Rejection::Gift(GiftRefused::OutOfStock { allotment: 1, .. })
        ));
        assert!(matches!(
            refused(&mut j, "gift-0000004", "c10"),
            Rejection::Gift(GiftRefused::Limit { had: 1, .. })
        ));
        assert!(matches!(
            refused(&mut j, "gift-0000005", "nope"),
            Rejection::Gift(GiftRefused::Unknown(_))
        ));
        redeem(&mut j, "gift-0000006", member, "cup").unwrap();
        redeem(&mut j, "gift-0000007", member, "cup").unwrap();
        let tip = j.tip.next_seq;
        // One cup left on the shelf, two wanted.
        let r = redeem(&mut j, "gift-0000008", member, "cup").unwrap_err();
        assert!(matches!(r, Rejection::Gift(GiftRefused::NotOnShelf { .. })));
        assert_eq!(j.tip.next_seq, tip);
        assert_eq!(points(&j, &member), left - 400);
        // 90 points left, a cup costs 200: refused by the points themselves.
        let poor = member_of(
            j.handle(Command::RegisterMember(request(
                "reg-00000002",
                new_member("13900000032"),
            )))
            .unwrap(),
        );
        let tip = j.tip.next_seq;
        let r = redeem(&mut j, "gift-0000009", poor, "c10").unwrap_err();
        assert!(matches!(
            r,
            Rejection::Wallet(WalletError::Insufficient { .. })
        ));
        assert_eq!(j.tip.next_seq, tip);
    }

    /// The same request twice (a till that timed out and sent it again) gives one gift.
    #[test]
    fn the_same_redemption_sent_twice_gives_one_gift() {
        let (mut j, member) = store_with_mall(33);
        let first = redeem(&mut j, "gift-0000001", member, "cup").unwrap();
        let tip = j.tip.next_seq;
        let again = redeem(&mut j, "gift-0000001", member, "cup").unwrap();
        assert!(again.replayed);
        assert_eq!(j.tip.next_seq, tip);
        assert_eq!(points(&j, &member), 400);
        assert_eq!(on_hand(&j), Qty(3_000));
        assert!(!first.replayed);
    }
}
