//! The Complete Journey as the replay reads it: baskets of a period at the busiest stores.

use super::*;

/// One line of a basket, as the CSV has it.
#[derive(Debug, Clone)]
pub struct Line {
    pub product: u64,
    pub quantity: i64,
    /// `sales_value` in fen.
    pub fen: i64,
}

#[derive(Debug, Clone)]
pub struct Basket {
    pub id: u64,
    pub household: u32,
    pub store: u32,
    pub at: NaiveDateTime,
    pub lines: Vec<Line>,
}

impl Basket {
    pub fn fen(&self) -> i64 {
        self.lines.iter().map(|l| l.fen).sum()
    }
}

/// The baskets of the period at the stores replayed, in time order.
#[derive(Debug, Default)]
pub struct Slice {
    pub baskets: Vec<Basket>,
    pub stores: Vec<u32>,
    /// Rows of the period at stores left out (`--stores` smaller than all).
    pub rows_left_out: u64,
    pub rows: u64,
}

pub fn store_id(n: u32) -> String {
    format!("S{n:04}")
}

pub fn phone(household: u32) -> String {
    format!("139{household:08}")
}

pub(super) fn fen_of(text: &str) -> anyhow::Result<i64> {
    let value: Decimal = text.parse().with_context(|| format!("amount {text:?}"))?;
    let fen = value * Decimal::ONE_HUNDRED;
    anyhow::ensure!(fen.fract().is_zero(), "amount {text} is not whole fen");
    i64::try_from(fen.trunc()).with_context(|| format!("amount {text}"))
}

pub(super) fn yuan(fen: i64) -> String {
    protocol::Fen(fen).to_string()
}

/// The transactions file, read as it is decompressed.
pub type Transactions = csv::Reader<BufReader<flate2::read::GzDecoder<std::fs::File>>>;

/// The Complete Journey's transactions file under `data`, opened for reading, and where each
/// named column is in it.
pub fn transactions(
    data: &Path,
) -> anyhow::Result<(Transactions, impl Fn(&str) -> anyhow::Result<usize>)> {
    let path = data.join("transactions.csv.gz");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = csv::Reader::from_reader(BufReader::new(flate2::read::GzDecoder::new(file)));
    let headers = reader.headers()?.clone();
    let column = move |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no column {name}"))
    };
    Ok((reader, column))
}

/// Reads the period's baskets at its `stores` busiest stores.
pub fn read_slice(
    data: &Path,
    from: NaiveDate,
    to: NaiveDate,
    stores: usize,
) -> anyhow::Result<Slice> {
    let (mut reader, column) = transactions(data)?;
    let cols = [
        column("household_id")?,
        column("store_id")?,
        column("basket_id")?,
        column("product_id")?,
        column("quantity")?,
        column("sales_value")?,
        column("transaction_timestamp")?,
    ];
    let mut baskets: Vec<Basket> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let field = |i: usize| record.get(cols[i]).unwrap_or("");
        let at: NaiveDateTime = field(6)
            .parse()
            .map_err(|e| anyhow::anyhow!("timestamp {:?}: {e}", field(6)))?;
        if at.date() < from || at.date() > to {
            continue;
        }
        let id: u64 = field(2).parse()?;
        let line = Line {
            product: field(3).parse()?,
            quantity: field(4).parse()?,
            fen: fen_of(field(5))?,
        };
        let i = *index.entry(id).or_insert_with(|| {
            baskets.push(Basket {
                id,
                household: field(0).parse().unwrap_or(0),
                store: field(1).parse().unwrap_or(0),
                at,
                lines: Vec::new(),
            });
            baskets.len() - 1
        });
        baskets[i].lines.push(line);
    }
    let mut per_store: BTreeMap<u32, usize> = BTreeMap::new();
    for b in &baskets {
        *per_store.entry(b.store).or_default() += 1;
    }
    let mut ranked: Vec<(u32, usize)> = per_store.into_iter().collect();
    ranked.sort_by_key(|(store, n)| (std::cmp::Reverse(*n), *store));
    if stores > 0 {
        ranked.truncate(stores);
    }
    let kept: BTreeSet<u32> = ranked.iter().map(|(s, _)| *s).collect();
    let rows: u64 = baskets.iter().map(|b| b.lines.len() as u64).sum();
    baskets.retain(|b| kept.contains(&b.store));
    let rows_kept: u64 = baskets.iter().map(|b| b.lines.len() as u64).sum();
    baskets.sort_by_key(|b| (b.at, b.id));
    Ok(Slice {
        baskets,
        stores: kept.into_iter().collect(),
        rows_left_out: rows - rows_kept,
        rows: rows_kept,
    })
}
