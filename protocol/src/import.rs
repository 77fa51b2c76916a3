//! 会员导入: a chain's members from its old system or its paper cards — profile, card number,
//! stored value, points and count or period cards — read row by row from a CSV or Excel file.
//! Each row is checked alone and against the rows before it ([`Checker`]); headquarters checks
//! it against the directory it holds. A dry run reports every bad row; an import with a bad row
//! imports nothing. Each good row becomes two entries of headquarters' log: the member's
//! registration and their opening balances (`WalletEvent::Opening`), placed at their home store.
//!
//! An imported member's id is derived from their phone ([`member_id`]), so an import run twice,
//! or run again after a crash, finds the members it wrote and skips them.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{CardNo, MemberId, StoreId};
use crate::member::{CardStatus, Gender, Profile};
use crate::money::{Fen, parse_amount};
use crate::phone::Phone;
use crate::wallet::{CARD_NAME_CHARS_MAX, CARD_USES_MAX, CardKind, PointsPolicy};

/// The columns a file may have, by English or Chinese header; `phone`, `name` and
/// `home_store` are required, any other may be left out.
pub const COLUMNS: [(&str, &str); 13] = [
    ("phone", "手机号"),
    ("name", "姓名"),
    ("card_no", "卡号"),
    ("birthday", "生日"),
    ("gender", "性别"),
    ("tier", "等级"),
    ("home_store", "开卡门店"),
    ("join_date", "入会日期"),
    ("principal", "储值本金"),
    ("bonus", "赠送金额"),
    ("points", "积分"),
    ("points_expire", "积分到期"),
    ("cards", "卡项"),
];
const REQUIRED: [usize; 3] = [0, 1, 6];

/// The most stored value one imported member may hold (principal and bonus each), in fen.
pub const BALANCE_MAX: Fen = Fen(100_000_000);
/// The most points one imported member may hold.
pub const POINTS_MAX: u64 = 100_000_000;
/// The most cards one row may carry.
pub const CARDS_MAX: usize = 20;
/// The most bad rows a report lists (all are counted).
pub const BAD_ROWS_LISTED: usize = 1_000;

/// A count or period card the member holds, with what is left of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningCard {
    pub name: String,
    pub kind: CardKind,
    /// What the member paid for it (a closing pays back its share of this).
    pub price: Fen,
    /// Uses left on a count card (0 for a period card).
    pub left: u32,
}

/// One good row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    /// Who the row makes (`member_id`): the same for the same phone and join date every day.
    pub member_id: MemberId,
    pub profile: Profile,
    pub principal: Fen,
    pub bonus: Fen,
    pub points: u64,
    pub points_expire: Option<NaiveDate>,
    pub cards: Vec<OpeningCard>,
}

/// Why a row cannot be imported: its line in the file (the header is line 1), the column, what
/// is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    pub line: u64,
    pub field: &'static str,
    pub message: String,
}

/// Which column of the file holds which field.
#[derive(Debug, Clone)]
pub struct Header {
    at: [Option<usize>; COLUMNS.len()],
}

impl Header {
    /// Reads the header row: every cell must name a column (in English or Chinese), once.
    pub fn parse<'a>(cells: impl IntoIterator<Item = &'a str>) -> Result<Header, String> {
        let mut at = [None; COLUMNS.len()];
        for (i, cell) in cells.into_iter().enumerate() {
            let name = cell.trim().trim_start_matches('\u{feff}').to_lowercase();
            if name.is_empty() {
                continue;
            }
            let Some(column) = COLUMNS
                .iter()
                .position(|(en, zh)| name == *en || name == *zh)
            else {
                return Err(format!(
                    "unknown column {name:?}: the columns are {}",
                    column_names()
                ));
            };
            if at[column].replace(i).is_some() {
                return Err(format!("column {name:?} appears twice"));
            }
        }
        for required in REQUIRED {
            if at[required].is_none() {
                let (en, zh) = COLUMNS[required];
                return Err(format!("the file needs a column {en} ({zh})"));
            }
        }
        Ok(Header { at })
    }
}

fn column_names() -> String {
    COLUMNS
        .iter()
        .map(|(en, zh)| format!("{en} ({zh})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A date as an old system writes it: 2026-03-01, 2026/3/1 or 20260301.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
}

fn yuan(field: &'static str, text: &str, line: u64) -> Result<Fen, BadRow> {
    let bad = |message: String| BadRow {
        line,
        field,
        message,
    };
    if text.trim().is_empty() {
        return Ok(Fen(0));
    }
    let amount = parse_amount(text.trim()).map_err(|e| bad(e.to_string()))?;
    if amount.is_sign_negative() {
        return Err(bad("a balance cannot be negative".into()));
    }
    let fen = crate::money::Money::new(amount, crate::money::Currency::CNY)
        .to_fen()
        .map_err(|e| bad(e.to_string()))?;
    if fen > BALANCE_MAX {
        return Err(bad(format!("at most {} yuan", BALANCE_MAX)));
    }
    Ok(fen)
}

/// One card of the `cards` column: `count:<name>:<uses left>:<uses sold>:<price>[:<valid to>]`,
/// `timed:<name>:<minutes left>:<minutes sold>:<price>[:<valid to>]` or
/// `period:<name>:<from>:<to>:<price>`; cards are separated by `;`.
fn card(text: &str, line: u64) -> Result<OpeningCard, BadRow> {
    let bad = |message: String| BadRow {
        line,
        field: "cards",
        message: format!(
            "{message} (in {:?})",
            text.chars().take(60).collect::<String>()
        ),
    };
    let parts: Vec<&str> = text.split(':').map(str::trim).collect();
    let name = |n: &str| {
        if n.is_empty() || n.chars().count() > CARD_NAME_CHARS_MAX {
            return Err(bad(format!(
                "a card's name is 1 to {CARD_NAME_CHARS_MAX} characters"
            )));
        }
        Ok(n.to_owned())
    };
    let date = |d: &str| parse_date(d).ok_or_else(|| bad(format!("{d:?} is not a date")));
    let price = |p: &str| yuan("cards", p, line).map_err(|e| bad(e.message));
    match parts.as_slice() {
        [kind @ ("count" | "timed"), n, left, sold, p, rest @ ..] if rest.len() <= 1 => {
            let max = match *kind {
                "count" => CARD_USES_MAX,
                _ => crate::wallet::TIMED_MINUTES_MAX,
            };
            let uses = |u: &str| {
                u.parse::<u32>()
                    .ok()
                    .filter(|u| *u <= max)
                    .ok_or_else(|| bad(format!("uses or minutes are 0 to {max}")))
            };
            let (left, sold) = (uses(left)?, uses(sold)?);
            if sold == 0 || left > sold {
                return Err(bad(
                    "what is left is at most what was sold, which is 1 or more".into(),
                ));
            }
            let valid_to = rest.first().map(|d| date(d)).transpose()?;
            let kind = match *kind {
                "count" => CardKind::Count {
                    uses: sold,
                    valid_to,
                },
                _ => CardKind::Timed {
                    minutes: sold,
                    valid_to,
                },
            };
            Ok(OpeningCard {
                name: name(n)?,
                kind,
                price: price(p)?,
                left,
            })
        }
        ["period", n, from, to, p] => {
            let (from, to) = (date(from)?, date(to)?);
            if to < from {
                return Err(bad("the period ends before it starts".into()));
            }
            Ok(OpeningCard {
                name: name(n)?,
                kind: CardKind::Period { from, to },
                price: price(p)?,
                left: 0,
            })
        }
        _ => Err(bad(
            "a card is count:<name>:<uses left>:<uses sold>:<price>[:<valid to>], \
             timed:<name>:<minutes left>:<minutes sold>:<price>[:<valid to>] or \
             period:<name>:<from>:<to>:<price>"
                .into(),
        )),
    }
}

/// Reads one row (its cells in file order), as of `today`, giving the chain's first tier where
/// the row names none.
pub fn read_row(
    header: &Header,
    line: u64,
    cells: &[&str],
    default_tier: &str,
    today: NaiveDate,
) -> Result<Row, BadRow> {
    let cell = |column: usize| {
        header.at[column]
            .and_then(|i| cells.get(i).copied())
            .unwrap_or("")
            .trim()
    };
    let bad = |field: &'static str, message: String| BadRow {
        line,
        field,
        message,
    };
    let phone = Phone::parse(cell(0)).map_err(|e| bad("phone", e.to_string()))?;
    let card_no = match cell(2) {
        "" => None,
        c => Some(CardNo::parse(c).map_err(|e| bad("card_no", e.to_string()))?),
    };
    let date = |column: usize, field: &'static str| match cell(column) {
        "" => Ok(None),
        d => parse_date(d)
            .map(Some)
            .ok_or_else(|| bad(field, format!("{d:?} is not a date (2026-03-01)"))),
    };
    let birthday = date(3, "birthday")?;
    let gender = match cell(4) {
        "" => Gender::Unspecified,
        "男" | "m" | "male" | "M" | "Male" => Gender::Male,
        "女" | "f" | "female" | "F" | "Female" => Gender::Female,
        g => {
            return Err(bad(
                "gender",
                format!("{g:?}: give 男 or 女, or leave it empty"),
            ));
        }
    };
    let home_store = StoreId::parse(cell(6)).map_err(|e| bad("home_store", e.to_string()))?;
    let given_date = date(7, "join_date")?;
    let join_date = given_date.unwrap_or(today);
    if join_date > today {
        return Err(bad("join_date", format!("{join_date} is in the future")));
    }
    let principal = yuan("principal", cell(8), line)?;
    let bonus = yuan("bonus", cell(9), line)?;
    let points = match cell(10) {
        "" => 0,
        p => p
            .parse::<u64>()
            .ok()
            .filter(|p| *p <= POINTS_MAX)
            .ok_or_else(|| {
                bad(
                    "points",
                    format!("{p:?}: points are a whole number 0 to {POINTS_MAX}"),
                )
            })?,
    };
    let points_expire = date(11, "points_expire")?;
    if points > 0 && points_expire.is_some_and(|d| d < today) {
        return Err(bad(
            "points_expire",
            "these points have expired already".into(),
        ));
    }
    let cards = match cell(12) {
        "" => Vec::new(),
        list => list
            .split(';')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| card(c, line))
            .collect::<Result<Vec<_>, _>>()?,
    };
    if cards.len() > CARDS_MAX {
        return Err(bad("cards", format!("at most {CARDS_MAX} cards a member")));
    }
    let tier = match cell(5) {
        "" => default_tier.to_owned(),
        t => t.to_owned(),
    };
    let profile = Profile {
        name: cell(1).to_owned(),
        phone,
        card_no,
        birthday,
        gender,
        tags: Default::default(),
        notes: String::new(),
        tier,
        custom: Default::default(),
        home_store,
        join_date,
        referrer: None,
        marketing_consent: false,
        card_status: CardStatus::Active,
        former_cards: Default::default(),
    };
    profile.validate().map_err(|e| {
        let field = match e.field() {
            Some("name") => "name",
            Some("tier") => "tier",
            Some("birthday") => "birthday",
            _ => "name",
        };
        bad(field, e.to_string())
    })?;
    Ok(Row {
        line,
        member_id: member_id(&profile.phone, given_date),
        profile,
        principal,
        bonus,
        points,
        points_expire,
        cards,
    })
}

/// Catches a phone or card number given twice in one file.
#[derive(Debug, Default)]
pub struct Checker {
    phones: HashMap<Phone, u64>,
    cards: HashMap<CardNo, u64>,
}

impl Checker {
    pub fn check(&mut self, row: &Row) -> Result<(), BadRow> {
        let p = &row.profile;
        if let Some(first) = self.phones.get(&p.phone) {
            return Err(BadRow {
                line: row.line,
                field: "phone",
                message: format!("{} is also on line {first}", p.phone.masked()),
            });
        }
        if let Some(card) = &p.card_no
            && let Some(first) = self.cards.get(card)
        {
            return Err(BadRow {
                line: row.line,
                field: "card_no",
                message: format!("{card} is also on line {first}"),
            });
        }
        self.phones.insert(p.phone.clone(), row.line);
        if let Some(card) = &p.card_no {
            self.cards.insert(card.clone(), row.line);
        }
        Ok(())
    }
}

/// An imported member's id: their join date and a hash of their phone, so the same row always
/// names the same member (an import run again skips who it wrote). A row without a join date
/// (the member joins today) takes the epoch for it, not the day it is read: the same file sent
/// again another day names the same members.
pub fn member_id(phone: &Phone, join_date: Option<NaiveDate>) -> MemberId {
    let ms = join_date
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(0, |t| t.and_utc().timestamp_millis());
    MemberId::mint(u64::try_from(ms).unwrap_or(0), phone_bits(phone))
}

/// Whether `id` was minted by an import for `phone`, on whatever join date (an id of an older
/// run whose join date was the day it ran, or a file whose dates were edited since).
pub fn minted_for(id: &MemberId, phone: &Phone) -> bool {
    id.random_bits() == MemberId::mint(0, phone_bits(phone)).random_bits()
}

fn phone_bits(phone: &Phone) -> u128 {
    let digest = Sha256::digest(format!("member-import/{}", phone.as_str()));
    let mut random = [0u8; 16];
    random.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(random)
}

/// The points lot that lapses when imported points should: with lots kept `keep_years` after
/// their year, points good until a day in year Y go to lot Y − keep_years (they live to the end
/// of Y, never shorter than the old system promised). Without an expiry, or with points that
/// never lapse, this year's lot.
pub fn points_lot(policy: &PointsPolicy, expire: Option<NaiveDate>, today: NaiveDate) -> i32 {
    match (policy.keep_years, expire) {
        (Some(keep), Some(day)) => (day.year() - i32::from(keep)).max(1970),
        _ => today.year(),
    }
}

/// The wallet entry of an imported row: every balance credited at `hq` (the writer) and moved
/// at once to `home` when there is one (the member's home store, known and not fenced), as a
/// campaign's coupon is. Cards are named `<entry's id>-<n>`.
pub fn opening(
    row: &Row,
    hq: &StoreId,
    home: Option<&StoreId>,
    entry_id: &str,
    policy: &PointsPolicy,
    today: NaiveDate,
    import: &str,
) -> Result<(crate::wallet::WalletEvent, Vec<crate::wallet::RightsOp>), String> {
    use crate::wallet::{CardId, Counter, Wallet, WalletEvent};
    let mut wallet = Wallet::default();
    let lot = points_lot(policy, row.points_expire, today);
    let mut cards = Vec::with_capacity(row.cards.len());
    let mut credits = Vec::new();
    let units = |fen: Fen| u64::try_from(fen.0).unwrap_or(0);
    credits.push((Counter::Principal, units(row.principal)));
    credits.push((Counter::Bonus, units(row.bonus)));
    credits.push((Counter::Points { year: lot }, row.points));
    for (n, card) in row.cards.iter().enumerate() {
        let id = CardId::parse(&format!("{entry_id}-{}", n + 1)).map_err(|e| e.to_string())?;
        credits.push((Counter::Uses { card: id.clone() }, u64::from(card.left)));
        cards.push((id, card.clone()));
    }
    let mut ops = Vec::new();
    for (counter, units) in credits.into_iter().filter(|(_, u)| *u > 0) {
        ops.push(
            wallet
                .give(hq, &counter, units)
                .map_err(|e| e.to_string())?,
        );
        if let Some(home) = home {
            let moved = wallet.move_rights(hq, home, &counter, units);
            ops.push(moved.map_err(|e| e.to_string())?);
        }
    }
    let event = WalletEvent::Opening {
        principal: row.principal,
        bonus: row.bonus,
        points: row.points,
        lot,
        cards,
        import: import.to_owned(),
    };
    Ok((event, ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn header() -> Header {
        Header::parse([
            "手机号",
            "姓名",
            "卡号",
            "开卡门店",
            "储值本金",
            "赠送金额",
            "积分",
            "积分到期",
            "卡项",
        ])
        .unwrap()
    }

    fn row(cells: &[&str]) -> Result<Row, BadRow> {
        read_row(&header(), 2, cells, "普通", day("2026-12-05"))
    }

    #[test]
    fn a_good_row_carries_balances_points_and_cards() {
        let r = row(&[
            "13800138000",
            "王芳",
            "VIP0001",
            "S001",
            "300.50",
            "20",
            "1200",
            "2027-06-30",
            "count:洗车卡:8:10:100.00:2027-12-31; period:年卡:2026-01-01:2026-12-31:365",
        ])
        .unwrap();
        assert_eq!(r.principal, Fen(30_050));
        assert_eq!(r.bonus, Fen(2_000));
        assert_eq!(r.points, 1_200);
        assert_eq!(r.cards.len(), 2);
        assert_eq!(r.cards[0].left, 8);
        assert_eq!(r.profile.tier, "普通");
        assert_eq!(r.profile.join_date, day("2026-12-05"));
        assert_eq!(
            points_lot(&PointsPolicy::default(), r.points_expire, day("2026-12-05")),
            2026
        );
    }

    #[test]
    fn each_kind_of_bad_cell_is_named_by_its_column() {
        let cases: [(&[&str], &str); 7] = [
            (&["1380013800", "王芳", "", "S001"], "phone"),
            (&["13800138000", "", "", "S001"], "name"),
            (&["13800138000", "王芳", "", "S 1"], "home_store"),
            (&["13800138000", "王芳", "", "S001", "-5"], "principal"),
            (&["13800138000", "王芳", "", "S001", "1.234"], "principal"),
            (&["13800138000", "王芳", "", "S001", "", "", "-3"], "points"),
            (
                &[
                    "13800138000",
                    "王芳",
                    "",
                    "S001",
                    "",
                    "",
                    "",
                    "",
                    "count:卡:11:10:5",
                ],
                "cards",
            ),
        ];
        for (cells, field) in cases {
            let e = row(cells).unwrap_err();
            assert_eq!(e.field, field, "{cells:?}: {e:?}");
        }
    }

    #[test]
    fn a_header_names_every_column_once_and_the_required_ones() {
        assert!(
            Header::parse(["phone", "name"]).is_err(),
            "home_store is required"
        );
        assert!(Header::parse(["phone", "name", "home_store", "phone"]).is_err());
        assert!(Header::parse(["phone", "name", "home_store", "email"]).is_err());
        assert!(Header::parse(["\u{feff}Phone", "姓名", "开卡门店"]).is_ok());
    }

    #[test]
    fn a_phone_or_card_twice_in_one_file_is_a_bad_row() {
        let mut checker = Checker::default();
        let a = row(&["13800138000", "王芳", "VIP1", "S001"]).unwrap();
        let mut b = row(&["13800138001", "李雷", "VIP1", "S001"]).unwrap();
        b.line = 3;
        let mut c = row(&["13800138000", "韩梅", "", "S001"]).unwrap();
        c.line = 4;
        checker.check(&a).unwrap();
        assert_eq!(checker.check(&b).unwrap_err().field, "card_no");
        assert_eq!(checker.check(&c).unwrap_err().field, "phone");
    }

    #[test]
    fn the_same_phone_always_names_the_same_member_on_any_day_it_is_read() {
        let phone = Phone::parse("13800138000").unwrap();
        let joined = Some(day("2020-05-01"));
        assert_eq!(member_id(&phone, joined), member_id(&phone, joined));
        let other = Phone::parse("13800138001").unwrap();
        assert_ne!(member_id(&phone, joined), member_id(&other, joined));
        // No join date: the member joins the day the file is read, but is named the same.
        let read_on = |today: &str| {
            let cells = ["13800138000", "韩梅", "", "S001"];
            read_row(&header(), 2, &cells, "普通", day(today)).unwrap()
        };
        let (monday, tuesday) = (read_on("2026-12-07"), read_on("2026-12-08"));
        assert_eq!(monday.member_id, tuesday.member_id);
        assert_eq!(tuesday.profile.join_date, day("2026-12-08"));
        // An id an import minted for the phone on another day is still known as its.
        assert!(minted_for(&member_id(&phone, None), &phone));
        assert!(minted_for(&member_id(&phone, joined), &phone));
        assert!(!minted_for(&member_id(&other, joined), &phone));
        assert!(!minted_for(&MemberId::mint(1_000, 7), &phone));
    }
}
