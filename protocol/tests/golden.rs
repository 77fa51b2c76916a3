//! Pins version 1 of the entry byte format: a released format is never edited. If this test
//! fails, the change broke every log on disk and every store in the field; add a version instead.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use chrono::NaiveDate;
use protocol::Hlc;
use protocol::catalogue::{Barcode, CatalogueChange, Product, Qty, SpecialPrice, Unit};
use protocol::commission::{CommissionRules, Rate};
use protocol::entry::{ENTRY_VERSION, Entry, EntryHash, Payload};
use protocol::escrow::Change;
use protocol::ids::{DocId, MemberId, SaleId, Sku, StaffId, StoreId, TxId};
use protocol::money::{Currency, Fen};
use protocol::points::Points;
use protocol::pricing::{LineStep, PricedLine, Rounded, Step};
use protocol::returns::{ItemReturn, ReturnedLine};
use protocol::sale::{ItemSale, QuickSale, Tender};
use protocol::staff::{StaffRecord, StaffRole};
use protocol::stock::{StockChange, StockMovement, TransferStep};
use protocol::wallet::{Counter, Movement, RightsOp, WalletEvent};

fn fixture_entries() -> Vec<Entry> {
    let store = StoreId::parse("S001").unwrap();
    let member = MemberId::mint(1_795_451_400_000, 0x0123_4567_89ab_cdef_0123);
    let common = |seq: u64, payload: Payload| Entry {
        origin: store.clone(),
        seq,
        hlc: Hlc {
            wall_ms: 1_795_451_400_000 + seq,
            logical: 2,
        },
        business_date: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
        staff: StaffId::parse("cashier-7").unwrap(),
        tx: TxId::parse(&format!("till-1-{seq:06}")).unwrap(),
        prev_hash: EntryHash([seq as u8; 32]),
        payload,
    };
    vec![
        common(
            1,
            Payload::MemberRegistered {
                member_id: member,
                change: vec![0x85, 0x6f, 0x4a, 0x83],
            },
        ),
        common(
            2,
            Payload::MemberEdited {
                member_id: member,
                change: vec![1, 2, 3],
            },
        ),
        common(
            3,
            Payload::QuickSale(QuickSale {
                sale_id: SaleId::for_entry(&store, 3),
                member_id: Some(member),
                category: Some("饮品".to_owned()),
                amount: Fen(8_880),
                currency: Currency::CNY,
                tender: Tender::Cash {
                    tendered: Fen(10_000),
                    change: Fen(1_120),
                },
                points_earned: Points(88),
            }),
        ),
        // Added with wallets (same version: new kinds go at the end of the enum).
        common(
            4,
            Payload::Sale {
                sale: QuickSale {
                    sale_id: SaleId::for_entry(&store, 4),
                    member_id: Some(member),
                    category: None,
                    amount: Fen(6_000),
                    currency: Currency::CNY,
                    tender: Tender::StoredValue {
                        principal: Fen(5_000),
                        bonus: Fen(1_000),
                        overdraft: Fen(0),
                    },
                    points_earned: Points(60),
                },
                ops: vec![
                    RightsOp {
                        counter: Counter::Principal,
                        change: Change::Debit {
                            units: 5_000,
                            total: 5_000,
                        },
                    },
                    RightsOp {
                        counter: Counter::Points { year: 2026 },
                        change: Change::Credit {
                            units: 60,
                            total: 148,
                        },
                    },
                ],
            },
        ),
        common(
            5,
            Payload::Wallet {
                member_id: member,
                event: WalletEvent::TopUp {
                    paid: Fen(50_000),
                    bonus: Fen(10_000),
                    rule: Some("充500送100".to_owned()),
                    tender: Tender::Cash {
                        tendered: Fen(50_000),
                        change: Fen(0),
                    },
                },
                ops: vec![RightsOp {
                    counter: Counter::Bonus,
                    change: Change::Transfer {
                        to: StoreId::hq(),
                        units: 10_000,
                        total: 10_000,
                    },
                }],
            },
        ),
        common(
            6,
            Payload::Return {
                sale: SaleId::for_entry(&store, 4),
                member_id: Some(member),
                amount: Fen(6_000),
                refund: Tender::StoredValue {
                    principal: Fen(5_000),
                    bonus: Fen(1_000),
                    overdraft: Fen(0),
                },
                reason: "质量问题".to_owned(),
                ops: vec![RightsOp {
                    counter: Counter::Uses {
                        card: SaleId::for_entry(&store, 2),
                    },
                    change: Change::Credit {
                        units: 1,
                        total: 11,
                    },
                }],
            },
        ),
        common(
            7,
            Payload::Wallet {
                member_id: member,
                event: WalletEvent::Rights {
                    movement: Movement::Reclaim {
                        from: StoreId::parse("S002").unwrap(),
                    },
                },
                ops: vec![RightsOp {
                    counter: Counter::Principal,
                    change: Change::Reclaim {
                        from: StoreId::parse("S002").unwrap(),
                        units: 7_000,
                        total: 7_000,
                    },
                }],
            },
        ),
        common(
            8,
            Payload::Catalogue {
                version: 3,
                part: 0,
                parts: 1,
                changes: vec![
                    CatalogueChange::Product(Product {
                        sku: Sku::parse("6901").unwrap(),
                        name: "矿泉水 550ml".to_owned(),
                        barcodes: vec![Barcode::parse("6901234567892").unwrap()],
                        department: "GROCERY".to_owned(),
                        category: "饮品".to_owned(),
                        unit: Unit::Piece,
                        price: Some(Fen(200)),
                        special: Some(SpecialPrice {
                            price: Fen(150),
                            from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                            to: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
                        }),
                        earns_points: true,
                        discountable: false,
                        active: true,
                        low_stock: Some(Qty(12_000)),
                    }),
                    CatalogueChange::StorePrice {
                        store: store.clone(),
                        sku: Sku::parse("6901").unwrap(),
                        price: Some(Fen(180)),
                    },
                ],
            },
        ),
        common(
            9,
            Payload::Stock {
                movement: StockMovement::Received {
                    supplier: "农夫山泉".to_owned(),
                    note: String::new(),
                    costs: vec![(Sku::parse("6901").unwrap(), Fen(90))],
                },
                changes: vec![StockChange {
                    sku: Sku::parse("6901").unwrap(),
                    qty: Qty(24_000),
                    total_in: 48_000,
                    total_out: 3_000,
                }],
            },
        ),
        common(
            10,
            Payload::Transfer {
                transfer: DocId::for_entry("T", &store, 10),
                step: TransferStep::Received {
                    discrepancy: Some("少一箱".to_owned()),
                },
                changes: vec![StockChange {
                    sku: Sku::parse("6901").unwrap(),
                    qty: Qty(11_000),
                    total_in: 59_000,
                    total_out: 3_000,
                }],
            },
        ),
        common(
            11,
            Payload::Checkout {
                sale: ItemSale {
                    sale_id: SaleId::for_entry(&store, 11),
                    member_id: Some(member),
                    lines: vec![PricedLine {
                        sku: Sku::parse("6901").unwrap(),
                        category: "饮品".to_owned(),
                        qty: Qty(3_000),
                        unit_price: Fen(200),
                        gross: Fen(600),
                        steps: vec![LineStep {
                            step: Step::Tier,
                            off: Fen(60),
                            rounded: Rounded::Percent(protocol::Rounding::HalfAwayFromZero),
                            note: "会员 金卡 10%".to_owned(),
                        }],
                        net: Fen(540),
                        discountable: true,
                        earns_points: true,
                    }],
                    subtotal: Fen(600),
                    discount: Fen(60),
                    due: Fen(540),
                    tenders: vec![
                        Tender::WeChat {
                            amount: Fen(100),
                            reference: "4200001234".to_owned(),
                        },
                        Tender::StoredValue {
                            principal: Fen(400),
                            bonus: Fen(40),
                            overdraft: Fen(0),
                        },
                    ],
                    points_used: 0,
                    points_earned: Points(4),
                    coupon: None,
                    served_by: Some(StaffId::parse("stylist-3").unwrap()),
                },
                ops: vec![RightsOp {
                    counter: Counter::Principal,
                    change: Change::Debit {
                        units: 400,
                        total: 1_400,
                    },
                }],
                stock: vec![StockChange {
                    sku: Sku::parse("6901").unwrap(),
                    qty: Qty(-3_000),
                    total_in: 59_000,
                    total_out: 6_000,
                }],
            },
        ),
        common(
            12,
            Payload::Wallet {
                member_id: member,
                event: WalletEvent::CouponIssued {
                    coupon: SaleId::for_entry(&store, 12),
                    name: "满50减10".to_owned(),
                    offer: protocol::pricing::Coupon::AmountOff {
                        threshold: Fen(5_000),
                        off: Fen(1_000),
                    },
                    from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                    to: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
                },
                ops: vec![RightsOp {
                    counter: Counter::Uses {
                        card: SaleId::for_entry(&store, 12),
                    },
                    change: Change::Credit { units: 1, total: 1 },
                }],
            },
        ),
        common(
            13,
            Payload::ItemReturn {
                ret: ItemReturn {
                    sale_id: SaleId::for_entry(&store, 11),
                    member_id: Some(member),
                    lines: vec![ReturnedLine {
                        line: 0,
                        sku: Sku::parse("6901").unwrap(),
                        qty: Qty(1_000),
                        amount: Fen(180),
                        before: Qty(0),
                    }],
                    amount: Fen(180),
                    refunds: vec![
                        Tender::WeChat {
                            amount: Fen(33),
                            reference: "4200001234".to_owned(),
                        },
                        Tender::StoredValue {
                            principal: Fen(134),
                            bonus: Fen(13),
                            overdraft: Fen(0),
                        },
                    ],
                    points_back: 0,
                    points_taken: 1,
                    coupon_back: None,
                    reason: "瓶身破损".to_owned(),
                },
                ops: vec![RightsOp {
                    counter: Counter::Returnable {
                        sale: SaleId::for_entry(&store, 11),
                    },
                    change: Change::Debit { units: 1, total: 1 },
                }],
                stock: vec![StockChange {
                    sku: Sku::parse("6901").unwrap(),
                    qty: Qty(1_000),
                    total_in: 60_000,
                    total_out: 6_000,
                }],
            },
        ),
        common(
            14,
            Payload::Staff {
                staff: vec![StaffRecord {
                    id: StaffId::parse("stylist-3").unwrap(),
                    name: "李师傅".to_owned(),
                    store: Some(store.clone()),
                    role: StaffRole::Cashier,
                    active: true,
                }],
            },
        ),
        common(
            15,
            Payload::CommissionRules {
                rules: CommissionRules {
                    from: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                    categories: [(
                        "烫染".to_owned(),
                        Rate::Percent(rust_decimal::Decimal::new(105, 1)),
                    )]
                    .into(),
                    skus: [(Sku::parse("6901").unwrap(), Rate::Fixed(Fen(50)))].into(),
                    cards: Default::default(),
                    card_default: Some(Rate::Fixed(Fen(500))),
                },
            },
        ),
        common(
            16,
            Payload::Sale {
                sale: QuickSale {
                    sale_id: SaleId::for_entry(&store, 16),
                    member_id: None,
                    category: None,
                    amount: Fen(500),
                    currency: Currency::CNY,
                    tender: Tender::ForeignCash {
                        currency: "USD".parse().unwrap(),
                        amount: 100,
                        rate: rust_decimal::Decimal::new(710, 2),
                        value: Fen(710),
                        change: Fen(210),
                    },
                    points_earned: Points(0),
                },
                ops: Vec::new(),
            },
        ),
        common(
            17,
            Payload::StaffCredentials {
                id: StaffId::parse("stylist-3").unwrap(),
                hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned()),
            },
        ),
        common(
            18,
            Payload::ChainRules {
                rules: protocol::rules::ChainRules {
                    earn: protocol::points::EarnRule {
                        points_per_yuan: rust_decimal::Decimal::new(15, 1),
                        categories: [("烟酒".to_owned(), rust_decimal::Decimal::ZERO)].into(),
                        multipliers: vec![protocol::points::Multiplier {
                            name: "会员日".to_owned(),
                            weekday: Some(chrono::Weekday::Wed),
                            day_of_month: None,
                            factor: rust_decimal::Decimal::TWO,
                        }],
                    },
                    top_up_rules: vec![protocol::wallet::TopUpRule {
                        id: "充1000送200".to_owned(),
                        pay_at_least: Fen(100_000),
                        bonus: Fen(20_000),
                    }],
                    tier_percent_off: [("金卡".to_owned(), rust_decimal::Decimal::TEN)].into(),
                    overdraft_member: Fen(10_000),
                    overdraft_store: Fen(200_000),
                    overdraft_needs_manager: true,
                },
            },
        ),
        common(
            19,
            Payload::Audit {
                note: protocol::audit::Note::HeldVoided {
                    order: DocId::for_entry("H", &store, 4),
                    held_by: StaffId::parse("cashier-7").unwrap(),
                    member_id: Some(member),
                    lines: 3,
                },
            },
        ),
        common(
            20,
            Payload::Audit {
                note: protocol::audit::Note::LateSale {
                    sale: SaleId::for_entry(&store, 19),
                    sold_at: NaiveDate::from_ymd_opt(2026, 11, 22)
                        .unwrap()
                        .and_hms_opt(14, 5, 0)
                        .unwrap(),
                },
            },
        ),
        common(
            21,
            Payload::Audit {
                note: protocol::audit::Note::TierChanged {
                    member_id: member,
                    from: "普通会员".to_owned(),
                    to: "金卡".to_owned(),
                },
            },
        ),
        common(
            22,
            Payload::Wallet {
                member_id: member,
                event: WalletEvent::PasswordFailed,
                ops: Vec::new(),
            },
        ),
        common(
            23,
            Payload::Audit {
                note: protocol::audit::Note::MemberExported { member_id: member },
            },
        ),
        common(24, Payload::MemberErased { member_id: member }),
        // A profile change sealed under the member's key (`protocol::seal`): the sealing is
        // pinned too, since every replica must open what another sealed.
        common(
            25,
            Payload::MemberRegistered {
                member_id: member,
                change: protocol::seal::MemberKey::from_bytes([7; 32]).seal(
                    &protocol::seal::change_aad(&member),
                    &[0x85, 0x6f, 0x4a, 0x83],
                ),
            },
        ),
        common(
            26,
            Payload::Tiers {
                table: protocol::tiers::TierTable {
                    basis: protocol::tiers::Basis::Spend,
                    period_days: 365,
                    tiers: vec![protocol::tiers::Tier {
                        name: "银卡".to_owned(),
                        threshold: 0,
                        percent_off: rust_decimal::Decimal::new(5, 0),
                        points_multiplier: rust_decimal::Decimal::new(15, 1),
                        may_go_down: true,
                    }],
                },
            },
        ),
        common(
            27,
            Payload::Marketing {
                change: protocol::campaign::MarketingChange::Run(protocol::campaign::Run {
                    campaign: "C-WELCOME".to_owned(),
                    run: "2026-11-24".to_owned(),
                    targeted: 10,
                    issued: 8,
                    already: 1,
                    over_limit: 1,
                    over_quota: 0,
                }),
            },
        ),
        common(
            28,
            Payload::Audit {
                note: protocol::audit::Note::TierMoved {
                    member_id: member,
                    from: "普通".to_owned(),
                    to: "银卡".to_owned(),
                    why: protocol::tiers::TierWhy::Review {
                        qualifying: 123_400,
                        basis: protocol::tiers::Basis::Spend,
                        as_of: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
                    },
                },
            },
        ),
        common(
            29,
            Payload::Audit {
                note: protocol::audit::Note::ShiftClosed {
                    shift: protocol::shift::Shift {
                        opened_seq: 3,
                        opened_ms: 1_795_451_400_003,
                        sales: 2,
                        sales_amount: 25_000,
                        returns: 1,
                        returned: 1_000,
                        top_ups: 50_000,
                        cards_sold: 0,
                        refunded_cash: 0,
                        tenders: [(
                            "cash".to_owned(),
                            protocol::shift::TenderTotal {
                                taken: 30_000,
                                times: 2,
                                paid_back: 0,
                                refunds: 0,
                            },
                        )]
                        .into(),
                        cash_expected: 30_000,
                    },
                    counted: Fen(29_950),
                },
            },
        ),
        common(
            30,
            Payload::Audit {
                note: protocol::audit::Note::CardReissued {
                    member_id: member,
                    from: Some(protocol::CardNo::parse("VIP0001").unwrap()),
                    to: protocol::CardNo::parse("VIP0002").unwrap(),
                    check: protocol::audit::IdentityCheck::IdDocument,
                },
            },
        ),
        common(
            31,
            Payload::Audit {
                note: protocol::audit::Note::MembersImported {
                    import: "import-1".to_owned(),
                    imported: 1_000,
                    skipped: 2,
                },
            },
        ),
        common(
            32,
            Payload::Gifts {
                table: protocol::gifts::GiftTable {
                    gifts: vec![protocol::gifts::Gift {
                        id: "cup".to_owned(),
                        name: "保温杯".to_owned(),
                        points: 500,
                        kind: protocol::gifts::GiftKind::Goods {
                            sku: Sku::parse("CUP-1").unwrap(),
                            qty: 1,
                        },
                        per_member: 2,
                        stock: 10,
                        stores: [(StoreId::parse("S002").unwrap(), 0)].into(),
                        withdrawn: false,
                    }],
                },
            },
        ),
        common(
            33,
            Payload::Wallet {
                member_id: member,
                event: WalletEvent::GiftRedeemed {
                    gift: "c10".to_owned(),
                    name: "10元券".to_owned(),
                    points: 100,
                    coupon: Some(protocol::wallet::GiftCoupon {
                        coupon: protocol::wallet::CardId::parse("S001-33").unwrap(),
                        template: "t10".to_owned(),
                        name: "10元代金券".to_owned(),
                        offer: protocol::pricing::Coupon::Voucher {
                            value: Fen(1_000),
                            threshold: Fen(0),
                        },
                        scope: Default::default(),
                        stacks: None,
                        from: NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(),
                        to: NaiveDate::from_ymd_opt(2027, 1, 4).unwrap(),
                    }),
                },
                ops: vec![RightsOp {
                    counter: Counter::Points { year: 2026 },
                    change: Change::Debit {
                        units: 100,
                        total: 100,
                    },
                }],
            },
        ),
        common(
            34,
            Payload::Stock {
                movement: protocol::stock::StockMovement::Gift {
                    member,
                    gift: "cup".to_owned(),
                },
                changes: vec![protocol::stock::StockChange {
                    sku: Sku::parse("CUP-1").unwrap(),
                    qty: protocol::catalogue::Qty(-1_000),
                    total_in: 5_000,
                    total_out: 1_000,
                }],
            },
        ),
        common(
            35,
            Payload::ReferralRules {
                rules: protocol::referral::ReferralRules {
                    level1: protocol::referral::Reward {
                        points: 100,
                        bonus: Fen(500),
                        coupon: Some("T10".to_owned()),
                    },
                    level2: Some(protocol::referral::Reward {
                        points: 20,
                        bonus: Fen(0),
                        coupon: None,
                    }),
                },
            },
        ),
        common(
            36,
            Payload::Wallet {
                member_id: member,
                event: WalletEvent::ReferralReward {
                    referee: MemberId::mint(1_795_451_400_036, 36),
                    level: 1,
                    sale: SaleId::for_entry(&StoreId::parse("S002").unwrap(), 7),
                    points: 100,
                    bonus: Fen(500),
                    coupon: None,
                },
                ops: vec![RightsOp {
                    counter: Counter::Points { year: 2026 },
                    change: Change::Credit {
                        units: 100,
                        total: 100,
                    },
                }],
            },
        ),
        common(
            37,
            Payload::Wallet {
                member_id: member,
                event: WalletEvent::ReferralRevoked {
                    referee: MemberId::mint(1_795_451_400_036, 36),
                    level: 1,
                    points: 60,
                    bonus: Fen(500),
                    coupon: None,
                    kept_points: 40,
                    kept_bonus: Fen(0),
                },
                ops: vec![RightsOp {
                    counter: Counter::Points { year: 2026 },
                    change: Change::Debit {
                        units: 60,
                        total: 60,
                    },
                }],
            },
        ),
        common(
            38,
            Payload::CardRules {
                rules: protocol::card_rules::CardRules {
                    bonus_refund_percent: rust_decimal::Decimal::new(5_000, 2),
                    cards: protocol::card_rules::CardRefund::None,
                    fee_percent: rust_decimal::Decimal::new(5, 0),
                    step_minutes: 15,
                    rounding: protocol::card_rules::StepRounding::Nearest,
                    free_minutes: 10,
                },
            },
        ),
        common(39, closed(member, true)),
        common(40, closed(member, false)),
        common(
            41,
            Payload::StoreCatalogue {
                stores: vec![
                    StoreId::parse("S001").unwrap(),
                    StoreId::parse("S002").unwrap(),
                ],
                version: 7,
                group: 2,
                part: 0,
                parts: 1,
                changes: vec![
                    CatalogueChange::Carried {
                        sku: Sku::parse("A-100").unwrap(),
                        stores: Some(vec![StoreId::parse("S001").unwrap()]),
                    },
                    CatalogueChange::Withdrawn {
                        sku: Sku::parse("A-101").unwrap(),
                    },
                ],
            },
        ),
        common(
            42,
            Payload::MemberListed {
                member_id: member,
                card: vec![0, b'S', b'L', b'1', 9, 8, 7],
            },
        ),
    ]
}

/// A closing of a count card and stored value, as written before the card rules (`false`)
/// and under them.
fn closed(member: MemberId, under_rules: bool) -> Payload {
    let cards = vec![protocol::wallet::CardRefund {
        card: SaleId::parse("S001-5").unwrap(),
        name: "洗车卡".to_owned(),
        refund: Fen(21_000),
        left: 7,
    }];
    let event = if under_rules {
        WalletEvent::ClosedUnderRules {
            closing: protocol::wallet::Closing {
                principal: Fen(10_000),
                bonus_forfeited: Fen(1_000),
                points_forfeited: 300,
                coupons_forfeited: 1,
                cards,
                bonus_refunded: Fen(1_000),
                fee: Fen(1_600),
            },
            reason: "搬家".to_owned(),
        }
    } else {
        WalletEvent::Closed {
            closing: protocol::wallet::ClosingV1 {
                principal: Fen(10_000),
                bonus_forfeited: Fen(2_000),
                points_forfeited: 300,
                coupons_forfeited: 1,
                cards,
            },
            reason: "搬家".to_owned(),
        }
    };
    Payload::Wallet {
        member_id: member,
        event,
        ops: vec![RightsOp {
            counter: Counter::Principal,
            change: Change::Debit {
                units: 10_000,
                total: 10_000,
            },
        }],
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn version_1_bytes_are_stable() {
    assert_eq!(ENTRY_VERSION, 1);
    let fixture: Vec<&str> = include_str!("fixtures/entry_v1.hex")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect();
    let entries = fixture_entries();
    assert_eq!(fixture.len(), entries.len());
    for (line, entry) in fixture.iter().zip(&entries) {
        assert_eq!(
            &hex(&entry.encode()),
            line,
            "encoding of entry {} changed",
            entry.seq
        );
        assert_eq!(
            &Entry::decode(&unhex(line)).unwrap(),
            entry,
            "decoding of entry {} changed",
            entry.seq
        );
    }
}

/// Prints the fixture; run with `--ignored --nocapture` only when adding a new version's file.
#[test]
#[ignore]
fn print_fixture() {
    println!("# entry format version 1: one encoded entry per line, hex");
    for entry in fixture_entries() {
        println!("{}", hex(&entry.encode()));
    }
}
