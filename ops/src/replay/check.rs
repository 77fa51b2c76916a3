//! What the CSV says the reports must show, what the chain reports, and the differences.

use super::*;

/// Figures the CSV gives, in fen and counts.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// (store, day) → (baskets, fen)
    pub store_days: BTreeMap<(String, NaiveDate), (u64, i64)>,
    /// department → fen
    pub departments: BTreeMap<String, i64>,
    /// member id → (baskets, fen)
    pub members: BTreeMap<String, (u64, i64)>,
}

/// What the CSV says the reports must show (`catalogue`: the products file, for departments).
pub fn expected(
    slice: &Slice,
    catalogue: &[protocol::catalogue::ProductForm],
    members: &HashMap<u32, String>,
) -> Figures {
    let department: HashMap<u64, &str> = catalogue
        .iter()
        .filter_map(|p| Some((p.sku.as_str().parse().ok()?, p.department.as_str())))
        .collect();
    let mut f = Figures::default();
    for b in &slice.baskets {
        let day = f
            .store_days
            .entry((store_id(b.store), b.at.date()))
            .or_default();
        day.0 += 1;
        day.1 += b.fen();
        if let Some(m) = members.get(&b.household) {
            let m = f.members.entry(m.clone()).or_default();
            m.0 += 1;
            m.1 += b.fen();
        }
        for l in &b.lines {
            let d = department.get(&l.product).copied().unwrap_or_default();
            *f.departments.entry(d.to_owned()).or_default() += l.fen;
        }
    }
    f
}

pub(super) fn fen_in(v: &Value) -> i64 {
    v["amount"]
        .as_str()
        .and_then(|s| fen_of(s).ok())
        .unwrap_or(i64::MIN)
}

/// The same figures from headquarters' reports.
pub fn reported(
    hub: &str,
    stores: &[u32],
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<Figures> {
    let agent = new_agent();
    let mut f = Figures::default();
    let period = format!("from={from}&to={to}");
    for store in stores {
        let s = store_id(*store);
        let url = format!("{hub}/api/v1/reports/sales?{period}&by=day&store={s}");
        for row in get(&agent, &url)?["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let day: NaiveDate = row["day"]
                .as_str()
                .unwrap_or("")
                .parse()
                .map_err(|e| anyhow::anyhow!("{url}: day {row}: {e}"))?;
            let sales = row["sales"].as_u64().unwrap_or(0);
            f.store_days
                .insert((s.clone(), day), (sales, fen_in(&row["net"])));
        }
    }
    let url = format!("{hub}/api/v1/reports/sales?{period}&by=department");
    for row in get(&agent, &url)?["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let d = row["department"].as_str().unwrap_or("").to_owned();
        f.departments.insert(d, fen_in(&row["net"]));
    }
    let url = format!("{hub}/api/v1/reports/members?{period}");
    for row in get(&agent, &url)?["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let m = row["member_id"].as_str().unwrap_or("").to_owned();
        f.members
            .insert(m, (row["sales"].as_u64().unwrap_or(0), fen_in(&row["net"])));
    }
    Ok(f)
}

/// Every figure that differs, one line each.
pub fn differences(want: &Figures, got: &Figures) -> Vec<String> {
    fn diff<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug + Default>(
        what: &str,
        want: &BTreeMap<K, V>,
        got: &BTreeMap<K, V>,
        out: &mut Vec<String>,
    ) {
        let none = V::default();
        let keys: BTreeSet<&K> = want.keys().chain(got.keys()).collect();
        for k in keys {
            let (w, g) = (want.get(k).unwrap_or(&none), got.get(k).unwrap_or(&none));
            if w != g {
                out.push(format!(
                    "{what} {k:?}: the CSV says {w:?}, headquarters {g:?}"
                ));
            }
        }
    }
    let mut out = Vec::new();
    diff("store and day", &want.store_days, &got.store_days, &mut out);
    diff("department", &want.departments, &got.departments, &mut out);
    diff("member", &want.members, &got.members, &mut out);
    out
}

/// Each store's own report (by day, and by department) is headquarters' report for that store.
pub fn stores_agree(chain: &Chain, from: NaiveDate, to: NaiveDate) -> anyhow::Result<Vec<String>> {
    let agent = new_agent();
    let mut out = Vec::new();
    for (store, base) in &chain.nodes {
        let s = store_id(*store);
        for by in ["day", "department", "tender"] {
            let query = format!("api/v1/reports/sales?from={from}&to={to}&by={by}");
            let own = get(&agent, &format!("{base}/{query}"))?;
            let hq = get(&agent, &format!("{}/{query}&store={s}", chain.hub))?;
            if own["rows"].as_array().is_none_or(Vec::is_empty) {
                out.push(format!("{s} reports no sales by {by}"));
            } else if own != hq {
                out.push(format!(
                    "{s}'s own report by {by} differs from headquarters'"
                ));
            }
        }
    }
    Ok(out)
}
