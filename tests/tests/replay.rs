//! A slice of The Complete Journey (four stores, three weeks; `tests/data`) replayed through a
//! real chain: a hub process and the four stores hosted by one node process (`node host`, each
//! store with its own storage, certificate and session) over QUIC with mutual TLS, every basket an
//! item checkout over HTTP, members paying from seeded stored value at any store. Every figure
//! the CSV gives (per store and day, per department, per member) and the stored value paid in
//! and spent must agree with headquarters' reports to the fen.

use std::path::PathBuf;

use chrono::NaiveDate;
use ops::replay::{Launcher, Options};

/// A replay of `tests/data/<slice>` from `from` to `to` (month, day of 2017), its stores hosted
/// in one node process.
fn options(dir: &tests::TempDir, slice: &str, from: (u32, u32), to: (u32, u32)) -> Options {
    let day = |(m, d): (u32, u32)| NaiveDate::from_ymd_opt(2017, m, d).expect("a day of 2017");
    Options {
        data: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("data")
            .join(slice),
        dir: dir.path().to_owned(),
        stores: 0,
        from: day(from),
        to: day(to),
        seed: 7,
        tills: 16,
        prepaid_share: 0.3,
        report_queries: 0,
        hosted: true,
        campaigns: false,
        whole_catalogue: false,
        launcher: Launcher {
            node: (env!("CARGO_BIN_EXE_store-node").into(), Vec::new()),
            hub: (env!("CARGO_BIN_EXE_hq").into(), Vec::new()),
        },
    }
}

#[test]
fn a_slice_of_a_real_year_agrees_with_the_reports_to_the_fen() {
    let dir = tests::TempDir::new("replay");
    let mut options = options(&dir, "completejourney-slice", (1, 1), (1, 21));
    options.prepaid_share = 0.4;
    let (slice, outcome, differences) = ops::replay::run(&options).unwrap();
    assert_eq!(slice.stores.len(), 4);
    assert_eq!(outcome.baskets, 802, "every basket sold");
    assert_eq!(outcome.lines, 7010, "every line sold");
    assert_eq!(
        outcome.fen,
        slice.baskets.iter().map(|b| b.fen()).sum::<i64>(),
        "every fen of sales_value"
    );
    assert!(
        outcome.zero_quantity_lines > 0,
        "the slice has lines of quantity 0"
    );
    assert!(
        slice
            .baskets
            .iter()
            .any(|b| b.lines.iter().any(|l| l.quantity > 1000)),
        "the slice has fuel lines of huge quantities"
    );
    assert!(outcome.top_ups > 0 && outcome.stored_value_spends > 0);
    assert!(
        outcome.spends_elsewhere > 0,
        "some members pay from stored value at another store"
    );
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// August 2017 at four stores, with The Complete Journey's campaigns (`tests/data`): every
/// campaign's report (members targeted, coupons redeemed) and every sales figure agree with
/// the data, each redemption redeemed as a coupon of ours at a basket of its household.
#[test]
fn a_slice_with_its_campaigns_redeems_their_coupons_where_the_data_says() {
    let dir = tests::TempDir::new("replay-campaigns");
    let mut options = options(&dir, "completejourney-campaigns", (8, 1), (8, 21));
    options.campaigns = true;
    let data = options.data.clone();
    let (slice, outcome, differences) = ops::replay::run(&options).unwrap();
    assert_eq!(outcome.baskets, 835, "every basket sold");
    let cj = ops::campaigns::read(&data).unwrap();
    let matched = ops::campaigns::match_redemptions(&cj, &slice, (options.from, options.to));
    let expected: u64 = matched.expected.values().map(|(_, r)| r).sum();
    assert!(expected >= 30, "the slice redeems coupons: {expected}");
    assert_eq!(
        outcome.coupons_redeemed, expected,
        "every matched coupon redeemed"
    );
    // Every redemption of the data is redeemed, outside the slice, or listed with its reason.
    assert_eq!(
        expected + matched.outside + matched.unmatched.len() as u64,
        cj.redemptions.len() as u64
    );
    assert_eq!(outcome.redemptions_unmatched, matched.unmatched);
    assert!(
        matched.baskets.values().any(|c| c.len() > 1),
        "some basket redeems several coupons at once"
    );
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
