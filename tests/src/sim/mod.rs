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

mod checks;
mod faults;
mod network;
mod oracle;
mod workload;

use faults::SIM_FENCE;
use oracle::Expected;
use workload::{SKUS, Spend, sim_product, sku};

use std::collections::{BTreeMap, HashSet, VecDeque};
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
    Ask, AskAnswer, HubEvent, HubMsg, HubSession, StoreMsg, UplinkEvent, UplinkSession,
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
    /// Members headquarters was told this store follows, in this session (`node::follow`),
    /// and whether this session has read every followed member once (then only those the
    /// journal starts to follow are told, as the uplink does).
    told: HashSet<MemberId>,
    scanned: bool,
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
    /// Asks out for a balance the store had not heard of in full.
    beyond_heard: HashSet<TxId>,
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
    /// Asks for a balance short of what the store had heard of (a top-up elsewhere not yet
    /// in its feed), and how many of them headquarters granted.
    pub asks_beyond_heard: u64,
    pub granted_beyond_heard: u64,
    /// Payments an offline store took partly on overdraft.
    pub overdrafts: u64,
    /// Item sales by members (stored value, points used and earned).
    pub item_sales: u64,
    /// Gifts of the points mall given at the tills (积分兑换: their points spent through the
    /// same rights, and their coupon issued).
    pub gifts: u64,
    /// Coupons redeemed at item sales (each at most once: the audit checks every counter).
    pub coupons_redeemed: u64,
    /// Item returns, at the selling store or another.
    pub item_returns: u64,
    /// Of those, returns at another store than the sale's (its return rights fetched).
    pub item_returns_elsewhere: u64,
    /// Stored-value payments of a member the store had not had whole from headquarters yet:
    /// online they wait for the member's history (here: the cashier tries again later), …
    pub waited_for_history: u64,
    /// … offline they are refused.
    pub refused_not_here: u64,
    /// Members' histories a store received once it followed them.
    pub backfills: u64,
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
                    told: HashSet::new(),
                    scanned: false,
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
        publish_mall(&mut ingest);
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
            beyond_heard: HashSet::new(),
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
    /// Members held at a store as their listing only (会员名录), summed over the stores.
    pub listed: u64,
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

/// Points a gift of the simulated points mall costs.
pub(super) const GIFT_POINTS: u64 = 30;

/// 积分商城: one coupon gift (¥0.50 off from ¥1) for `GIFT_POINTS`, ample stock, at most
/// three per member, published before any store starts.
fn publish_mall(ingest: &mut Ingest) {
    let by = StaffId::system();
    let template = protocol::campaign::CouponTemplate {
        id: "sim-t".into(),
        name: "模拟礼品券".into(),
        offer: protocol::pricing::Coupon::AmountOff {
            threshold: Fen(100),
            off: Fen(50),
        },
        validity: protocol::campaign::Validity::Days { days: 365 },
        scope: Default::default(),
        quota: None,
        per_member: 100,
        stacks: None,
        withdrawn: false,
    };
    ingest
        .publish_marketing(protocol::campaign::MarketingChange::Template(template), &by)
        .unwrap();
    let table = protocol::gifts::GiftTable {
        gifts: vec![protocol::gifts::Gift {
            id: "sim-gift".into(),
            name: "模拟礼品".into(),
            points: GIFT_POINTS,
            kind: protocol::gifts::GiftKind::Coupon {
                template: "sim-t".into(),
            },
            per_member: 3,
            stock: 1_000_000,
            stores: Default::default(),
            withdrawn: false,
        }],
    };
    ingest
        .hq_write(hub::ingest::HqWrite::Gifts(table), &by)
        .unwrap();
}
