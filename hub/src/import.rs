//! 会员导入 at headquarters: a CSV or Excel file of members read row by row, every row checked
//! (`protocol::import`) and against the directory headquarters holds — a phone or card number
//! that belongs to another member, a store headquarters has never heard from — with a report of
//! every bad row. A CSV file streams (its rows are read as they are checked and imported); an
//! Excel file's first sheet is read whole (Excel holds at most 1,048,576 rows).

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::Path;

use chrono::NaiveDate;
use protocol::import::{BadRow, Checker, Header, Row};
use protocol::{CardNo, StoreId};
use serde::Serialize;

use crate::storage::HubStore;
use protocol::MemberId;
use protocol::seal::KeyState;

/// Why a row of a member erased at their request is not imported.
pub fn erased(member: &MemberId) -> String {
    format!("member {member} was erased at their request (被遗忘): not imported again")
}

/// What headquarters already knows of the member a row makes.
#[derive(Debug, PartialEq, Eq)]
pub enum Known {
    New,
    /// Imported before (their phone may have changed at a store since): skipped, never
    /// credited twice.
    Imported,
    /// Erased at their request (被遗忘): a file never brings them back.
    Erased,
    /// The phone is another member's (registered at a till).
    PhoneTaken(MemberId),
}

/// Reads what headquarters knows of `row`'s member: by their id first (a key held or erased),
/// then by phone (an id an import minted for the phone on another join date is theirs too).
pub fn known(storage: &dyn HubStore, row: &protocol::import::Row) -> Result<Known, String> {
    match storage
        .member_key(&row.member_id)
        .map_err(|e| e.to_string())?
    {
        KeyState::Held(_) => return Ok(Known::Imported),
        KeyState::Erased => return Ok(Known::Erased),
        KeyState::Unknown => {}
    }
    let phone = &row.profile.phone;
    Ok(
        match storage.member_by_phone(phone).map_err(|e| e.to_string())? {
            Some(id) if id == row.member_id || protocol::import::minted_for(&id, phone) => {
                Known::Imported
            }
            Some(id) => Known::PhoneTaken(id),
            None => Known::New,
        },
    )
}

/// What a read of the file found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Data rows read (the header not counted).
    pub rows: u64,
    /// Rows that would be imported.
    pub good: u64,
    /// Rows imported before (by this file or an earlier run of it): skipped.
    pub already_imported: u64,
    /// Bad rows, all counted; the first `BAD_ROWS_LISTED` listed, in file order.
    pub bad: u64,
    pub bad_rows: Vec<BadRow>,
}

impl Report {
    fn refuse(&mut self, bad: BadRow) {
        self.bad += 1;
        if self.bad_rows.len() < protocol::import::BAD_ROWS_LISTED {
            self.bad_rows.push(bad);
        }
    }
}

/// Why a file could not be read at all (nothing was imported).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("not a readable Excel file: {0}")]
    Excel(String),
    #[error("line {line}: {message} (save the file as CSV UTF-8, or as Excel .xlsx)")]
    Csv { line: u64, message: String },
    #[error("the header row: {0}")]
    Header(String),
    #[error("the file has no rows")]
    Empty,
    #[error("{0}")]
    Storage(String),
}

/// What a row is checked against at headquarters.
pub struct Directory<'a> {
    pub storage: &'a dyn HubStore,
    /// Stores headquarters has heard from.
    pub stores: HashSet<StoreId>,
    /// Every card number filed under a member (current and former).
    pub cards: HashSet<CardNo>,
    pub default_tier: String,
    pub today: NaiveDate,
}

impl<'a> Directory<'a> {
    /// Reads what the checks need from `storage` once (every member's cards: the directory has
    /// no card index at headquarters).
    pub fn load(
        storage: &'a dyn HubStore,
        stores: HashSet<StoreId>,
        default_tier: String,
        today: NaiveDate,
    ) -> Result<Self, FileError> {
        let mut cards = HashSet::new();
        crate::storage::each_member(storage, |m| {
            cards.extend(m.profile.filed_cards().cloned());
            Ok(())
        })
        .map_err(FileError::Storage)?;
        Ok(Directory {
            storage,
            stores,
            cards,
            default_tier,
            today,
        })
    }

    /// A good row headquarters can take: `Ok(true)` to import, `Ok(false)` imported before.
    fn admit(&self, row: &Row) -> Result<Result<bool, BadRow>, FileError> {
        let p = &row.profile;
        let bad = |field: &'static str, message: String| {
            Ok(Err(BadRow {
                line: row.line,
                field,
                message,
            }))
        };
        if !self.stores.contains(&p.home_store) {
            return bad(
                "home_store",
                format!("headquarters has never heard from store {}", p.home_store),
            );
        }
        match known(self.storage, row).map_err(FileError::Storage)? {
            Known::Imported => return Ok(Ok(false)),
            Known::Erased => return bad("phone", erased(&row.member_id)),
            Known::PhoneTaken(id) => {
                return bad(
                    "phone",
                    format!("{} belongs to member {id} already", p.phone.masked()),
                );
            }
            Known::New => {}
        }
        if let Some(card) = &p.card_no
            && self.cards.contains(card)
        {
            return bad(
                "card_no",
                format!("card {card} belongs to a member already"),
            );
        }
        Ok(Ok(true))
    }
}

fn excel_cell(cell: &calamine::Data) -> String {
    use calamine::Data;
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        // A phone or a card number typed as a number: its digits, not 1.38e10.
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        // Excel's day count from 1899-12-30.
        Data::DateTime(d) => NaiveDate::from_ymd_opt(1899, 12, 30)
            .and_then(|base| base.checked_add_days(chrono::Days::new(d.as_f64().max(0.0) as u64)))
            .map_or_else(String::new, |day| day.to_string()),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// Calls `row` with each row's cells (the header first, as line 1), until it breaks.
fn each_row(
    path: &Path,
    mut row: impl FnMut(u64, &[&str]) -> ControlFlow<()>,
) -> Result<(), FileError> {
    let mut start = [0u8; 4];
    let excel = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut start))
        .map(|n| n == 4 && start == *b"PK\x03\x04")
        .map_err(|e| FileError::Storage(e.to_string()))?;
    let looks_excel = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx") || e.eq_ignore_ascii_case("xls"));
    if excel || looks_excel {
        use calamine::Reader;
        let mut book =
            calamine::open_workbook_auto(path).map_err(|e| FileError::Excel(e.to_string()))?;
        let sheet = book
            .worksheet_range_at(0)
            .ok_or_else(|| FileError::Excel("it has no sheet".into()))?
            .map_err(|e| FileError::Excel(e.to_string()))?;
        for (i, cells) in sheet.rows().enumerate() {
            let texts: Vec<String> = cells.iter().map(excel_cell).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            if row(i as u64 + 1, &refs).is_break() {
                break;
            }
        }
        return Ok(());
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .map_err(|e| FileError::Csv {
            line: 0,
            message: e.to_string(),
        })?;
    let mut record = csv::StringRecord::new();
    let mut line = 0;
    loop {
        line += 1;
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                return Err(FileError::Csv {
                    line,
                    message: e.to_string(),
                });
            }
        }
        let cells: Vec<&str> = record.iter().collect();
        if row(line, &cells).is_break() {
            return Ok(());
        }
    }
}

/// Reads and checks every row of the file; `good` is called with each row to import, in file
/// order (an import forwards them; a dry run ignores them). Stops at the first `Err` of `good`.
pub fn read(
    path: &Path,
    directory: &Directory<'_>,
    mut good: impl FnMut(Row) -> Result<(), String>,
) -> Result<Report, FileError> {
    let mut report = Report::default();
    let mut header = None;
    let mut checker = Checker::default();
    let mut failure = None;
    each_row(path, |line, cells| {
        if cells.iter().all(|c| c.trim().is_empty()) {
            return ControlFlow::Continue(());
        }
        let Some(header) = &header else {
            match Header::parse(cells.iter().copied()) {
                Ok(h) => header = Some(h),
                Err(e) => {
                    failure = Some(FileError::Header(e));
                    return ControlFlow::Break(());
                }
            }
            return ControlFlow::Continue(());
        };
        report.rows += 1;
        let row = match protocol::import::read_row(
            header,
            line,
            cells,
            &directory.default_tier,
            directory.today,
        ) {
            Ok(row) => row,
            Err(bad) => {
                report.refuse(bad);
                return ControlFlow::Continue(());
            }
        };
        if let Err(bad) = checker.check(&row) {
            report.refuse(bad);
            return ControlFlow::Continue(());
        }
        match directory.admit(&row) {
            Ok(Ok(true)) => {
                report.good += 1;
                if let Err(e) = good(row) {
                    failure = Some(FileError::Storage(e));
                    return ControlFlow::Break(());
                }
            }
            Ok(Ok(false)) => report.already_imported += 1,
            Ok(Err(bad)) => report.refuse(bad),
            Err(e) => {
                failure = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    if header.is_none() {
        return Err(FileError::Empty);
    }
    Ok(report)
}
