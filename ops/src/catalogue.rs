//! Catalogue import (商品导入): reads products from CSV (gzip'd or not), reports the rows it
//! cannot take and why, and sends the rest to headquarters as one change set, so every store
//! sees the whole import at once or not at all.
//!
//! Two layouts are read, told apart by the header: ours (`sku,name,barcodes,department,
//! category,unit,price,earns_points,discountable,low_stock`; only `sku` and `name` required;
//! several barcodes separated by `|`), and The Complete Journey's `products.csv`
//! (`product_id,manufacturer_id,department,brand,product_category,product_type,package_size`),
//! whose products have no price (they are imported unpriced: not for sale until priced).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use protocol::Sku;
use protocol::catalogue::{Barcode, ProductForm, Unit};
use protocol::money::{Currency, Money, parse_amount};

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub problem: String,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub products: Vec<ProductForm>,
    pub bad: Vec<BadRow>,
}

fn open(path: &Path) -> anyhow::Result<Box<dyn Read>> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// Reads every row; a row that is not a valid product is reported, not imported.
pub fn read(path: &Path) -> anyhow::Result<Parsed> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(open(path)?);
    let header: Vec<String> = reader
        .headers()?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let journey = column("product_id").is_some();
    if !journey && (column("sku").is_none() || column("name").is_none()) {
        anyhow::bail!(
            "{}: the header needs sku and name (or The Complete Journey's product_id)",
            path.display()
        );
    }
    let mut parsed = Parsed::default();
    let mut skus: HashMap<String, u64> = HashMap::new();
    let mut codes: HashMap<Barcode, u64> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                parsed.bad.push(BadRow {
                    line,
                    problem: format!("not CSV: {e}"),
                });
                continue;
            }
        };
        let row = Row {
            header: &header,
            record: &record,
        };
        let row = if journey {
            journey_row(&row)
        } else {
            our_row(&row)
        };
        let form = match row.and_then(|form| {
            form.clone()
                .into_product()
                .map(|_| form)
                .map_err(|e| e.to_string())
        }) {
            Ok(form) => form,
            Err(problem) => {
                parsed.bad.push(BadRow { line, problem });
                continue;
            }
        };
        if let Some(first) = skus.insert(form.sku.to_string(), line) {
            parsed.bad.push(BadRow {
                line,
                problem: format!("sku {} already on line {first}", form.sku),
            });
            continue;
        }
        if let Some((code, first)) = form
            .barcodes
            .iter()
            .find_map(|c| codes.get(c).map(|first| (c, *first)))
        {
            parsed.bad.push(BadRow {
                line,
                problem: format!("barcode {code} already on line {first}"),
            });
            continue;
        }
        for code in &form.barcodes {
            codes.insert(code.clone(), line);
        }
        parsed.products.push(form);
    }
    Ok(parsed)
}

/// One CSV record, read by column name.
struct Row<'a> {
    header: &'a [String],
    record: &'a csv::StringRecord,
}

impl<'a> Row<'a> {
    fn get(&self, name: &str) -> &'a str {
        self.header
            .iter()
            .position(|h| h == name)
            .and_then(|c| self.record.get(c))
            .unwrap_or("")
            .trim()
    }
}

pub(crate) fn form(sku: &str, name: String) -> Result<ProductForm, String> {
    Ok(ProductForm {
        sku: Sku::parse(sku).map_err(|e| e.to_string())?,
        name,
        barcodes: Vec::new(),
        department: String::new(),
        category: String::new(),
        unit: Unit::Piece,
        price: None,
        special: None,
        earns_points: true,
        discountable: true,
        active: true,
        low_stock: None,
    })
}

fn journey_row(row: &Row<'_>) -> Result<ProductForm, String> {
    let field = |name: &str| row.get(name);
    let words: Vec<&str> = ["brand", "product_type", "package_size"]
        .into_iter()
        .map(|name| row.get(name))
        .filter(|w| !w.is_empty())
        .collect();
    let name = match (words.len(), field("department")) {
        (0 | 1, "") => format!("商品 {}", field("product_id")),
        (0 | 1, department) => format!("{department} {}", field("product_id")),
        _ => words.join(" "),
    };
    let mut product = form(field("product_id"), name)?;
    product.department = field("department").to_owned();
    product.category = field("product_category").to_owned();
    Ok(product)
}

fn flag(text: &str, name: &str) -> Result<bool, String> {
    match text {
        "" | "1" | "true" | "yes" | "是" => Ok(true),
        "0" | "false" | "no" | "否" => Ok(false),
        other => Err(format!("{name}: {other:?} is not yes or no")),
    }
}

fn our_row(row: &Row<'_>) -> Result<ProductForm, String> {
    let field = |name: &str| row.get(name);
    let mut product = form(field("sku"), field("name").to_owned())?;
    product.barcodes = field("barcodes")
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| Barcode::parse(c).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    product.department = field("department").to_owned();
    product.category = field("category").to_owned();
    product.unit = match field("unit") {
        "" | "piece" | "件" => Unit::Piece,
        "kg" | "千克" => Unit::Kg,
        other => return Err(format!("unit {other:?} is piece or kg")),
    };
    product.price = match field("price") {
        "" => None,
        text => Some(Money::new(
            parse_amount(text).map_err(|e| format!("price: {e}"))?,
            Currency::CNY,
        )),
    };
    product.earns_points = flag(field("earns_points"), "earns_points")?;
    product.discountable = flag(field("discountable"), "discountable")?;
    product.low_stock = Some(field("low_stock"))
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    Ok(product)
}

/// Sends the products to headquarters as one change set; returns its answer.
pub fn send(
    hub: &str,
    staff: &str,
    products: Vec<ProductForm>,
) -> anyhow::Result<serde_json::Value> {
    let changes: Vec<serde_json::Value> = products
        .into_iter()
        .map(|p| serde_json::json!({"product": p}))
        .collect();
    send_changes(hub, staff, changes)
}

/// Sends one catalogue change set (`{"product": …}`, `{"carried": …}`, …) to headquarters.
pub fn send_changes(
    hub: &str,
    staff: &str,
    changes: Vec<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let body = serde_json::to_vec(&serde_json::json!({"changes": changes}))?;
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(600)))
            .build(),
    );
    let mut response = agent
        .post(format!(
            "{}/api/v1/catalogue/changes",
            hub.trim_end_matches('/')
        ))
        .header("content-type", "application/json")
        .header("x-staff-id", staff)
        .send(&body[..])?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string()?;
    let answer: serde_json::Value =
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    if status != 201 {
        anyhow::bail!("headquarters refused the import ({status}): {answer}");
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rows_are_reported_and_the_rest_kept() {
        let dir = std::env::temp_dir().join(format!("import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("products.csv");
        std::fs::write(
            &path,
            "sku,name,barcodes,department,category,unit,price,low_stock\n\
             A1,矿泉水,6901234567892,GROCERY,饮品,piece,2.00,12\n\
             A2,,,,,,1.00,\n\
             A3,苹果,6901234567892,PRODUCE,水果,kg,9.80,\n\
             A4,香蕉,,PRODUCE,水果,kg,-1,\n\
             A1,重复,,,,,1.00,\n\
             A5,散装米,,GROCERY,米面,kg,4.567,\n\
             bad sku,x,,,,,,\n\
             A6,鸡蛋,6907777777777|12x4,,,,,\n\
             A7,面包,,,,,,\n",
        )
        .unwrap();
        let parsed = read(&path).unwrap();
        let kept: Vec<&str> = parsed.products.iter().map(|p| p.sku.as_str()).collect();
        assert_eq!(kept, ["A1", "A7"]);
        let lines: Vec<u64> = parsed.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8, 9], "{:?}", parsed.bad);
        assert!(parsed.bad[1].problem.contains("already on line 2"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
