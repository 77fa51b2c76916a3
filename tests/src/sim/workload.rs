//! What the stores do: members, sales, top-ups, payments, cards, returns, stock and erasures,
//! each sent to a store's real journal.

use super::*;

/// A request that spends rights, kept to be sent again (same key) once rights arrive.
#[derive(Clone)]
pub(super) enum Spend {
    Checkout(Request<QuickSaleRequest>),
    Wallet(Request<WalletRequest>),
    /// A return of one of the store's own sales, and the sale's member.
    Return(Request<SaleReturn>, Option<MemberId>),
    /// Goods scanned, paid partly from stored value or points, the rest in cash.
    Items(Request<ItemCheckoutRequest>),
    /// Goods of a member's item sale brought back, at any store.
    ItemReturn(Request<SaleReturn>, MemberId),
}

impl Spend {
    pub(super) fn command(&self) -> Command {
        match self {
            Spend::Checkout(r) => Command::QuickCheckout(r.clone()),
            Spend::Wallet(r) => Command::Wallet(r.clone()),
            Spend::Return(r, _) => Command::ReturnSale(r.clone()),
            Spend::Items(r) => Command::ItemCheckout(r.clone()),
            Spend::ItemReturn(r, _) => Command::ReturnSale(r.clone()),
        }
    }

    pub(super) fn key(&self) -> TxId {
        match self {
            Spend::Checkout(r) => r.key.clone(),
            Spend::Wallet(r) => r.key.clone(),
            Spend::Return(r, _) => r.key.clone(),
            Spend::Items(r) => r.key.clone(),
            Spend::ItemReturn(r, _) => r.key.clone(),
        }
    }

    pub(super) fn member(&self) -> Option<MemberId> {
        match self {
            Spend::Checkout(r) => r.body.member_id,
            Spend::Wallet(r) => Some(r.body.member_id),
            Spend::Return(_, member) => *member,
            Spend::Items(r) => r.body.member_id,
            Spend::ItemReturn(_, member) => Some(*member),
        }
    }
}

impl Sim {
    /// 被遗忘: headquarters erases a member it knows, when nothing is owed either way (else it
    /// refuses, and nothing changes). Their entries still in flight must then be skipped
    /// everywhere, and nothing of them may come back (`check`).
    pub(super) fn erase_a_member(&mut self) {
        let members = self.hub.mem.members().unwrap();
        if members.is_empty() {
            return;
        }
        let id = members[self.rng.random_range(0..members.len())].member_id;
        let by = StaffId::parse("hq-sim").unwrap();
        match self
            .hub
            .ingest
            .hq_write(hub::ingest::HqWrite::Erase(id), &by)
        {
            Ok(()) => self.trace.push(format!("{id} erased")),
            Err(e) => self.trace.push(format!("{id} not erased: {e}")),
        }
    }

    pub(super) fn key(&mut self, i: usize) -> TxId {
        let s = &mut self.stores[i];
        s.keys += 1;
        TxId::parse(&format!("{}-key-{:08}", s.id, s.keys)).unwrap()
    }

    pub(super) fn work(&mut self, i: usize) {
        let key = self.key(i);
        let members = member_ids(&self.stores[i].mem);
        let some_member = |rng: &mut StdRng| {
            (!members.is_empty()).then(|| members[rng.random_range(0..members.len())])
        };
        let yuan = |rng: &mut StdRng, max: i64| {
            Money::new(
                Decimal::new(rng.random_range(1..max * 100), 2),
                Currency::CNY,
            )
        };
        let roll = self.rng.random_range(0..26);
        if roll == 25 && !self.item_sales.is_empty() {
            // Goods of a member's sale come back here, whole or one piece of one line.
            let k = self.rng.random_range(0..self.item_sales.len());
            let (sale_id, member, sold) = self.item_sales[k].clone();
            let lines = self.rng.random_bool(0.5).then(|| {
                let line = self.rng.random_range(0..sold.len());
                vec![protocol::returns::ReturnLine {
                    line: u16::try_from(line).unwrap(),
                    qty: Qty(1000),
                }]
            });
            let body = SaleReturn {
                sale_id,
                reason: "退货".into(),
                lines,
            };
            // The cashier looks the member up first, so the store follows them (and, once
            // their history is here, knows the sale).
            self.meet(i, member);
            self.send_spend(i, Spend::ItemReturn(request(&key, body), member), true);
            return;
        }
        if roll == 20 || roll == 21 {
            self.move_stock(i, roll == 20);
            return;
        }
        if let (24, Some(member_id)) = (roll, some_member(&mut self.rng))
            && self.rng.random_bool(0.5)
        {
            if !self.whole_for_payment(i, member_id) {
                return;
            }
            // 积分兑换: a gift for points, through the member's rights like a payment.
            let action = WalletAction::RedeemGift {
                gift: "sim-gift".into(),
            };
            let body = WalletRequest { member_id, action };
            self.send_spend(i, Spend::Wallet(request(&key, body)), true);
            return;
        }
        if let (24, Some(member_id)) = (roll, some_member(&mut self.rng)) {
            // A coupon given at this store: 满1减0.50, good for the simulated days.
            let action = WalletAction::IssueCoupon {
                name: "模拟券".into(),
                offer: protocol::pricing::Coupon::AmountOff {
                    threshold: Fen(100),
                    off: Fen(50),
                },
                from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                to: chrono::NaiveDate::from_ymd_opt(2027, 12, 31).unwrap(),
            };
            let body = WalletRequest { member_id, action };
            self.send_spend(i, Spend::Wallet(request(&key, body)), true);
            return;
        }
        if roll >= 22 {
            let lines = (0..self.rng.random_range(1..4))
                .map(|_| {
                    let k = self.rng.random_range(0..SKUS);
                    (sku(k), Qty(self.rng.random_range(1..4) * 1000))
                })
                .collect::<BTreeMap<Sku, Qty>>()
                .into_iter()
                .map(|(sku, qty)| node::journal::BasketLine::new(sku, qty))
                .collect();
            let member_id = some_member(&mut self.rng);
            let mut tenders = vec![TenderRequest::Cash {
                tendered: Fen(1_000_000),
            }];
            if let Some(member) = member_id
                && self.rng.random_bool(0.6)
            {
                if !self.whole_for_payment(i, member) {
                    return;
                }
                tenders.push(TenderRequest::StoredValue {
                    amount: Fen(self.rng.random_range(1..600)),
                });
            }
            let points = match member_id {
                Some(_) if self.rng.random_bool(0.3) => self.rng.random_range(1..300),
                _ => 0,
            };
            // Sometimes a coupon the member holds (as this store sees the wallet): if two stores
            // try the same one, escrow lets only one of them spend it.
            let coupon = member_id
                .filter(|_| self.rng.random_bool(0.5))
                .and_then(|m| {
                    let wallet = views::Views::new(self.stores[i].mem.clone())
                        .wallet(&m)
                        .unwrap();
                    let held: Vec<_> = wallet.coupons.keys().cloned().collect();
                    (!held.is_empty()).then(|| held[self.rng.random_range(0..held.len())].clone())
                });
            let body = ItemCheckoutRequest {
                member_id,
                lines,
                points,
                tenders,
                served_by: None,
                coupons: coupon.into_iter().collect(),
                held_order: None,
                sold_at: None,
            };
            self.send_spend(i, Spend::Items(request(&key, body)), true);
            return;
        }
        let member = some_member(&mut self.rng);
        let spend = match (roll, member) {
            (0..4, _) => {
                let phone =
                    Phone::parse(&format!("139{:08}", self.rng.random_range(0..5_000))).unwrap();
                let command =
                    Command::RegisterMember(request(&key, NewMember::named("模拟会员", phone)));
                let _ = self.stores[i].journal.handle(command); // a taken phone is fine
                return;
            }
            (4..6, Some(member_id)) => {
                let patch = match self.rng.random_range(0..3) {
                    0 => ProfilePatch {
                        name: Some(format!("会员{}", self.rng.random_range(0..100))),
                        ..Default::default()
                    },
                    1 => ProfilePatch {
                        tags_add: vec![format!("t{}", self.rng.random_range(0..5))],
                        ..Default::default()
                    },
                    _ => ProfilePatch {
                        notes: Some(format!("note {}", self.rng.random::<u16>())),
                        ..Default::default()
                    },
                };
                let command = Command::EditMember(request(
                    &key,
                    MemberEdit {
                        member_id,
                        patch,
                        tier_reason: None,
                    },
                ));
                let _ = self.stores[i].journal.handle(command);
                return;
            }
            (6..9, Some(member_id)) => {
                let rule = self.rng.random_bool(0.3).then(|| "200+30".to_owned());
                let paid = match rule {
                    Some(_) => Money::new(Decimal::new(20_000, 2), Currency::CNY),
                    None => yuan(&mut self.rng, 300),
                };
                let action = WalletAction::TopUp { paid, rule };
                Spend::Wallet(request(&key, WalletRequest { member_id, action }))
            }
            (9..13, Some(member_id)) if !self.whole_for_payment(i, member_id) => return,
            (9..13, Some(member_id)) => Spend::Checkout(request(
                &key,
                QuickSaleRequest {
                    member_id: Some(member_id),
                    amount: yuan(&mut self.rng, 150),
                    category: None,
                    cash_tendered: None,
                    pay_with: PayWith::StoredValue,
                    offline_overdraft: false,
                },
            )),
            (13, Some(member_id)) => {
                let action = WalletAction::AdjustPoints {
                    points: -self.rng.random_range(1..200),
                    reason: "兑换礼品".into(),
                };
                Spend::Wallet(request(&key, WalletRequest { member_id, action }))
            }
            (15, _) if !self.stores[i].sales.is_empty() => {
                let sales = &self.stores[i].sales;
                let (sale_id, member) = sales[self.rng.random_range(0..sales.len())].clone();
                let body = SaleReturn {
                    sale_id,
                    reason: "退货".into(),
                    lines: None,
                };
                Spend::Return(request(&key, body), Some(member))
            }
            (16, _) => {
                let here = self.stores[i].id.clone();
                let owing = views::Views::new(self.stores[i].mem.clone())
                    .receivables(&here)
                    .unwrap();
                let Some((member_id, _)) = owing.first().copied() else {
                    return;
                };
                let action = WalletAction::CollectOverdraft;
                Spend::Wallet(request(&key, WalletRequest { member_id, action }))
            }
            (14, Some(member_id)) => {
                let action = WalletAction::Refund {
                    principal: yuan(&mut self.rng, 50),
                    reason: "退款".into(),
                };
                Spend::Wallet(request(&key, WalletRequest { member_id, action }))
            }
            _ => Spend::Checkout(request(
                &key,
                QuickSaleRequest {
                    member_id: member.filter(|_| self.rng.random_bool(0.7)),
                    amount: yuan(&mut self.rng, 1000),
                    category: None,
                    cash_tendered: None,
                    pay_with: PayWith::Cash,
                    offline_overdraft: false,
                },
            )),
        };
        self.send_spend(i, spend, true);
    }

    /// Goods received or written off at store `i` (refused until it has the catalogue).
    pub(super) fn move_stock(&mut self, i: usize, receive: bool) {
        let key = self.key(i);
        let sku = sku(self.rng.random_range(0..SKUS));
        let qty = Qty(self.rng.random_range(1..30) * 1000);
        let action = match receive {
            true => StockAction::Receive {
                supplier: "供应商".into(),
                note: String::new(),
                lines: vec![(sku.clone(), qty, None)],
            },
            false => StockAction::Damage {
                reason: "破损".into(),
                lines: vec![(sku.clone(), qty)],
            },
        };
        let command = Command::Stock(request(&key, StockRequest { action }));
        if let Ok(reply) = self.stores[i].journal.handle(command)
            && !reply.replayed
        {
            self.flush_store(i);
            let seq = self.stores[i].journal.tip().next_seq - 1;
            let delta = if receive { qty.0 } else { -qty.0 };
            self.stock_bookings.push((i, seq, sku, delta));
        }
    }

    /// A till looks a member up at store `i`: the store follows them if it does not
    /// (`node::api`'s `follow::meet`).
    pub(super) fn meet(&mut self, i: usize, member: MemberId) -> node::follow::State {
        let state = views::Views::new(self.stores[i].mem.clone())
            .follow_state(&member)
            .unwrap();
        if state == node::follow::State::No {
            self.stores[i].journal.follow(&[member]).unwrap();
            self.flush_store(i);
        }
        state
    }

    /// Whether store `i` may take a stored-value payment of `member`, as the node's API
    /// decides (`follow::ensure_whole`): only with the member's wallet whole here. Online the
    /// API waits for the history; here the cashier tries again later.
    pub(super) fn whole_for_payment(&mut self, i: usize, member: MemberId) -> bool {
        if self.meet(i, member) == node::follow::State::Whole {
            return true;
        }
        if self.stores[i].session.is_some() {
            self.wallet_ops.waited_for_history += 1;
        } else {
            self.wallet_ops.refused_not_here += 1;
        }
        false
    }

    /// Sends a request that may spend; when its rights are elsewhere and the store is online,
    /// asks headquarters (the first time) and keeps it to send again.
    pub(super) fn send_spend(&mut self, i: usize, spend: Spend, may_ask: bool) {
        let result = self.stores[i].journal.handle(spend.command());
        match result {
            Ok(reply) => {
                if !reply.replayed {
                    self.flush_store(i); // so the entry just written can be read back
                    self.expect(i, &spend, &reply.outcome);
                }
                if let (Spend::Checkout(_), Outcome::Sale { sale, .. }) = (&spend, &reply.outcome)
                    && let Some(member) = sale.sale.member_id
                {
                    self.stores[i]
                        .sales
                        .push((sale.sale.sale_id.clone(), member));
                }
                if let Some(member) = spend.member() {
                    self.audit_one(i, &member);
                }
            }
            Err(Rejection::Wallet(WalletError::RightsElsewhere { .. }))
                if self.stores[i].session.is_none()
                    && matches!(&spend, Spend::Checkout(r) if !r.body.offline_overdraft) =>
            {
                // Offline: the chain's overdraft policy decides.
                self.wallet_ops.refused_rights_elsewhere += 1;
                if let Spend::Checkout(mut r) = spend {
                    r.body.offline_overdraft = true;
                    self.send_spend(i, Spend::Checkout(r), false);
                }
            }
            Err(Rejection::Wallet(WalletError::RightsElsewhere { wants })) => {
                self.wallet_ops.refused_rights_elsewhere += 1;
                self.ask(i, spend, wants, may_ask);
            }
            // Short as far as this store has heard: the node's API asks headquarters too,
            // while online (a top-up at another store may not have reached it yet).
            Err(Rejection::Wallet(WalletError::Insufficient { wants, .. }))
                if !wants.is_empty() && may_ask && self.stores[i].session.is_some() =>
            {
                if let Some(id) = self.ask(i, spend, wants, may_ask) {
                    self.wallet_ops.asks_beyond_heard += 1;
                    self.beyond_heard.insert(id);
                }
            }
            Err(Rejection::Wallet(WalletError::Insufficient { .. })) => {
                self.wallet_ops.refused_insufficient += 1;
            }
            Err(_) => {}
        }
    }

    /// Asks headquarters for the rights `spend` wants, as the node's API does, and keeps the
    /// spend to send again when they arrive. Returns the ask's id when it went out.
    fn ask(
        &mut self,
        i: usize,
        spend: Spend,
        wants: Vec<(Counter, u64)>,
        may_ask: bool,
    ) -> Option<TxId> {
        let s = &mut self.stores[i];
        let holding = match (spend.member(), may_ask) {
            (Some(member), true) => {
                let counters: Vec<_> = wants.iter().map(|(c, _)| c.clone()).collect();
                Some(s.journal.holding(&member, &counters).unwrap())
            }
            _ => None,
        };
        let (Some((_, session)), true, Some(member)) =
            (s.session.as_mut(), may_ask, spend.member())
        else {
            return None;
        };
        let id = ask_id(&s.id, &member, &spend.key());
        let ask = Ask {
            id: id.clone(),
            member,
            wants,
            holding,
        };
        if s.asks.ask(id.clone(), spend) && session.ask(ask).is_err() {
            s.asks.withdraw(&id);
            return None;
        }
        self.wallet_ops.asks += 1;
        Some(id)
    }
}

pub(super) const SKUS: usize = 4;

pub(super) fn sku(i: usize) -> Sku {
    Sku::parse(&format!("P{i}")).unwrap()
}

pub(super) fn sim_product(i: usize) -> Product {
    Product {
        sku: sku(i),
        name: format!("模拟商品{i}"),
        barcodes: vec![],
        department: "GROCERY".into(),
        category: String::new(),
        unit: Unit::Piece,
        price: Some(Fen(100 * (i as i64 + 1))),
        special: None,
        earns_points: true,
        discountable: true,
        active: true,
        low_stock: None,
    }
}
