//! Table-driven pricing cases, one per row: the basket, who buys it, the coupon and points,
//! and what every line must come to, step by step. Then property tests of the sums.

use proptest::prelude::*;

use super::*;
use crate::catalogue::Qty;

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

/// A line of whole pieces.
fn pc(s: &str, price: i64, pieces: i64) -> Line {
    Line {
        sku: sku(s),
        category: "日用".into(),
        qty: Qty(pieces * 1000),
        unit_price: Fen(price),
        special: None,
        discountable: true,
        earns_points: true,
        set_amount: None,
    }
}

/// A line sold by weight: `grams` of a product priced per kg.
fn kg(s: &str, price: i64, grams: i64) -> Line {
    Line {
        qty: Qty(grams),
        ..pc(s, price, 1)
    }
}

fn special(mut l: Line, price: i64) -> Line {
    l.special = Some(Fen(price));
    l
}

fn fixed(mut l: Line) -> Line {
    l.discountable = false;
    l
}

/// The line's amount set at the till.
fn set(mut l: Line, amount: i64) -> Line {
    l.set_amount = Some(Fen(amount));
    l
}

fn rules() -> PricingRules {
    PricingRules {
        tier_percent_off: [
            ("金卡".to_owned(), Decimal::from(10)),
            ("银卡".to_owned(), Decimal::from(5)),
        ]
        .into_iter()
        .collect(),
        birthday_percent_off: Decimal::from(20),
        ..PricingRules::default()
    }
}

fn gold() -> Option<MemberTerms> {
    Some(MemberTerms {
        tier: Some("金卡".into()),
        birthday_month: false,
        points: 100_000,
    })
}

fn member(tier: Option<&str>, birthday: bool, points: u64) -> Option<MemberTerms> {
    Some(MemberTerms {
        tier: tier.map(str::to_owned),
        birthday_month: birthday,
        points,
    })
}

fn bundle(id: &str, items: &[(&str, i64)], price: i64) -> BundleOffer {
    BundleOffer {
        id: sku(id),
        items: items.iter().map(|(s, n)| (sku(s), Qty(n * 1000))).collect(),
        price: Fen(price),
    }
}

use Step::{Birthday as Bd, Bundle as Bu, Coupon as Co, Points as Pt, Special as Sp, Tier as Ti};

/// A line's net and the (step, amount off) on it, in order.
type Expected = (i64, Vec<(Step, i64)>);

struct Case {
    name: &'static str,
    lines: Vec<Line>,
    bundles: Vec<BundleOffer>,
    member: Option<MemberTerms>,
    coupon: Option<Coupon>,
    points: u64,
    rules: PricingRules,
    /// Per line: its net and the steps on it, in order.
    want: Result<Vec<Expected>, PricingError>,
}

fn case(name: &'static str, lines: Vec<Line>) -> Case {
    Case {
        name,
        lines,
        bundles: vec![],
        member: None,
        coupon: None,
        points: 0,
        rules: rules(),
        want: Ok(vec![]),
    }
}

impl Case {
    fn bundles(mut self, b: Vec<BundleOffer>) -> Self {
        self.bundles = b;
        self
    }
    fn member(mut self, m: Option<MemberTerms>) -> Self {
        self.member = m;
        self
    }
    fn coupon(mut self, c: Coupon) -> Self {
        self.coupon = Some(c);
        self
    }
    fn points(mut self, p: u64) -> Self {
        self.points = p;
        self
    }
    fn rules(mut self, r: PricingRules) -> Self {
        self.rules = r;
        self
    }
    fn want(mut self, w: Vec<Expected>) -> Self {
        self.want = Ok(w);
        self
    }
    fn fails(mut self, e: PricingError) -> Self {
        self.want = Err(e);
        self
    }
}

fn man_jian(threshold: i64, off: i64) -> Coupon {
    Coupon::AmountOff {
        threshold: Fen(threshold),
        off: Fen(off),
    }
}

fn cases() -> Vec<Case> {
    let toward_zero = PricingRules {
        rounding: Rounding::TowardZero,
        ..rules()
    };
    let no_stacking = PricingRules {
        coupon_stacks_with_member_discounts: false,
        ..rules()
    };
    let coupon_first = PricingRules {
        order: vec![Sp, Bu, Co, Ti, Bd, Pt],
        ..rules()
    };
    vec![
        case("plain", vec![pc("A", 10_00, 2)]).want(vec![(20_00, vec![])]),
        case("special price", vec![special(pc("A", 10_00, 2), 8_00)])
            .want(vec![(16_00, vec![(Sp, 4_00)])]),
        case(
            "a special above the price is ignored",
            vec![special(pc("A", 10_00, 2), 12_00)],
        )
        .want(vec![(20_00, vec![])]),
        case(
            "weight rounds half away from zero",
            vec![kg("R", 3_33, 333)],
        )
        .want(vec![(1_11, vec![])]),
        case(
            "special on a weight",
            vec![special(kg("R", 4_80, 1_250), 4_00)],
        )
        .want(vec![(5_00, vec![(Sp, 1_00)])]),
        case("gold tier 10%", vec![pc("A", 10_00, 2)])
            .member(gold())
            .want(vec![(18_00, vec![(Ti, 2_00)])]),
        case(
            "no tier discount on goods that take none",
            vec![pc("A", 10_00, 2), fixed(pc("N", 20_00, 1))],
        )
        .member(gold())
        .want(vec![(18_00, vec![(Ti, 2_00)]), (20_00, vec![])]),
        case("an unknown tier gets nothing", vec![pc("A", 10_00, 2)])
            .member(member(Some("铜卡"), false, 0))
            .want(vec![(20_00, vec![])]),
        case("no member, no member prices", vec![pc("A", 10_00, 2)]).want(vec![(20_00, vec![])]),
        case("birthday month 20%", vec![pc("A", 10_00, 2)])
            .member(member(None, true, 0))
            .want(vec![(16_00, vec![(Bd, 4_00)])]),
        case("tier then birthday compound", vec![pc("A", 10_00, 2)])
            .member(member(Some("金卡"), true, 0))
            .want(vec![(14_40, vec![(Ti, 2_00), (Bd, 3_60)])]),
        case("not the birthday month", vec![pc("A", 10_00, 2)])
            .member(member(None, false, 0))
            .want(vec![(20_00, vec![])]),
        case(
            "5% of 3.33 rounds half away from zero",
            vec![pc("C", 3_33, 1)],
        )
        .member(member(Some("银卡"), false, 0))
        .want(vec![(316, vec![(Ti, 17)])]),
        case(
            "5% of 3.33 rounds toward zero when the chain says so",
            vec![pc("C", 3_33, 1)],
        )
        .member(member(Some("银卡"), false, 0))
        .rules(toward_zero)
        .want(vec![(317, vec![(Ti, 16)])]),
        case(
            "满100减20 shared by amount",
            vec![pc("A", 10_00, 10), pc("B", 5_00, 1)],
        )
        .coupon(man_jian(100_00, 20_00))
        .want(vec![(80_95, vec![(Co, 19_05)]), (4_05, vec![(Co, 95)])]),
        case(
            "a coupon that does not stack leaves out tier and birthday",
            vec![pc("A", 10_00, 10)],
        )
        .member(member(Some("金卡"), true, 0))
        .coupon(man_jian(100_00, 20_00))
        .rules(no_stacking.clone())
        .want(vec![(80_00, vec![(Co, 20_00)])]),
        case(
            "without a coupon the member discounts apply all the same",
            vec![pc("A", 10_00, 10)],
        )
        .member(member(Some("金卡"), true, 0))
        .rules(no_stacking.clone())
        .want(vec![(72_00, vec![(Ti, 10_00), (Bd, 18_00)])]),
        case(
            "a stacking coupon comes after tier and birthday (default)",
            vec![pc("A", 10_00, 10)],
        )
        .member(member(Some("金卡"), false, 0))
        .coupon(man_jian(50_00, 10_00))
        .want(vec![(80_00, vec![(Ti, 10_00), (Co, 10_00)])]),
        case("满100减20 one fen short", vec![pc("D", 99_99, 1)])
            .coupon(man_jian(100_00, 20_00))
            .fails(PricingError::CouponThreshold {
                threshold: Fen(100_00),
                eligible: Fen(99_99),
            }),
        case(
            "goods that take no discount do not count toward 满减",
            vec![pc("A", 10_00, 5), fixed(pc("N", 20_00, 3))],
        )
        .coupon(man_jian(100_00, 20_00))
        .fails(PricingError::CouponThreshold {
            threshold: Fen(100_00),
            eligible: Fen(50_00),
        }),
        case("10% coupon capped at 5.00", vec![pc("A", 10_00, 10)])
            .coupon(Coupon::PercentOff {
                percent: Decimal::from(10),
                threshold: Fen(0),
                cap: Some(Fen(5_00)),
            })
            .want(vec![(95_00, vec![(Co, 5_00)])]),
        case(
            "10% coupon shared",
            vec![pc("A", 10_00, 2), pc("B", 5_00, 1)],
        )
        .coupon(Coupon::PercentOff {
            percent: Decimal::from(10),
            threshold: Fen(0),
            cap: None,
        })
        .want(vec![(18_00, vec![(Co, 2_00)]), (4_50, vec![(Co, 50)])]),
        case(
            "a voucher worth more than the goods takes them to zero",
            vec![pc("A", 10_00, 2)],
        )
        .coupon(Coupon::Voucher {
            value: Fen(30_00),
            threshold: Fen(0),
        })
        .want(vec![(0, vec![(Co, 20_00)])]),
        case(
            "a voucher skips goods that take no discount",
            vec![pc("A", 10_00, 2), fixed(pc("N", 20_00, 1))],
        )
        .coupon(Coupon::Voucher {
            value: Fen(5_00),
            threshold: Fen(0),
        })
        .want(vec![(15_00, vec![(Co, 5_00)]), (20_00, vec![])]),
        case("体验券: one unit free", vec![pc("B", 5_00, 2)])
            .coupon(Coupon::Experience { sku: sku("B") })
            .want(vec![(5_00, vec![(Co, 5_00)])]),
        case(
            "体验券 for goods not in the basket",
            vec![pc("A", 10_00, 1)],
        )
        .coupon(Coupon::Experience { sku: sku("B") })
        .fails(PricingError::CouponNotApplicable(
            "no whole unit of B that accepts discounts".into(),
        )),
        case(
            "体验券 for goods that take no discount",
            vec![fixed(pc("N", 20_00, 1))],
        )
        .coupon(Coupon::Experience { sku: sku("N") })
        .fails(PricingError::CouponNotApplicable(
            "no whole unit of N that accepts discounts".into(),
        )),
        case("500 points pay 5.00", vec![pc("A", 10_00, 2)])
            .member(gold())
            .rules(PricingRules {
                tier_percent_off: BTreeMap::new(),
                ..rules()
            })
            .points(500)
            .want(vec![(15_00, vec![(Pt, 5_00)])]),
        case("points above half the sale", vec![pc("A", 10_00, 2)])
            .member(member(None, false, 5_000))
            .points(1_200)
            .fails(PricingError::PointsAboveCap { max: 1_000 }),
        case("more points than the member has", vec![pc("A", 10_00, 2)])
            .member(member(None, false, 100))
            .points(500)
            .fails(PricingError::InsufficientPoints {
                available: 100,
                wanted: 500,
            }),
        case("points that do not make whole fen", vec![pc("A", 10_00, 2)])
            .member(member(None, false, 5_000))
            .rules(PricingRules {
                points_per_yuan: 1_000,
                ..rules()
            })
            .points(15)
            .fails(PricingError::PointsNotWhole { step: 10 }),
        case(
            "10 points a yuan: 30 points pay 3.00",
            vec![pc("A", 10_00, 2)],
        )
        .member(member(None, false, 5_000))
        .rules(PricingRules {
            points_per_yuan: 10,
            ..rules()
        })
        .points(30)
        .want(vec![(17_00, vec![(Pt, 3_00)])]),
        case(
            "points pay for goods that take no discount too",
            vec![pc("A", 10_00, 2), fixed(pc("N", 20_00, 1))],
        )
        .member(member(None, false, 5_000))
        .points(1_000)
        .want(vec![(15_00, vec![(Pt, 5_00)]), (15_00, vec![(Pt, 5_00)])]),
        case(
            "points off when the chain takes none",
            vec![pc("A", 10_00, 2)],
        )
        .member(member(None, false, 5_000))
        .rules(PricingRules {
            points_per_yuan: 0,
            ..rules()
        })
        .points(100)
        .fails(PricingError::PointsNotAccepted),
        case(
            "bundle A+B at 12.00",
            vec![pc("A", 10_00, 2), pc("B", 5_00, 1)],
        )
        .bundles(vec![bundle("AB", &[("A", 1), ("B", 1)], 12_00)])
        .want(vec![(18_00, vec![(Bu, 2_00)]), (4_00, vec![(Bu, 1_00)])]),
        case("bundle twice", vec![pc("A", 10_00, 2), pc("B", 5_00, 2)])
            .bundles(vec![bundle("AB", &[("A", 1), ("B", 1)], 12_00)])
            .want(vec![(16_00, vec![(Bu, 4_00)]), (8_00, vec![(Bu, 2_00)])]),
        case("an incomplete bundle", vec![pc("A", 10_00, 2)])
            .bundles(vec![bundle("AB", &[("A", 1), ("B", 1)], 12_00)])
            .want(vec![(20_00, vec![])]),
        case(
            "a bundle dearer than its goods",
            vec![pc("A", 10_00, 1), pc("B", 5_00, 1)],
        )
        .bundles(vec![bundle("AB", &[("A", 1), ("B", 1)], 16_00)])
        .want(vec![(10_00, vec![]), (5_00, vec![])]),
        case(
            "special then bundle: the saving is on the special price",
            vec![special(pc("A", 10_00, 2), 8_00), pc("B", 5_00, 1)],
        )
        .bundles(vec![bundle("AB", &[("A", 1), ("B", 1)], 12_00)])
        .want(vec![
            (15_38, vec![(Sp, 4_00), (Bu, 62)]),
            (4_62, vec![(Bu, 38)]),
        ]),
        case(
            "every step at once",
            vec![pc("A", 10_00, 10), fixed(pc("N", 20_00, 1))],
        )
        .member(member(Some("金卡"), true, 10_000))
        .coupon(man_jian(50_00, 10_00))
        .points(2_000)
        .want(vec![
            (
                46_88,
                vec![(Ti, 10_00), (Bd, 18_00), (Co, 10_00), (Pt, 15_12)],
            ),
            (15_12, vec![(Pt, 4_88)]),
        ]),
        case(
            "the tier discount first leaves 满100减20 short",
            vec![pc("A", 10_00, 10)],
        )
        .member(gold())
        .coupon(man_jian(100_00, 20_00))
        .fails(PricingError::CouponThreshold {
            threshold: Fen(100_00),
            eligible: Fen(90_00),
        }),
        case(
            "a chain that applies coupons before the tier",
            vec![pc("A", 10_00, 10)],
        )
        .member(gold())
        .coupon(man_jian(100_00, 20_00))
        .rules(coupon_first)
        .want(vec![(72_00, vec![(Co, 20_00), (Ti, 8_00)])]),
        case("a step named twice", vec![pc("A", 10_00, 1)])
            .rules(PricingRules {
                order: vec![Sp, Ti, Ti],
                ..rules()
            })
            .fails(PricingError::Order),
        case("a tier above 100%", vec![pc("A", 10_00, 1)])
            .rules(PricingRules {
                tier_percent_off: [("金卡".to_owned(), Decimal::from(150))]
                    .into_iter()
                    .collect(),
                ..rules()
            })
            .fails(PricingError::Percent),
        case("an empty basket", vec![]).fails(PricingError::Lines),
        case("a line of nothing", vec![pc("A", 10_00, 0)]).fails(PricingError::Lines),
        case(
            "改价: the till's amount, and no member discount on top",
            vec![set(pc("A", 10_00, 2), 15_00), pc("B", 10_00, 1)],
        )
        .member(gold())
        .want(vec![
            (15_00, vec![(Step::Override, 5_00)]),
            (9_00, vec![(Ti, 1_00)]),
        ]),
        case(
            "金额商品: an open-price line costs what was set, whatever the quantity",
            vec![set(pc("FUEL", 0, 1), 38_50)],
        )
        .want(vec![(38_50, vec![])]),
        case(
            "a set line takes no special price and no bundle",
            vec![
                set(special(pc("A", 10_00, 2), 5_00), 18_00),
                pc("B", 5_00, 1),
            ],
        )
        .bundles(vec![bundle("AB", &[("A", 1), ("B", 1)], 1_00)])
        .want(vec![(18_00, vec![(Step::Override, 2_00)]), (5_00, vec![])]),
        case(
            "points still pay a set line",
            vec![set(pc("A", 10_00, 1), 8_00)],
        )
        .member(member(None, false, 1000))
        .points(100)
        .want(vec![(7_00, vec![(Step::Override, 2_00), (Pt, 1_00)])]),
        case(
            "改价 above the price is refused",
            vec![set(pc("A", 10_00, 1), 12_00)],
        )
        .fails(PricingError::SetAbovePrice {
            sku: sku("A"),
            amount: Fen(12_00),
            price: Fen(10_00),
        }),
        case("改价 named in the chain's order", vec![pc("A", 10_00, 1)])
            .rules(PricingRules {
                order: vec![Sp, Step::Override],
                ..rules()
            })
            .fails(PricingError::Order),
    ]
}

#[test]
fn every_pricing_case_comes_out_line_by_line() {
    let all = cases();
    assert!(all.len() >= 30);
    for c in all {
        let got = price(
            &c.lines,
            &c.bundles,
            c.member.as_ref(),
            c.coupon.as_ref(),
            c.points,
            &c.rules,
        );
        let got = got.map(|p| {
            assert_eq!(
                p.due.0,
                p.lines.iter().map(|l| l.net.0).sum::<i64>(),
                "{}",
                c.name
            );
            assert_eq!(p.subtotal.0 - p.discount.0, p.due.0, "{}", c.name);
            p.lines
                .iter()
                .map(|l| (l.net.0, l.steps.iter().map(|s| (s.step, s.off.0)).collect()))
                .collect::<Vec<_>>()
        });
        assert_eq!(got, c.want, "case: {}", c.name);
    }
}

fn any_line() -> impl Strategy<Value = Line> {
    (
        0..5usize,
        1..100_000i64,
        1..20_000i64,
        proptest::option::of(1..100_000i64),
        any::<bool>(),
    )
        .prop_map(|(s, price, qty, special, discountable)| Line {
            sku: sku(&format!("S{s}")),
            category: String::new(),
            qty: Qty(qty),
            unit_price: Fen(price),
            special: special.map(Fen),
            discountable,
            earns_points: true,
            set_amount: None,
        })
}

proptest! {
    /// Whatever the basket and offers: the lines add up to what is due, the steps to the
    /// discount, no line goes below zero, and goods that take no discount get none.
    #[test]
    fn totals_are_the_sum_of_the_lines(
        lines in proptest::collection::vec(any_line(), 1..12),
        tier in 0..3usize,
        birthday in any::<bool>(),
        coupon in 0..4usize,
        points in 0..3_000u64,
        bundled in any::<bool>(),
    ) {
        let mut lines = lines;
        for (i, l) in lines.iter_mut().enumerate() {
            l.sku = sku(&format!("S{i}"));
        }
        let member = member([None, Some("金卡"), Some("银卡")][tier], birthday, 1_000_000);
        let coupon = [
            None,
            Some(man_jian(10_00, 3_00)),
            Some(Coupon::PercentOff { percent: Decimal::from(15), threshold: Fen(0), cap: None }),
            Some(Coupon::Voucher { value: Fen(7_77), threshold: Fen(0) }),
        ][coupon].clone();
        let bundles = if bundled && lines.len() > 1 {
            vec![BundleOffer { id: sku("BX"), items: vec![(lines[0].sku.clone(), Qty(1)), (lines[1].sku.clone(), Qty(1))], price: Fen(1) }]
        } else {
            vec![]
        };
        if let Ok(p) = price(&lines, &bundles, member.as_ref(), coupon.as_ref(), points, &rules()) {
            prop_assert_eq!(p.due.0, p.lines.iter().map(|l| l.net.0).sum::<i64>());
            let steps: i64 = p.lines.iter().flat_map(|l| &l.steps).map(|s| s.off.0).sum();
            prop_assert_eq!(p.discount.0, steps);
            prop_assert_eq!(p.subtotal.0 - p.discount.0, p.due.0);
            for l in &p.lines {
                prop_assert!(l.net.0 >= 0);
                prop_assert!(l.steps.iter().all(|s| s.off.0 > 0));
                if !l.discountable {
                    prop_assert!(l.steps.iter().all(|s| matches!(s.step, Step::Special | Step::Bundle | Step::Points)));
                }
            }
        }
    }

    #[test]
    fn shares_add_up_and_stay_within_their_weights(
        total in 0..1_000_000i64,
        weights in proptest::collection::vec(0..100_000i64, 1..20),
    ) {
        let sum: i64 = weights.iter().sum();
        let total = total.min(sum);
        let shares = share(total, &weights);
        prop_assert_eq!(shares.iter().sum::<i64>(), if sum == 0 { 0 } else { total });
        for (s, w) in shares.iter().zip(&weights) {
            prop_assert!(*s >= 0 && s <= w);
        }
    }
}

#[test]
fn a_coupon_for_some_goods_takes_off_only_their_lines_and_needs_them_to_reach_its_threshold() {
    let scope = CouponScope {
        skus: [sku("A")].into(),
        categories: Default::default(),
    };
    let offer = man_jian(20_00, 5_00);
    let redeemed = Redeemed {
        offer: &offer,
        scope: &scope,
        stacks: Some(false),
    };
    let lines = vec![pc("A", 10_00, 3), pc("B", 50_00, 1)];
    let p = price_redeeming(&lines, &[], gold().as_ref(), &[redeemed], 0, &rules()).unwrap();
    let coupon = |i: usize| -> i64 {
        p.lines[i]
            .steps
            .iter()
            .filter(|s| s.step == Step::Coupon)
            .map(|s| s.off.0)
            .sum()
    };
    assert_eq!((coupon(0), coupon(1)), (5_00, 0));
    // Not stacking: the gold tier's discount is not given with this coupon.
    assert!(
        p.lines
            .iter()
            .flat_map(|l| &l.steps)
            .all(|s| s.step != Step::Tier)
    );
    // B alone is 50.00, but nothing of it counts toward A's threshold.
    let short = vec![pc("A", 10_00, 1), pc("B", 50_00, 1)];
    assert!(matches!(
        price_redeeming(&short, &[], None, &[redeemed], 0, &rules()),
        Err(PricingError::CouponThreshold { .. })
    ));
    let none = vec![pc("B", 50_00, 1)];
    assert!(matches!(
        price_redeeming(&none, &[], None, &[redeemed], 0, &rules()),
        Err(PricingError::CouponNotApplicable(_))
    ));
}

/// A 代金券 of `fen` with no threshold.
fn voucher(fen: i64) -> Coupon {
    Coupon::Voucher {
        value: Fen(fen),
        threshold: Fen(0),
    }
}

/// A coupon as a sale redeems it, on `scope`, stacking by the chain's rule.
fn on<'a>(offer: &'a Coupon, scope: &'a CouponScope) -> Redeemed<'a> {
    Redeemed {
        offer,
        scope,
        stacks: None,
    }
}

fn categories(names: &[&str]) -> CouponScope {
    CouponScope {
        skus: Default::default(),
        categories: names.iter().map(|n| (*n).to_owned()).collect(),
    }
}

#[test]
fn several_coupons_apply_in_turn_each_to_what_the_ones_before_left() {
    let everything = CouponScope::default();
    let (thirty, percent) = (
        voucher(30_00),
        Coupon::PercentOff {
            percent: Decimal::from(10),
            threshold: Fen(0),
            cap: None,
        },
    );
    let lines = vec![pc("A", 100_00, 1)];
    let both = [on(&thirty, &everything), on(&percent, &everything)];
    let p = price_redeeming(&lines, &[], None, &both, 0, &rules()).unwrap();
    // 100.00 − 30.00 = 70.00, then 10% of 70.00.
    assert_eq!(
        (p.coupon_offs, p.due),
        (vec![Fen(30_00), Fen(7_00)], Fen(63_00))
    );
    let reversed = [on(&percent, &everything), on(&thirty, &everything)];
    let p = price_redeeming(&lines, &[], None, &reversed, 0, &rules()).unwrap();
    assert_eq!(
        (p.coupon_offs, p.due),
        (vec![Fen(10_00), Fen(30_00)], Fen(60_00))
    );
}

#[test]
fn a_coupon_whose_goods_are_priced_at_the_till_is_redeemed_for_nothing_off() {
    let (five, scope) = (voucher(5_00), categories(&["日用"]));
    let lines = vec![set(pc("A", 20_00, 1), 12_34)];
    let twice = [on(&five, &scope), on(&five, &scope)];
    let p = price_redeeming(&lines, &[], None, &twice, 0, &rules()).unwrap();
    assert_eq!(p.coupon_offs, vec![Fen(0), Fen(0)]);
    assert_eq!(p.due, Fen(12_34), "the amount set is what is paid");
}

#[test]
fn a_sale_with_more_coupons_than_a_till_takes_is_refused() {
    let (cent, everything) = (voucher(1), CouponScope::default());
    let many = vec![on(&cent, &everything); COUPONS_MAX + 1];
    assert_eq!(
        price_redeeming(&[pc("A", 100_00, 1)], &[], None, &many, 0, &rules()),
        Err(PricingError::Coupons)
    );
}

#[test]
fn a_coupon_the_ones_before_it_left_nothing_for_is_refused_not_spent_for_nothing() {
    let (thirty, everything) = (voucher(30_00), CouponScope::default());
    let one = on(&thirty, &everything);
    assert!(matches!(
        price_redeeming(&[pc("A", 20_00, 1)], &[], None, &[one, one], 0, &rules()),
        Err(PricingError::CouponNotApplicable(_))
    ));
    let free = Coupon::Experience { sku: sku("A") };
    let unit = on(&free, &everything);
    // Two units free at their own price; a third coupon finds no unit left.
    let two = vec![pc("A", 10_00, 2)];
    let p = price_redeeming(&two, &[], None, &[unit, unit], 0, &rules()).unwrap();
    assert_eq!(
        (p.coupon_offs, p.due),
        (vec![Fen(10_00), Fen(10_00)], Fen(0))
    );
    assert!(matches!(
        price_redeeming(&two, &[], None, &[unit, unit, unit], 0, &rules()),
        Err(PricingError::CouponNotApplicable(_))
    ));
}

#[test]
fn a_coupon_for_goods_that_take_no_discount_is_still_refused() {
    let five = voucher(5_00);
    let scope = CouponScope {
        skus: [sku("A")].into(),
        categories: Default::default(),
    };
    let lines = [fixed(pc("A", 20_00, 1))];
    assert!(matches!(
        price_redeeming(&lines, &[], None, &[on(&five, &scope)], 0, &rules()),
        Err(PricingError::CouponNotApplicable(_))
    ));
}
