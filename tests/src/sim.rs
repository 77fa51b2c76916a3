//! The deterministic simulator: many stores and the hub in one thread, driven by one seed.
//! Stores run the real journal on in-memory storage (`MemStore`), the hub the real ingest on
//! `MemHubStore`, and both ends the real sans-IO sync sessions. The simulated network delays
//! messages, cuts connections, keeps stale connections alive (so batches arrive twice and out
//! of order), and partitions stores; stores and the hub crash and lose unflushed writes.
//! In half the runs one store goes quiet partway through (cut off, not dead); an operator puts
//! it on hold, which must last past the store's offline lease, the hold runs out, and
//! headquarters fences it and takes its rights back. The store keeps selling on its own: in half
//! of those runs it stops spending member rights when its lease runs out, as a store does (and
//! then nothing is spent twice), in the other half it does not (a store whose lease is set
//! longer than headquarters', or whose clock is slow), and what it spends twice must show as a
//! receivable. Either way it comes back at the end and everything it sold is taken in: nothing
//! acknowledged is lost. A failing seed replays exactly: everything here is a function of the
//! seed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hub::ingest::Ingest;
use hub::storage::{HubStore, MemHubStore};
use node::clock::ChainClock;
use node::journal::{
    Command, Environment, ItemCheckoutRequest, Journal, MemberEdit, NewMember, Outcome, Rejection,
    Request, SaleReturn, Settings, StockAction, StockRequest, TenderRequest, WalletAction,
    WalletRequest,
};
use node::store::{MemStore, Store};
use node::views::{self, MemberView, keys};
use protocol::ask::{AskQueue, Limits, Tracker, ask_id};
use protocol::catalogue::{CatalogueChange, Product, Qty, Unit};
use protocol::member::ProfilePatch;
use protocol::sale::{PayWith, QuickSaleRequest, Tender};
use protocol::sync::{
    Ask, AskAnswer, FeedItem, HubEvent, HubMsg, HubSession, StoreMsg, UplinkEvent, UplinkSession,
};
use protocol::wallet::{Counter, TopUpRule, Wallet, WalletError, WalletEvent};
use protocol::{Currency, Fen, MemberId, Money, Phone, SaleId, Sku, StaffId, StoreId, TxId};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rust_decimal::Decimal;

#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    pub stores: usize,
    pub steps: usize,
    /// Scales every fault probability; 0 runs a perfect network with no crashes.
    pub faults: f64,
}

struct Link {
    store: usize,
    to_hub: VecDeque<(u64, StoreMsg)>,
    to_store: VecDeque<(u64, HubMsg)>,
    /// The store has let go of this connection (it may still deliver to the hub: a zombie).
    store_gone: bool,
    hub: Option<HubSession>,
    feed_sent: Option<u64>,
}

struct SimStore {
    id: StoreId,
    mem: Arc<MemStore>,
    journal: Journal,
    session: Option<(usize, UplinkSession)>,
    /// The log length acknowledged to cashiers (after a flush): never to be lost.
    acked_len: u64,
    partitioned_until: u64,
    keys: u64,
    /// Spends waiting for headquarters to move rights here, driven as the node's uplink and
    /// journal drive theirs: sent again once the feed brings the rights granted.
    asks: Tracker<Spend>,
    /// Member sales this store made, to return some of.
    sales: Vec<(SaleId, MemberId)>,
    /// The offline lease's gate, as the node's lease task works it (only the quiet store's
    /// is ever shut here).
    gate: node::lease::RightsGate,
    /// Its PC's clock, corrected by headquarters' when heard.
    clock: ChainClock,
}

/// A request that spends rights, kept to be sent again (same key) once rights arrive.
#[derive(Clone)]
enum Spend {
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
    fn command(&self) -> Command {
        match self {
            Spend::Checkout(r) => Command::QuickCheckout(r.clone()),
            Spend::Wallet(r) => Command::Wallet(r.clone()),
            Spend::Return(r, _) => Command::ReturnSale(r.clone()),
            Spend::Items(r) => Command::ItemCheckout(r.clone()),
            Spend::ItemReturn(r, _) => Command::ReturnSale(r.clone()),
        }
    }

    fn key(&self) -> TxId {
        match self {
            Spend::Checkout(r) => r.key.clone(),
            Spend::Wallet(r) => r.key.clone(),
            Spend::Return(r, _) => r.key.clone(),
            Spend::Items(r) => r.key.clone(),
            Spend::ItemReturn(r, _) => r.key.clone(),
        }
    }

    fn member(&self) -> Option<MemberId> {
        match self {
            Spend::Checkout(r) => r.body.member_id,
            Spend::Wallet(r) => Some(r.body.member_id),
            Spend::Return(_, member) => *member,
            Spend::Items(r) => r.body.member_id,
            Spend::ItemReturn(_, member) => Some(*member),
        }
    }
}

/// What the bank expects a member's wallet to hold, from every acknowledged operation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Expected {
    principal: i128,
    bonus: i128,
    points: i128,
    /// Offline overdrafts not yet paid off.
    owed: i128,
}

struct SimHub {
    mem: Arc<MemHubStore>,
    ingest: Ingest,
    durable_feed_len: u64,
    pending_acks: Vec<(usize, u64)>,
    new_links: Vec<usize>,
    /// Asks being served, each with the link its answer goes back on: the hub's own queue.
    asks: AskQueue<usize>,
    /// Answers to send once the flush that made them durable is done.
    answers: Vec<(usize, TxId, AskAnswer)>,
}

/// The headquarters' fence rule of the simulation: its clock moves about 20 ms a step, so a
/// lease of 300 ms lets a hold post within a few dozen steps.
const SIM_FENCE: protocol::lease::FenceRule = protocol::lease::FenceRule {
    lease_ms: 300,
    margin_ms: 100,
    hold_min_ms: 200,
};

/// A store gone quiet: cut off from headquarters until the end of the run.
#[derive(Debug, Clone, Copy)]
struct Quiet {
    store: usize,
    /// When it lost its link (so its lease counts from here at the latest).
    since: u64,
    /// Whether it stops spending rights when its lease runs out, as a store does.
    honours_lease: bool,
    /// The seq its log was fenced at, once it is.
    fenced_at: Option<u64>,
    /// Its log's length when its lease ran out and when it came back: in between it spends
    /// no member rights, if it honours its lease.
    lease_out_len: Option<u64>,
    back_len: Option<u64>,
}

pub struct Sim {
    rng: StdRng,
    now: Arc<AtomicU64>,
    config: SimConfig,
    stores: Vec<SimStore>,
    hub: SimHub,
    links: BTreeMap<usize, Link>,
    next_link: usize,
    /// What happened, for a failing seed's report.
    pub trace: Vec<String>,
    /// Every acknowledged wallet operation: (store, the seq of its entry, member, change).
    bookings: Vec<(usize, u64, MemberId, Expected)>,
    /// The step at which a store goes quiet for good, and which one.
    /// (And whether it honours its offline lease.)
    quiet_at: Option<(u64, usize, bool)>,
    /// The store that went quiet, once it has; with the seq its log was fenced at.
    quiet: Option<Quiet>,
    /// Every acknowledged stock movement: (store, the seq of its entry, sku, quantity).
    stock_bookings: Vec<(usize, u64, Sku, i64)>,
    /// Every acknowledged coupon redemption (+1) and coupon given back by a return that left
    /// nothing of its sale (−1), in the order they were acknowledged: (store, seq, member,
    /// coupon, ±1).
    redemptions: Vec<(usize, u64, MemberId, String, i64)>,
    /// Members' item sales acknowledged: sale, member, quantity sold of each line.
    item_sales: Vec<(SaleId, MemberId, Vec<i64>)>,
    /// Every acknowledged item return: (store, seq, sale, line, quantity).
    item_returns: Vec<(usize, u64, SaleId, u16, i64)>,
    /// The first violation the bank's checker found during the run.
    violation: Option<String>,
    steps_run: u64,
    pub wallet_ops: WalletCounts,
}

/// How the wallet workload went (a run that never spent across stores proves little).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalletCounts {
    pub applied: u64,
    pub asks: u64,
    pub granted: u64,
    /// Asks answered that the rights are at stores headquarters cannot reach.
    pub unreachable: u64,
    pub refused_rights_elsewhere: u64,
    pub refused_insufficient: u64,
    /// Payments an offline store took partly on overdraft.
    pub overdrafts: u64,
    /// Item sales by members (stored value, points used and earned).
    pub item_sales: u64,
    /// Coupons redeemed at item sales (each at most once: the audit checks every counter).
    pub coupons_redeemed: u64,
    /// Item returns, at the selling store or another.
    pub item_returns: u64,
    /// Of those, returns at another store than the sale's (its return rights fetched).
    pub item_returns_elsewhere: u64,
}

fn settings(store: &StoreId) -> Settings {
    let mut settings = Settings {
        store_id: store.clone(),
        ..node::Config::default().settings().unwrap()
    };
    settings.wallet.overdraft_member = Fen(10_000); // 100 yuan
    settings.wallet.overdraft_store = Fen(100_000); // 1000 yuan
    settings.wallet.top_up_rules = vec![TopUpRule {
        id: "200+30".into(),
        pay_at_least: Fen(20_000),
        bonus: Fen(3_000),
    }];
    settings
}

/// A store's journal goes by the chain's time at the store: its PC's clock (the simulated
/// one, off by the store's skew), corrected by headquarters' once heard (`node::clock`).
fn environment(clock: &ChainClock, seed: u64) -> Environment {
    let clock = clock.clone();
    let mut rng = StdRng::seed_from_u64(seed);
    Environment {
        now_ms: Box::new(move || clock.now_ms()),
        random: Box::new(move || rng.random()),
    }
}

/// A PC clock on the simulated time, `skew_ms` off.
fn pc_clock(now: &Arc<AtomicU64>, skew_ms: i64) -> ChainClock {
    let now = now.clone();
    ChainClock::with_pc(Arc::new(move || {
        now.load(Ordering::Relaxed).saturating_add_signed(skew_ms)
    }))
}

impl Sim {
    pub fn new(seed: u64, config: SimConfig) -> Self {
        let now = Arc::new(AtomicU64::new(1_795_451_400_000));
        let mut rng = StdRng::seed_from_u64(seed);
        // In a third of the runs one store's PC clock is off: a day slow or fast, or minutes.
        let skewed = rng.random_bool(1.0 / 3.0).then(|| {
            let skew = [-86_400_000, 86_400_000, -300_000, 300_000][rng.random_range(0..4)];
            (rng.random_range(0..config.stores), skew)
        });
        let stores = (0..config.stores)
            .map(|i| {
                let id = StoreId::parse(&format!("S{:03}", i + 1)).unwrap();
                let mem = Arc::new(MemStore::default());
                let skew = skewed.filter(|(s, _)| *s == i).map_or(0, |(_, skew)| skew);
                let clock = pc_clock(&now, skew);
                let mut journal = Journal::open(
                    mem.clone(),
                    settings(&id),
                    environment(&clock, rng.random()),
                )
                .unwrap();
                let gate = node::lease::RightsGate::default();
                journal.set_rights_gate(gate.clone());
                SimStore {
                    id,
                    mem,
                    journal,
                    session: None,
                    acked_len: 0,
                    partitioned_until: 0,
                    keys: 0,
                    asks: Tracker::default(),
                    sales: Vec::new(),
                    gate,
                    clock,
                }
            })
            .collect();
        let quiet_at = (config.faults > 0.0 && rng.random_bool(0.5)).then(|| {
            let steps = config.steps as u64;
            let at = rng.random_range(steps / 4..steps / 2 + 1);
            (at, rng.random_range(0..config.stores), rng.random_bool(0.5))
        });
        let mem = Arc::new(MemHubStore::default());
        let clock = now.clone();
        let mut ingest =
            Ingest::open(mem.clone(), Box::new(move || clock.load(Ordering::Relaxed))).unwrap();
        ingest.set_fence_rule(SIM_FENCE);
        // Headquarters' catalogue, which every store takes from the feed before it can stock.
        let products = (0..SKUS)
            .map(|i| CatalogueChange::Product(sim_product(i)))
            .collect();
        ingest
            .change_catalogue(products, &StaffId::system())
            .unwrap();
        ingest.flush().unwrap();
        let hub = SimHub {
            mem,
            ingest,
            durable_feed_len: 0,
            pending_acks: Vec::new(),
            new_links: Vec::new(),
            asks: AskQueue::new(Limits::HUB),
            answers: Vec::new(),
        };
        Self {
            rng,
            now,
            config,
            stores,
            hub,
            links: BTreeMap::new(),
            next_link: 0,
            trace: Vec::new(),
            bookings: Vec::new(),
            quiet_at,
            quiet: None,
            stock_bookings: Vec::new(),
            redemptions: Vec::new(),
            item_sales: Vec::new(),
            item_returns: Vec::new(),
            violation: None,
            steps_run: 0,
            wallet_ops: WalletCounts::default(),
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng
            .random_bool((p * self.config.faults).clamp(0.0, 1.0))
    }

    /// Runs the workload with faults, then heals and runs until quiet.
    pub fn run(&mut self) {
        for _ in 0..self.config.steps {
            self.step(true);
        }
        self.config.faults = 0.0;
        if let Some(q) = self.quiet.as_mut() {
            q.back_len = Some(self.stores[q.store].journal.tip().next_seq - 1);
        }
        for s in &mut self.stores {
            // The quiet store comes back: it hears headquarters again (its lease starts over)
            // and everything it wrote is taken in, fenced or not.
            s.partitioned_until = 0;
            s.gate.set_shut(false);
        }
        for _ in 0..20_000 {
            self.step(false);
            if self.quiet() {
                return;
            }
        }
        panic!("the chain did not settle after healing");
    }

    fn step(&mut self, workload: bool) {
        let now = self
            .now
            .fetch_add(self.rng.random_range(1..40), Ordering::Relaxed);
        self.faults(now);
        if workload
            && let Some((at, i, honours_lease)) = self.quiet_at
            && at == self.steps_run
        {
            self.stores[i].partitioned_until = u64::MAX;
            self.drop_session(i, "gone quiet");
            self.quiet = Some(Quiet {
                store: i,
                since: now,
                honours_lease,
                fenced_at: None,
                lease_out_len: None,
                back_len: None,
            });
        }
        if let Some(q) = self.quiet
            && q.honours_lease
            && workload
        {
            // The store's lease task, checked against the clock its entries will carry.
            let at = self.now.load(Ordering::Relaxed);
            let shut = protocol::lease::expired(SIM_FENCE.lease_ms, q.since, at);
            let s = &self.stores[q.store];
            s.gate.set_shut(shut);
            if shut && q.lease_out_len.is_none() {
                let len = s.journal.tip().next_seq - 1;
                if let Some(q) = self.quiet.as_mut() {
                    q.lease_out_len = Some(len);
                }
            }
        }
        self.hold_quiet_store(now);
        if workload && self.rng.random_bool(0.01) {
            self.erase_a_member();
        }
        if workload {
            for _ in 0..self.rng.random_range(0..4) {
                let i = self.rng.random_range(0..self.stores.len());
                self.work(i);
            }
        }
        for i in 0..self.stores.len() {
            self.flush_store(i);
        }
        self.deliver_to_hub(now);
        self.reap_gone_links();
        self.hub_flush(now);
        self.deliver_to_stores(now);
        for i in 0..self.stores.len() {
            self.uplink(i, now);
        }
        self.steps_run += 1;
        if self.steps_run.is_multiple_of(25) && self.violation.is_none() {
            self.violation = self.audit_all().err();
        }
    }

    /// 被遗忘: headquarters erases a member it knows, when nothing is owed either way (else it
    /// refuses, and nothing changes). Their entries still in flight must then be skipped
    /// everywhere, and nothing of them may come back (`check`).
    fn erase_a_member(&mut self) {
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

    /// The operator's side of a store gone quiet: keep it on hold (a zombie connection's last
    /// batch voids a hold) until headquarters fences it; a hold shorter than the store's lease
    /// is refused, and the operator holds it as long as they are told to.
    fn hold_quiet_store(&mut self, now: u64) {
        let Some(Quiet {
            store: i,
            fenced_at: None,
            ..
        }) = self.quiet
        else {
            return;
        };
        let id = self.stores[i].id.clone();
        let fence = self
            .hub
            .mem
            .fences()
            .unwrap()
            .into_iter()
            .find(|(s, _)| *s == id);
        let mut until = now + 300;
        match fence {
            Some((_, hub::storage::Fence::Fenced { at_seq, .. })) => {
                if let Some(q) = self.quiet.as_mut() {
                    q.fenced_at = Some(at_seq);
                }
                self.trace.push(format!("{id} fenced at seq {at_seq}"));
            }
            Some(_) => {}
            None => loop {
                match self.hub.ingest.hold(&id, until, "hq-sim", "gone quiet") {
                    Ok(_) => self.trace.push(format!("{id} on hold until {until}")),
                    Err(hub::ingest::HoldError::TooSoon { earliest_ms, .. })
                        if until < earliest_ms =>
                    {
                        until = earliest_ms;
                        continue;
                    }
                    Err(hub::ingest::HoldError::UnknownStore(_)) => {
                        // It never synced: nothing of it is anywhere; nothing to take back.
                        self.quiet = None;
                        self.stores[i].partitioned_until = now;
                    }
                    Err(e) => self.trace.push(format!("hold on {id} refused: {e}")),
                }
                break;
            },
        }
    }

    /// The fenced store and the seq its log was fenced at, if a store has been fenced.
    fn fenced(&self) -> Option<(usize, u64)> {
        self.quiet.and_then(|q| q.fenced_at.map(|at| (q.store, at)))
    }

    /// The bank's audit across every replica: each copy of each wallet is sound, and so is
    /// the merge of all copies (two replicas spending the same rights would show there, and
    /// may only where a fenced store spent, before it heard of its fence, rights headquarters
    /// had taken back: never more than was taken).
    fn audit_all(&self) -> Result<(), String> {
        let mut merged: BTreeMap<MemberId, Wallet> = BTreeMap::new();
        let mut copies: Vec<(String, MemberId, Wallet)> = self
            .hub
            .mem
            .wallets()
            .unwrap()
            .into_iter()
            .map(|(m, w)| ("HQ".to_owned(), m, w))
            .collect();
        for s in &self.stores {
            copies.extend(
                wallets(&s.mem)
                    .into_iter()
                    .map(|(m, w)| (s.id.to_string(), m, w)),
            );
        }
        for (at, member, wallet) in copies {
            wallet
                .audit()
                .map_err(|e| format!("{member}'s wallet at {at}: {e}"))?;
            merged.entry(member).or_default().merge(&wallet);
        }

        let rules = settings(&self.stores[0].id).wallet;
        let mut lent: BTreeMap<StoreId, u64> = BTreeMap::new();
        for (member, wallet) in merged {
            wallet
                .audit()
                .map_err(|e| format!("{member}'s wallet merged from every replica: {e}"))?;

            // Below zero only by a recorded overdraft, within the caps.
            for store in wallet.owed.keys() {
                let owed = wallet.owed_at(store);
                if owed > rules.overdraft_member.0 as u64 {
                    return Err(format!("{member} owes {store} {owed}, over the cap"));
                }
                *lent.entry(store.clone()).or_default() += owed;
            }
        }
        match lent
            .iter()
            .find(|(_, owed)| **owed > rules.overdraft_store.0 as u64)
        {
            Some((store, owed)) => Err(format!("members owe {store} {owed}, over its cap")),
            None => Ok(()),
        }
    }

    fn faults(&mut self, now: u64) {
        for i in 0..self.stores.len() {
            if self.chance(0.002) {
                self.crash_store(i);
            }
            if self.chance(0.01) {
                self.drop_session(i, "connection cut");
            }
            if self.chance(0.003) {
                // Never shortens a longer partition (the quiet store's lasts to the end).
                let until = now + self.rng.random_range(100..5_000);
                let s = &mut self.stores[i];
                s.partitioned_until = s.partitioned_until.max(until);
                self.drop_session(i, "partitioned");
            }
        }
        if self.chance(0.002) {
            self.crash_hub();
        }
    }

    fn crash_store(&mut self, i: usize) {
        let seed = self.rng.random();
        let s = &mut self.stores[i];
        s.mem.crash();
        s.journal =
            Journal::open(s.mem.clone(), settings(&s.id), environment(&s.clock, seed)).unwrap();
        s.journal.set_rights_gate(s.gate.clone());
        let len = s.journal.tip().next_seq - 1;
        assert!(
            len >= s.acked_len,
            "{} lost acknowledged entries in a crash ({len} < {})",
            s.id,
            s.acked_len
        );
        s.asks = Tracker::default();
        self.trace.push(format!("crash {} at log {len}", s.id));
        self.drop_session(i, "store crashed");
    }

    fn crash_hub(&mut self) {
        self.hub.mem.crash();
        let clock = self.now.clone();
        self.hub.ingest = Ingest::open(
            self.hub.mem.clone(),
            Box::new(move || clock.load(Ordering::Relaxed)),
        )
        .unwrap();
        self.hub.ingest.set_fence_rule(SIM_FENCE);
        self.hub.pending_acks.clear();
        self.hub.new_links.clear();
        self.hub.asks.clear();
        self.hub.answers.clear();
        self.links.clear();
        for s in &mut self.stores {
            s.session = None;
        }
        self.trace.push("crash hub".into());
    }

    /// The store lets go of its connection; sometimes the hub keeps receiving from it a while.
    fn drop_session(&mut self, i: usize, why: &str) {
        if let Some((link, _)) = self.stores[i].session.take() {
            let zombie = self.rng.random_bool(0.5);
            if let Some(l) = self.links.get_mut(&link) {
                l.store_gone = true;
                l.to_store.clear();
                if !zombie {
                    l.to_hub.clear();
                }
            }
            self.trace.push(format!(
                "{} drops link {link}: {why}{}",
                self.stores[i].id,
                if zombie { " (zombie)" } else { "" }
            ));
        }
    }

    fn key(&mut self, i: usize) -> TxId {
        let s = &mut self.stores[i];
        s.keys += 1;
        TxId::parse(&format!("{}-key-{:08}", s.id, s.keys)).unwrap()
    }

    fn work(&mut self, i: usize) {
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
            self.send_spend(i, Spend::ItemReturn(request(&key, body), member), true);
            return;
        }
        if roll == 20 || roll == 21 {
            self.move_stock(i, roll == 20);
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
            if member_id.is_some() && self.rng.random_bool(0.6) {
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
                coupon,
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
                let command = Command::EditMember(request(&key, MemberEdit { member_id, patch }));
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
    fn move_stock(&mut self, i: usize, receive: bool) {
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

    /// Sends a request that may spend; when its rights are elsewhere and the store is online,
    /// asks headquarters (the first time) and keeps it to send again.
    fn send_spend(&mut self, i: usize, spend: Spend, may_ask: bool) {
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
                    return;
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
                } else {
                    self.wallet_ops.asks += 1;
                }
            }
            Err(Rejection::Wallet(WalletError::Insufficient { .. })) => {
                self.wallet_ops.refused_insufficient += 1;
            }
            Err(_) => {}
        }
    }

    /// Books an acknowledged operation in the bank's own ledger.
    fn expect(&mut self, i: usize, spend: &Spend, outcome: &Outcome) {
        let cents = |m: &Money| i128::from(m.to_fen().unwrap().0);
        let (member, delta) = match (spend, outcome) {
            (Spend::Return(_, Some(member)), Outcome::Sale { sale, .. }) => {
                let mut d = Expected {
                    points: -i128::from(sale.sale.points_earned.0),
                    ..Expected::default()
                };
                let protocol::Payload::Return { refund, .. } = self.last_entry(i).payload else {
                    panic!("the last entry is not a return");
                };
                if let Tender::StoredValue {
                    principal,
                    bonus,
                    overdraft,
                } = refund
                {
                    d.principal += i128::from(principal.0);
                    d.bonus += i128::from(bonus.0);
                    d.owed -= i128::from(overdraft.0);
                }
                (*member, d)
            }
            (Spend::ItemReturn(_, member), Outcome::ItemSale { .. }) => {
                let entry = self.last_entry(i);
                let protocol::Payload::ItemReturn { ret, .. } = entry.payload else {
                    panic!("the last entry is not an item return");
                };
                let mut d = Expected {
                    points: i128::from(ret.points_back) - i128::from(ret.points_taken),
                    ..Expected::default()
                };
                for refund in &ret.refunds {
                    if let Tender::StoredValue {
                        principal, bonus, ..
                    } = refund
                    {
                        d.principal += i128::from(principal.0);
                        d.bonus += i128::from(bonus.0);
                    }
                }
                for l in &ret.lines {
                    self.stock_bookings
                        .push((i, entry.seq, l.sku.clone(), l.qty.0));
                    let back = (i, entry.seq, ret.sale_id.clone(), l.line, l.qty.0);
                    self.item_returns.push(back);
                }
                if let Some(coupon) = ret.coupon_back {
                    self.redemptions.push((i, entry.seq, *member, coupon, -1));
                }
                self.wallet_ops.item_returns += 1;
                if !ret.sale_id.as_str().starts_with(entry.origin.as_str()) {
                    self.wallet_ops.item_returns_elsewhere += 1;
                }
                (*member, d)
            }
            (Spend::Items(r), Outcome::ItemSale { sale, .. }) => {
                let seq = self.stores[i].journal.tip().next_seq - 1;
                for line in &sale.sale.lines {
                    let booking = (i, seq, line.sku.clone(), -line.qty.0);
                    self.stock_bookings.push(booking);
                }
                let Some(member) = r.body.member_id else {
                    return;
                };
                let mut d = Expected {
                    points: i128::from(sale.sale.points_earned.0)
                        - i128::from(sale.sale.points_used),
                    ..Expected::default()
                };
                for tender in &sale.sale.tenders {
                    if let Tender::StoredValue {
                        principal, bonus, ..
                    } = tender
                    {
                        d.principal -= i128::from(principal.0);
                        d.bonus -= i128::from(bonus.0);
                    }
                }
                self.wallet_ops.item_sales += 1;
                let sold = sale.sale.lines.iter().map(|l| l.qty.0).collect();
                self.item_sales
                    .push((sale.sale.sale_id.clone(), member, sold));
                if let Some(coupon) = &sale.sale.coupon {
                    self.wallet_ops.coupons_redeemed += 1;
                    self.redemptions.push((i, seq, member, coupon.clone(), 1));
                }
                (member, d)
            }
            (Spend::Checkout(r), Outcome::Sale { sale, .. }) => {
                let Some(member) = r.body.member_id else {
                    return;
                };
                let mut d = Expected {
                    points: i128::from(sale.sale.points_earned.0),
                    ..Expected::default()
                };
                if let Tender::StoredValue {
                    principal,
                    bonus,
                    overdraft,
                } = sale.sale.tender
                {
                    d.principal -= i128::from(principal.0);
                    d.bonus -= i128::from(bonus.0);
                    d.owed += i128::from(overdraft.0);
                    if overdraft.0 > 0 {
                        self.wallet_ops.overdrafts += 1;
                    }
                }
                (member, d)
            }
            (Spend::Wallet(r), Outcome::Wallet { .. }) => {
                let d = match &r.body.action {
                    WalletAction::TopUp { paid, rule } => Expected {
                        principal: cents(paid),
                        bonus: if rule.is_some() { 3_000 } else { 0 },
                        ..Expected::default()
                    },
                    WalletAction::AdjustPoints { points, .. } => Expected {
                        points: i128::from(*points),
                        ..Expected::default()
                    },
                    WalletAction::Refund { principal, .. } => {
                        let protocol::Payload::Wallet {
                            event:
                                WalletEvent::Refunded {
                                    bonus_forfeited, ..
                                },
                            ..
                        } = self.last_entry(i).payload
                        else {
                            panic!("the last entry is not a refund");
                        };
                        Expected {
                            principal: -cents(principal),
                            bonus: -i128::from(bonus_forfeited.0),
                            ..Expected::default()
                        }
                    }
                    WalletAction::CollectOverdraft => self.collected(i),
                    _ => Expected::default(),
                };
                (r.body.member_id, d)
            }
            _ => return,
        };
        self.wallet_ops.applied += 1;
        let seq = self.stores[i].journal.tip().next_seq - 1;
        self.bookings.push((i, seq, member, delta));
    }

    /// What the acknowledged operations add up to per member, a fenced store's included.
    fn expected(&self) -> BTreeMap<MemberId, Expected> {
        let mut expected: BTreeMap<MemberId, Expected> = BTreeMap::new();
        for (_, _, member, delta) in &self.bookings {
            let e = expected.entry(*member).or_default();
            e.principal += delta.principal;
            e.bonus += delta.bonus;
            e.points += delta.points;
            e.owed += delta.owed;
        }
        expected
    }

    /// What a collection just did, read back from the entry it wrote (the split between
    /// principal and bonus is the journal's to choose).
    /// The last entry store `i` wrote (flushed).
    fn last_entry(&self, i: usize) -> protocol::Entry {
        let s = &self.stores[i];
        let (_, bytes) = s
            .mem
            .scan_prefix_rev(&keys::log_prefix(&s.id), 1)
            .unwrap()
            .pop()
            .unwrap();
        protocol::Entry::decode(&bytes).unwrap()
    }

    fn collected(&self, i: usize) -> Expected {
        let entry = self.last_entry(i);
        let protocol::Payload::Wallet {
            event: WalletEvent::OverdraftCollected { amount },
            ops,
            ..
        } = entry.payload
        else {
            panic!("the last entry is not a collection");
        };
        let mut d = Expected {
            owed: -i128::from(amount.0),
            ..Expected::default()
        };
        for op in ops {
            let units = i128::from(op.change.units());
            match op.counter {
                Counter::Principal => d.principal -= units,
                Counter::Bonus => d.bonus -= units,
                _ => {}
            }
        }
        d
    }

    /// The writing store's copy of the member's wallet, audited right after the write.
    fn audit_one(&mut self, i: usize, member: &MemberId) {
        if self.violation.is_some() {
            return;
        }
        let s = &self.stores[i];
        let wallet = views::Views::new(s.mem.clone()).wallet(member).unwrap();
        if let Err(e) = wallet.audit() {
            self.violation = Some(format!("{member}'s wallet at {}: {e}", s.id));
        }
    }

    fn flush_store(&mut self, i: usize) {
        let s = &mut self.stores[i];
        s.journal.flush().unwrap();
        s.acked_len = s.journal.tip().next_seq - 1;
    }

    fn deliver_to_hub(&mut self, now: u64) {
        let link_ids: Vec<usize> = self.links.keys().copied().collect();
        let mem = self.hub.mem.clone();
        for id in link_ids {
            while let Some(link) = self.links.get_mut(&id) {
                // Not yet accepted (the hub welcomes new links at its next flush): wait.
                if link.hub.is_none() || link.to_hub.front().is_none_or(|(at, _)| *at > now) {
                    break;
                }
                let (_, msg) = link.to_hub.pop_front().unwrap();
                let session = link.hub.as_mut().unwrap();
                let known = |m: &MemberId, p: &[u8; 8]| hub::ingest::known_change(&*mem, m, p);
                let handled = session
                    .thicken(msg, known)
                    .and_then(|msg| session.handle(msg));
                if let Err(e) = handled {
                    self.trace.push(format!("hub closes link {id}: {e}"));
                    self.close_link(id);
                    break;
                }
                self.hub_events(id);
            }
        }
    }

    fn hub_events(&mut self, id: usize) {
        while let Some(event) = self
            .links
            .get_mut(&id)
            .and_then(|l| l.hub.as_mut())
            .and_then(HubSession::poll_event)
        {
            let store = self.stores[self.links[&id].store].id.clone();
            match event {
                HubEvent::Hello { feed_applied, .. } => {
                    let link = self.links.get_mut(&id).unwrap();
                    link.feed_sent = Some(feed_applied);
                    if let Some(session) = link.hub.as_mut() {
                        session.clock(self.now.load(Ordering::Relaxed));
                    }
                }
                HubEvent::Clock { store_ms } => {
                    let off = store_ms as i64 - self.now.load(Ordering::Relaxed) as i64;
                    self.hub.ingest.clock(&store, off);
                }
                HubEvent::Persist {
                    entries,
                    log_len,
                    keys,
                } => match self.hub.ingest.ingest_keyed(&store, entries, log_len, keys) {
                    Ok(seq) => self.hub.pending_acks.push((id, seq)),
                    Err(e) => {
                        self.trace.push(format!("ingest refuses link {id}: {e}"));
                        self.close_link(id);
                        return;
                    }
                },
                HubEvent::Ask(ask) => {
                    let now = self.now.load(Ordering::Relaxed);
                    if let Some(refused) = self.hub.asks.offer(store, ask, id, now) {
                        self.hub.answers.push(refused);
                    }
                }
            }
        }
    }

    /// A connection whose store let go of it ends at the hub once its last message is in (as
    /// QUIC's idle timeout ends it): headquarters then knows the link is lost.
    fn reap_gone_links(&mut self) {
        let gone: Vec<usize> = self
            .links
            .iter()
            .filter(|(_, l)| l.store_gone && l.to_hub.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.close_link(id);
        }
    }

    fn close_link(&mut self, id: usize) {
        if let Some(link) = self.links.remove(&id) {
            if link.hub.is_some() {
                self.hub.ingest.link(&self.stores[link.store].id, false);
            }
            let s = &mut self.stores[link.store];
            if s.session.as_ref().is_some_and(|(l, _)| *l == id) {
                s.session = None;
            }
        }
    }

    /// Serves asks for rights with the ingest thread's own queue and bank, then rebalances:
    /// recalls go to the holders through their current links.
    fn serve_asks(&mut self, now: u64) {
        let links = &self.links;
        let ingest = &mut self.hub.ingest;
        let served = self.hub.asks.serve(
            now,
            |link| !links.contains_key(link),
            |store, ask, may_recall| ingest.serve_ask(store, ask, may_recall).unwrap(),
        );
        let mut recalls = served.recalls;
        recalls.extend(self.hub.ingest.rebalance().unwrap());
        for (holder, recall) in recalls {
            let at = self.stores.iter().position(|s| s.id == holder).unwrap();
            let holder_link = self.stores[at].session.as_ref().map(|(l, _)| *l);
            if let Some(session) = holder_link
                .and_then(|l| self.links.get_mut(&l))
                .and_then(|l| l.hub.as_mut())
            {
                session.recall(recall);
            }
        }
        self.hub.answers.extend(served.answers);
    }

    /// The hub's group commit: flush, then acknowledge, welcome new links, and stream the feed.
    fn hub_flush(&mut self, now: u64) {
        self.hub.ingest.post_due_holds().unwrap();
        self.serve_asks(now);
        self.hub.ingest.flush().unwrap();
        for (link, id, answer) in std::mem::take(&mut self.hub.answers) {
            if let Some(session) = self.links.get_mut(&link).and_then(|l| l.hub.as_mut()) {
                session.answer(id, answer);
            }
        }
        self.hub.durable_feed_len = self.hub.ingest.feed_len();
        for (id, seq) in std::mem::take(&mut self.hub.pending_acks) {
            if let Some(session) = self.links.get_mut(&id).and_then(|l| l.hub.as_mut()) {
                session.persisted(seq);
            }
        }
        for id in std::mem::take(&mut self.hub.new_links) {
            let Some(link) = self.links.get_mut(&id) else {
                continue;
            };
            let store = self.stores[link.store].id.clone();
            // A fenced store's session is taken like any other.
            let tip = self.hub.ingest.open_session(&store).unwrap();
            self.hub.ingest.link(&store, true);
            link.hub = Some(HubSession::new(store, tip));
        }
        let ids: Vec<usize> = self.links.keys().copied().collect();
        for id in ids {
            self.stream_feed(id);
            let delay = self.rng.random_range(0..30);
            let link = self.links.get_mut(&id).unwrap();
            let Some(session) = link.hub.as_mut() else {
                continue;
            };
            while let Some(msg) = session.poll_transmit() {
                if !link.store_gone {
                    let at = link.to_store.back().map_or(0, |(t, _)| *t).max(now + delay);
                    link.to_store.push_back((at, msg));
                }
            }
        }
    }

    fn stream_feed(&mut self, id: usize) {
        let durable = self.hub.durable_feed_len;
        let link = self.links.get_mut(&id).unwrap();
        let (Some(sent), Some(session)) = (link.feed_sent, link.hub.as_mut()) else {
            return;
        };
        if durable <= sent {
            return;
        }
        let store = &self.stores[link.store].id;
        let records = self
            .hub
            .mem
            .feed(sent + 1, 64.min((durable - sent) as usize))
            .unwrap();
        let upto = records.last().map_or(sent, |(p, _)| *p);
        let items: Vec<FeedItem> = records
            .into_iter()
            .filter(|(_, r)| &r.origin != store)
            .map(|(position, r)| FeedItem {
                position,
                entry: r.entry,
            })
            .collect();
        let keys = hub::server::feed_keys(&*self.hub.mem, &items).unwrap();
        session.feed(upto, items, keys);
        link.feed_sent = Some(upto);
    }

    fn deliver_to_stores(&mut self, now: u64) {
        for i in 0..self.stores.len() {
            while let Some((id, _)) = &self.stores[i].session {
                let id = *id;
                let Some(link) = self.links.get_mut(&id) else {
                    break;
                };
                if link.to_store.front().is_none_or(|(at, _)| *at > now) {
                    break;
                }
                let (_, msg) = link.to_store.pop_front().unwrap();
                let s = &mut self.stores[i];
                let (_, session) = s.session.as_mut().unwrap();
                if let Err(e) = session.handle(msg) {
                    self.trace.push(format!("{} closes link {id}: {e}", s.id));
                    self.close_link(id);
                    break;
                }
                let mut events = Vec::new();
                while let Some(event) = session.poll_event() {
                    events.push(event);
                }
                for event in events {
                    self.store_event(i, event);
                }
            }
            self.retry_granted(i);
            self.flush_store(i);
        }
    }

    fn store_event(&mut self, i: usize, event: UplinkEvent) {
        let s = &mut self.stores[i];
        match event {
            UplinkEvent::Acked(_) => {}
            UplinkEvent::Clock { hub_ms } => {
                let pc = s.clock.pc_ms();
                s.clock.heard_hub(hub_ms, pc);
                if let Some((_, session)) = s.session.as_mut() {
                    session.clock(pc);
                }
            }
            UplinkEvent::Feed { upto, items, keys } => {
                s.journal.apply_feed(upto, items, keys).unwrap();
            }
            UplinkEvent::Answer { id, answer } => {
                let refused = s.asks.answer(&id, &answer);
                match &answer {
                    AskAnswer::Granted { .. } => self.wallet_ops.granted += 1,
                    AskAnswer::Refused { reason } => {
                        self.trace
                            .push(format!("{} ask {id} refused: {reason}", s.id));
                    }
                    AskAnswer::Unreachable { holders } => {
                        self.wallet_ops.unreachable += 1;
                        self.trace
                            .push(format!("{} ask {id}: holders away {holders:?}", s.id));
                        // The holders are out of reach: the chain's overdraft policy decides,
                        // as the till's quick checkout does.
                        for spend in refused {
                            if let Spend::Checkout(mut r) = spend
                                && !r.body.offline_overdraft
                            {
                                r.body.offline_overdraft = true;
                                self.send_spend(i, Spend::Checkout(r), false);
                            }
                        }
                    }
                }
            }
            UplinkEvent::Recall(recall) => {
                let action = WalletAction::Recall {
                    counter: recall.counter,
                    units: recall.units,
                };
                let body = WalletRequest {
                    member_id: recall.member,
                    action,
                };
                let _ = s.journal.handle(Command::Wallet(request(&recall.id, body)));
            }
        }
    }

    /// Sends again the spends whose granted rights have arrived with the feed.
    fn retry_granted(&mut self, i: usize) {
        let applied = views::Views::new(self.stores[i].mem.clone())
            .feed_applied()
            .unwrap();
        for spend in self.stores[i].asks.due(applied) {
            self.send_spend(i, spend, false);
        }
    }

    fn uplink(&mut self, i: usize, now: u64) {
        if self.stores[i].session.is_none() {
            if now < self.stores[i].partitioned_until || self.rng.random_bool(0.7) {
                return;
            }
            self.connect(i);
        }
        let delay = self.rng.random_range(0..30);
        let s = &mut self.stores[i];
        let (id, session) = s.session.as_mut().unwrap();
        session.log_grew(s.acked_len);
        while let Some(range) = session.poll_push() {
            let entries: Vec<Vec<u8>> = range
                .map(|seq| s.mem.get(&keys::log(&s.id, seq)).unwrap().unwrap())
                .collect();
            let member_keys = node::uplink::member_keys(&*s.mem, &entries).unwrap();
            session.push(entries, member_keys);
        }
        let link = self.links.get_mut(id).unwrap();
        while let Some(msg) = session.poll_transmit() {
            let at = link.to_hub.back().map_or(0, |(t, _)| *t).max(now + delay);
            link.to_hub.push_back((at, msg));
        }
    }

    fn connect(&mut self, i: usize) {
        let id = self.next_link;
        self.next_link += 1;
        let s = &mut self.stores[i];
        s.asks.link_lost();
        let feed_applied = views::Views::new(s.mem.clone()).feed_applied().unwrap();
        s.session = Some((
            id,
            UplinkSession::new(s.id.clone(), s.acked_len, feed_applied),
        ));
        let link = Link {
            store: i,
            to_hub: VecDeque::new(),
            to_store: VecDeque::new(),
            store_gone: false,
            hub: None,
            feed_sent: None,
        };
        self.links.insert(id, link);
        self.hub.new_links.push(id);
    }

    fn quiet(&self) -> bool {
        let feed_len = self.hub.durable_feed_len;
        self.stores.iter().all(|s| {
            let at_hub = self.hub.ingest.tip(&s.id).next_seq - 1 == s.acked_len;
            let fed = views::Views::new(s.mem.clone()).feed_applied().unwrap() == feed_len;
            at_hub && fed && s.session.is_some()
        }) && self
            .links
            .values()
            .all(|l| l.to_hub.is_empty() && l.to_store.is_empty())
    }

    /// The checks that make a run pass: every store's log is at the hub exactly once and byte
    /// for byte, every store has the same member directory, and every store's views equal a
    /// rebuild of its log and feed.
    pub fn check(&self) -> Result<SimReport, String> {
        let mut report = SimReport::default();
        let mut directories = Vec::new();
        let fenced = self.fenced();
        if let Some(Quiet {
            store: i,
            fenced_at: None,
            ..
        }) = self.quiet
        {
            return Err(format!(
                "{} went quiet but was never fenced",
                self.stores[i].id
            ));
        }
        for (i, s) in self.stores.iter().enumerate() {
            let own: Vec<Vec<u8>> = s
                .mem
                .scan_prefix(&keys::log_prefix(&s.id))
                .unwrap()
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            let held = self.hub.mem.entries(&s.id, 1, usize::MAX).unwrap();
            if own != held {
                return Err(format!(
                    "{}: the hub holds {} entries, the store wrote {} (or they differ)",
                    s.id,
                    held.len(),
                    own.len()
                ));
            }
            let rebuilt = views::rebuild(&*s.mem, &protocol::calendar::StoreCalendar::default())
                .map_err(|e| format!("{}: rebuild failed: {e}", s.id))?;
            if !rebuilt.is_clean() {
                return Err(format!(
                    "{}: views differ from a rebuild: {rebuilt:?}",
                    s.id
                ));
            }
            // Every store goes by headquarters' time once it has heard it, whatever its PC's.
            let off = s.clock.now_ms().abs_diff(self.now.load(Ordering::Relaxed));
            if off > node::clock::CORRECT_BEYOND_MS as u64 {
                return Err(format!("{}'s clock is {off} ms off headquarters'", s.id));
            }
            report.entries += own.len() as u64;
            if let Some((f, at_seq)) = fenced
                && f == i
            {
                report.taken_after_fence += (own.len() as u64).saturating_sub(at_seq);
                self.check_lease(&own)?;
            }
            directories.push((s.id.clone(), directory(&s.mem)));
        }
        report.fenced = u64::from(fenced.is_some());
        // Erased at headquarters (durably): nothing of them at any store, and no key.
        let erased: Vec<MemberId> = self
            .hub
            .mem
            .wallets()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| self.hub.mem.member_key(id).unwrap() == protocol::seal::KeyState::Erased)
            .collect();
        for id in &erased {
            for s in &self.stores {
                let kept = [
                    keys::member(id),
                    keys::document(id),
                    node::sealed::key_of(id),
                ]
                .iter()
                .any(|k| s.mem.get(k).unwrap().is_some());
                if kept || s.mem.get(&node::sealed::erased_key(id)).unwrap().is_none() {
                    return Err(format!("{}: erased member {id} not erased here", s.id));
                }
            }
            if self.hub.mem.member(id).unwrap().is_some() {
                return Err(format!("headquarters still holds erased member {id}"));
            }
        }
        report.erased = erased.len() as u64;
        let (first_id, first) = &directories[0];
        report.members = first.len() as u64;
        for (id, dir) in &directories[1..] {
            let profiles = |d: &Vec<MemberView>| {
                d.iter()
                    .map(|m| (m.member_id, m.profile.clone()))
                    .collect::<Vec<_>>()
            };
            if profiles(dir) != profiles(first) {
                return Err(format!(
                    "member directories differ between {first_id} and {id}"
                ));
            }
        }
        for member in first {
            let at_hq = self
                .hub
                .mem
                .member(&member.member_id)
                .unwrap()
                .map(|r| r.profile);
            if at_hq.as_ref() != Some(&member.profile) {
                return Err(format!(
                    "headquarters' view of {} differs from {first_id}'s",
                    member.member_id
                ));
            }
        }
        if let Some(violation) = &self.violation {
            return Err(format!("the bank's audit during the run: {violation}"));
        }
        self.audit_all()?;
        let at_hq: BTreeMap<MemberId, Wallet> =
            self.hub.mem.wallets().unwrap().into_iter().collect();
        for s in &self.stores {
            let here: BTreeMap<MemberId, Wallet> = wallets(&s.mem).into_iter().collect();
            if here != at_hq {
                return Err(format!("{}'s wallets differ from headquarters'", s.id));
            }
        }
        for (member, expected) in &self.expected() {
            let wallet = at_hq.get(member).cloned().unwrap_or_default();
            // Below zero only where a fenced store spent what headquarters had taken back.
            let points: i128 = wallet
                .counters
                .iter()
                .filter(|(c, _)| matches!(c, Counter::Points { .. }))
                .map(|(_, r)| r.balance_signed())
                .sum();
            let signed = |c: &Counter| wallet.counters.get(c).map_or(0, |r| r.balance_signed());
            let held = Expected {
                principal: signed(&Counter::Principal),
                bonus: signed(&Counter::Bonus),
                points,
                owed: i128::from(wallet.owed_total()),
            };
            if held != *expected {
                return Err(format!(
                    "{member}: the wallet holds {held:?}, the acknowledged operations add up to {expected:?}"
                ));
            }
        }
        report.wallets = at_hq.len() as u64;
        report.stock_moves = self.check_stock()?;
        // A coupon is spent at most once chain-wide, or once more for each time a return gave
        // it back; or once more where a fenced store redeemed it before it heard headquarters
        // had taken it back, which its wallet shows as spent twice (a receivable).
        let mut redeemed: BTreeMap<(MemberId, &str), i64> = BTreeMap::new();
        for (_, _, member, coupon, sign) in &self.redemptions {
            let n = redeemed.entry((*member, coupon.as_str())).or_default();
            *n += sign;
            let overspent = at_hq.get(member).map_or(0, |w| {
                w.counters
                    .iter()
                    .find(
                        |(c, _)| matches!(c, Counter::Uses { card } if card.to_string() == *coupon),
                    )
                    .map_or(0, |(_, r)| r.overspent())
            });
            if *n > 1 + i64::try_from(overspent).unwrap() {
                return Err(format!("{member}'s coupon {coupon} was redeemed twice"));
            }
        }
        // No line of any sale came back more than was sold, wherever it was returned (a
        // fenced store keeps its sales' return tokens: see `Wallet::reclaim`).
        let mut back: BTreeMap<(&SaleId, u16), i64> = BTreeMap::new();
        for (_, _, sale, line, qty) in &self.item_returns {
            *back.entry((sale, *line)).or_default() += qty;
        }
        for (sale, _, sold) in &self.item_sales {
            for (line, sold) in sold.iter().enumerate() {
                let line = u16::try_from(line).unwrap();
                let returned = back.get(&(sale, line)).copied().unwrap_or(0);
                if returned > *sold {
                    return Err(format!(
                        "{sale} line {line}: {sold} sold, {returned} returned"
                    ));
                }
            }
        }
        report.feed = self.hub.durable_feed_len;
        report.store_crashes = self
            .trace
            .iter()
            .filter(|t| t.starts_with("crash S"))
            .count() as u64;
        report.hub_crashes = self
            .trace
            .iter()
            .filter(|t| t.as_str() == "crash hub")
            .count() as u64;
        report.dropped_links = self
            .trace
            .iter()
            .filter(|t| t.contains(" drops link "))
            .count() as u64;
        report.refused = self
            .trace
            .iter()
            .filter(|t| t.contains(" closes link ") || t.contains(" refuses link "))
            .count() as u64;
        Ok(report)
    }
}

const SKUS: usize = 4;

fn sku(i: usize) -> Sku {
    Sku::parse(&format!("P{i}")).unwrap()
}

fn sim_product(i: usize) -> Product {
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

fn on_hand(bytes: Option<Vec<u8>>) -> i64 {
    let (total_in, total_out): (u64, u64) = bytes
        .map(|b| views::decode(b"stk", &b).unwrap())
        .unwrap_or((0, 0));
    protocol::stock::on_hand(total_in, total_out)
}

impl Sim {
    /// Every store's stock, at the store and at headquarters, equals the sum of its
    /// acknowledged movements; chain-wide stock at headquarters is the sum over stores.
    /// Returns the movements counted.
    fn check_stock(&self) -> Result<u64, String> {
        let mut counted = 0;
        for k in 0..SKUS {
            let sku = sku(k);
            let mut chain = 0;
            for (i, s) in self.stores.iter().enumerate() {
                let key = protocol::inventory::keys::stock(&s.id, &sku);
                let sum: i64 = self
                    .stock_bookings
                    .iter()
                    .filter(|(b, _, bsku, _)| *b == i && *bsku == sku)
                    .map(|(_, _, _, q)| q)
                    .sum();
                let here = on_hand(s.mem.get(&key).unwrap());
                let at_hq = on_hand(self.hub.mem.view(&key).unwrap());
                if here != sum || at_hq != sum {
                    return Err(format!(
                        "{} {sku}: the store holds {here}, headquarters {at_hq}; its movements add up to {sum}",
                        s.id
                    ));
                }
                chain += at_hq;
            }
            let mut ledger = 0;
            for (_, _, bsku, q) in &self.stock_bookings {
                if *bsku == sku {
                    ledger += q;
                    counted += 1;
                }
            }
            if chain != ledger {
                return Err(format!("{sku}: chain-wide {chain}, movements {ledger}"));
            }
        }
        Ok(counted)
    }

    /// A quiet store that honours its lease spent no member rights once the lease had run
    /// out (counted from when it lost its link), until it came back: none of the entries it
    /// wrote in between debits a right or hands one to another store.
    fn check_lease(&self, log: &[Vec<u8>]) -> Result<(), String> {
        let Some(q) = self.quiet.filter(|q| q.honours_lease) else {
            return Ok(());
        };
        let (Some(from), back) = (q.lease_out_len, q.back_len.unwrap_or(u64::MAX)) else {
            return Ok(());
        };
        for bytes in log {
            let entry = protocol::Entry::decode(bytes).unwrap();
            if entry.seq <= from || entry.seq > back {
                continue;
            }
            let spends = entry.payload.rights_ops().is_some_and(|(_, ops)| {
                // Handing rights back to headquarters is allowed, spending them is not (a
                // sale's return token is its holder's alone, never taken back).
                ops.iter().any(|op| match &op.change {
                    _ if matches!(op.counter, Counter::Returnable { .. }) => false,
                    protocol::escrow::Change::Debit { .. } => true,
                    protocol::escrow::Change::Transfer { to, .. } => *to != StoreId::hq(),
                    _ => false,
                })
            });
            if spends {
                return Err(format!(
                    "{} spent member rights in entry {} ({:?}), after its lease ran out at entry {from}",
                    entry.origin, entry.seq, entry.payload
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SimReport {
    pub entries: u64,
    pub members: u64,
    pub feed: u64,
    pub store_crashes: u64,
    pub hub_crashes: u64,
    pub dropped_links: u64,
    /// Sessions one end closed on a protocol error (a stale connection's gap, say).
    pub refused: u64,
    pub wallets: u64,
    /// Stores fenced after going quiet, and the entries they wrote after the fence (all taken
    /// in once they came back).
    pub fenced: u64,
    pub taken_after_fence: u64,
    /// Stock movements acknowledged and found at the store and at headquarters.
    pub stock_moves: u64,
    /// Members with a wallet erased at headquarters (被遗忘), checked gone from every store.
    pub erased: u64,
}

fn request<T>(key: &TxId, body: T) -> Request<T> {
    Request {
        key: key.clone(),
        fingerprint: [1; 32],
        staff: StaffId::system(),
        body,
    }
}

/// Every member a store knows, in id order.
fn directory(mem: &MemStore) -> Vec<MemberView> {
    let store: &dyn node::store::Store = mem;
    member_ids(mem)
        .iter()
        .map(|id| {
            node::sealed::read(store, id, &keys::member(id))
                .unwrap()
                .unwrap()
        })
        .collect()
}

/// Every wallet a store holds, in member order.
fn wallets(mem: &MemStore) -> Vec<(MemberId, Wallet)> {
    mem.scan_prefix(b"w/")
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            let id = MemberId::parse(std::str::from_utf8(&k[2..]).unwrap()).unwrap();
            (id, views::decode(&k, &v).unwrap())
        })
        .collect()
}

/// Every member a store knows, by id only (cheap: no profile is decoded).
fn member_ids(mem: &MemStore) -> Vec<MemberId> {
    mem.scan_prefix(b"m/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| MemberId::parse(std::str::from_utf8(&k[2..]).unwrap()).unwrap())
        .collect()
}
