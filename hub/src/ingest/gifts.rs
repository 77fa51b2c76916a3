//! 积分兑换 on the member's own page: headquarters gives a coupon gift for the member's points,
//! spending them from its own pool like a store spends what it holds. What the pool lacks it
//! calls back from the stores that hold it (`protocol::bank::plan_gather`); the member's page
//! asks again a moment later and the gift is given then. A gift is given once per request key.

use protocol::gifts::{GiftKind, GiftRefused, may_give};
use protocol::wallet::{CardId, GiftCoupon, PointsPolicy, WalletError};

use super::*;

/// How long headquarters keeps points it called back for its own spend from a rebalance.
const GATHER_KEPT_MS: u64 = 10_000;

/// What calling a member's rights back to headquarters' pool came to.
pub(super) enum Gathered {
    /// Recalls are out (now or a moment ago): ask again shortly.
    Called,
    /// Part is held at these stores, which cannot be reached now.
    Away(String),
    /// Nothing to call back: the pool holds it, or the chain holds less.
    Nothing,
}

impl Ingest {
    pub(super) fn redeem_gift(
        &mut self,
        member: &MemberId,
        id: &str,
        key: TxId,
        by: &StaffId,
    ) -> Result<(), HqWriteError> {
        let hq = StoreId::hq();
        let storage = |e: String| HqWriteError::Storage(e);
        let views = HubViews::reader(&*self.storage);
        if views
            .get(&protocol::gifts::keys::request(&hq, &key))
            .map_err(storage)?
            .is_some()
        {
            return Ok(());
        }
        let record = self.member_record(member)?;
        if record.profile.card_status == protocol::member::CardStatus::Closed {
            return Err(HqWriteError::CardState(
                "the membership was closed (退卡)".into(),
            ));
        }
        let gift = protocol::gifts::current(&views)
            .map_err(storage)?
            .and_then(|p| p.table.gift(id).cloned())
            .ok_or_else(|| GiftRefused::Unknown(id.to_owned()))?;
        let given = protocol::gifts::given(&views, id, &hq).map_err(storage)?;
        let had = protocol::gifts::had(&views, member, id).map_err(storage)?;
        may_give(&gift, &hq, given.times, had)?;
        let GiftKind::Coupon { template } = &gift.kind else {
            // Goods leave a store's shelf: only a store gives them.
            return Err(GiftRefused::OutOfStock {
                gift: gift.id.clone(),
                allotment: 0,
            }
            .into());
        };
        let t = protocol::project::marketing::live_template(&views, template)
            .map_err(storage)?
            .ok_or_else(|| GiftRefused::NoTemplate {
                gift: gift.id.clone(),
                template: template.clone(),
            })?;
        let now = (self.now_ms)();
        let today = self.calendar.business_date(now);
        let mut wallet = self.wallet(member).map_err(|e| storage(e.to_string()))?;
        let spent = wallet.spend_points(&hq, gift.points, today, &PointsPolicy::default());
        let mut ops = match spent {
            Ok(ops) => ops,
            Err(WalletError::RightsElsewhere { wants }) => {
                return Err(
                    match self.gather(member, &wallet, key.as_str(), &wants, now) {
                        Gathered::Called => HqWriteError::Gathering,
                        Gathered::Away(stores) => HqWriteError::Unreachable(stores),
                        Gathered::Nothing => WalletError::Insufficient {
                            available: wallet.points_live(today, &PointsPolicy::default()),
                            wanted: gift.points,
                            wants: Vec::new(),
                        }
                        .into(),
                    },
                );
            }
            Err(e) => return Err(e.into()),
        };
        self.gathering.remove(member);
        let coupon = GiftCoupon::of(t, CardId::for_entry(&hq, self.tip(&hq).next_seq), today);
        ops.extend(wallet.issue_coupon(&hq, &coupon.coupon, (coupon.from, coupon.to))?);
        let event = WalletEvent::GiftRedeemed {
            gift: gift.id.clone(),
            name: gift.name.clone(),
            points: gift.points,
            coupon: Some(coupon),
        };
        let payload = Payload::Wallet {
            member_id: *member,
            event,
            ops,
        };
        self.write_hq_as(key, payload, by.clone())
            .map_err(|e| HqWriteError::Storage(e.to_string()))
    }

    /// Calls back what headquarters' pool lacks of `wants` from the stores holding it, and
    /// keeps it from the rebalance for a while; a member already being called back is not
    /// asked of the stores again until that while is over (their answers are on the way).
    pub(super) fn gather(
        &mut self,
        member: &MemberId,
        wallet: &Wallet,
        key: &str,
        wants: &[(Counter, u64)],
        now: u64,
    ) -> Gathered {
        if self.gathering.get(member).is_some_and(|until| *until > now) {
            return Gathered::Called;
        }
        let hq = StoreId::hq();
        match bank::plan_gather(wallet, &hq, wants, |s| self.reachable(s)) {
            AskPlan::Recall(list) => {
                self.recall_rounds += 1;
                let round = format!("{now}-{}", self.recall_rounds);
                for (holder, counter, units) in list {
                    let id = TxId::derived(&[
                        "gather",
                        key,
                        &counter.to_string(),
                        holder.as_str(),
                        &round,
                    ]);
                    let recall = Recall {
                        id,
                        member: *member,
                        counter,
                        units,
                    };
                    self.gather_recalls.push((holder, recall));
                }
                self.gathering
                    .insert(*member, now.saturating_add(GATHER_KEPT_MS));
                Gathered::Called
            }
            AskPlan::Unreachable(stores) => Gathered::Away(
                stores
                    .iter()
                    .map(StoreId::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            AskPlan::Grant(_) | AskPlan::Refuse(_) => Gathered::Nothing,
        }
    }

    /// The recalls headquarters' own spends asked for since the last call.
    pub(super) fn take_gather_recalls(&mut self) -> Vec<(StoreId, Recall)> {
        std::mem::take(&mut self.gather_recalls)
    }

    /// Members whose points are on their way back to headquarters' pool.
    pub(super) fn gathering(&mut self) -> BTreeSet<MemberId> {
        let now = (self.now_ms)();
        self.gathering.retain(|_, until| *until > now);
        self.gathering.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{registration, wallet_entry};
    use super::*;
    use crate::storage::MemHubStore;
    use protocol::escrow::Change;
    use protocol::gifts::{Gift, GiftTable};
    use protocol::wallet::RightsOp;

    /// A member page's gift: refused while the points' store is away; called back from it
    /// once connected; given when the request comes again; the same key gives it once; the
    /// member's limit holds.
    #[test]
    fn a_gift_on_the_members_page_calls_the_points_back_and_is_given_once() {
        let storage: Arc<MemHubStore> = Arc::new(MemHubStore::default());
        let mut ingest = Ingest::open(storage.clone(), Box::new(|| 1_795_451_400_000)).unwrap();
        let (s001, hq, by) = (
            StoreId::parse("S001").unwrap(),
            StoreId::hq(),
            StaffId::system(),
        );
        let registered = registration(&s001, ChainTip::GENESIS, "13800000041");
        let Payload::MemberRegistered {
            member_id: member, ..
        } = registered.payload
        else {
            unreachable!()
        };
        let mut tip = ChainTip::GENESIS.extend(&s001, &registered).unwrap();
        let pts = Counter::Points { year: 2026 };
        let earned = RightsOp {
            counter: pts.clone(),
            change: Change::Credit {
                units: 500,
                total: 500,
            },
        };
        let earned = wallet_entry(&s001, tip, member, vec![earned]);
        let entries = vec![Sealed::new(registered), Sealed::new(earned.clone())];
        tip = tip.extend(&s001, &earned).unwrap();
        ingest.ingest(&s001, entries, 2).unwrap();
        let template: protocol::campaign::CouponTemplate = protocol::campaign::CouponTemplate {
            id: "t10".into(),
            name: "10元代金券".into(),
            offer: protocol::pricing::Coupon::Voucher {
                value: protocol::Fen(1_000),
                threshold: protocol::Fen(0),
            },
            validity: protocol::campaign::Validity::Days { days: 30 },
            scope: Default::default(),
            quota: None,
            per_member: 5,
            stacks: None,
            withdrawn: false,
        };
        ingest
            .publish_marketing(protocol::campaign::MarketingChange::Template(template), &by)
            .unwrap();
        let table = GiftTable {
            gifts: vec![Gift {
                id: "c10".into(),
                name: "10元券".into(),
                points: 300,
                kind: GiftKind::Coupon {
                    template: "t10".into(),
                },
                per_member: 1,
                stock: 100,
                stores: Default::default(),
                withdrawn: false,
            }],
        };
        ingest.hq_write(HqWrite::Gifts(table), &by).unwrap();
        let redeem = |ingest: &mut Ingest, key: &str| {
            let write = HqWrite::RedeemGift {
                member,
                gift: "c10".into(),
                key: TxId::parse(key).unwrap(),
            };
            ingest.hq_write(write, &by)
        };
        // S001 holds every point and is not connected.
        assert!(matches!(
            redeem(&mut ingest, "page-0001"),
            Err(HqWriteError::Unreachable(_))
        ));
        ingest.link(&s001, true);
        assert!(matches!(
            redeem(&mut ingest, "page-0001"),
            Err(HqWriteError::Gathering)
        ));
        let recalls = ingest.take_gather_recalls();
        assert_eq!(recalls.len(), 1);
        assert_eq!((&recalls[0].0, recalls[0].1.units), (&s001, 300));
        assert!(
            ingest.gathering().contains(&member),
            "kept from the rebalance"
        );
        // S001 answers the recall; the page asks again with the same key.
        let handed = RightsOp {
            counter: pts.clone(),
            change: Change::Transfer {
                to: hq.clone(),
                units: 300,
                total: 300,
            },
        };
        let back = wallet_entry(&s001, tip, member, vec![handed]);
        ingest.ingest(&s001, vec![Sealed::new(back)], 3).unwrap();
        redeem(&mut ingest, "page-0001").unwrap();
        ingest.flush().unwrap();
        let wallet = storage.wallet(&member).unwrap().unwrap();
        assert_eq!(wallet.balance(&pts), 200);
        assert_eq!(wallet.coupons.len(), 1, "the coupon is in the wallet");
        let hq_tip = ingest.tip(&hq);
        redeem(&mut ingest, "page-0001").unwrap();
        assert_eq!(ingest.tip(&hq), hq_tip, "the same key gives nothing twice");
        assert!(matches!(
            redeem(&mut ingest, "page-0002"),
            Err(HqWriteError::Gift(GiftRefused::Limit { had: 1, .. }))
        ));
    }
}
