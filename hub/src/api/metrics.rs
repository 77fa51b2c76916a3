//! Headquarters' `GET /metrics`: every request by route (`crate::metrics`), what the ingest
//! thread did (entries, asks, recalls, flushes), and as it stands at each scrape the stores
//! connected and behind, the feed, and the outbox by state.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::*;
use crate::metrics::Metrics;

/// A notice's state, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct State {
    pub state: String,
}

/// The hub's metrics, and the gauges set at each scrape.
#[derive(Clone)]
pub struct HubMetrics {
    pub all: Arc<Metrics>,
    stores: Gauge,
    connected: Gauge,
    behind: Gauge,
    feed: Gauge,
    outbox: Family<State, Gauge>,
}

impl HubMetrics {
    pub fn new(ingest: &crate::ingest::IngestMetrics) -> Self {
        let all = Metrics::new("hub");
        all.counter(
            "ingest_entries",
            "Entries taken from stores' logs",
            ingest.entries.clone(),
        );
        all.counter(
            "rights_asks_answered",
            "Stores' asks for rights answered",
            ingest.asks.clone(),
        );
        all.counter(
            "rights_recalls",
            "Recalls of rights sent to stores",
            ingest.recalls.clone(),
        );
        all.histogram(
            "ingest_flush_seconds",
            "Time one group's flush took (fsync included)",
            ingest.flush_seconds.clone(),
        );
        let outbox = Family::<State, Gauge>::default();
        all.family("outbox_notices", "Notices to members, by state", &outbox);
        Self {
            stores: all.gauge("stores", "Stores headquarters has heard from"),
            connected: all.gauge("stores_connected", "Stores connected now"),
            behind: all.gauge(
                "stores_entries_behind",
                "Entries stores have written that headquarters does not hold yet, all stores",
            ),
            feed: all.gauge("feed_records", "Records in the feed"),
            outbox,
            all,
        }
    }
}

/// Prometheus' scrape: counts and times, no member data.
pub(super) async fn metrics(axum::extract::State(hq): axum::extract::State<Hq>) -> Response {
    let rows = match hq.ingest.stores().await {
        Ok(rows) => rows,
        Err(e) => return unavailable(e.to_string()),
    };
    let counts = match read(&hq, |storage| storage.notice_counts()).await {
        Ok(counts) => counts,
        Err(answer) => return answer,
    };
    let m = &hq.metrics;
    let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    m.stores.set(gauge(rows.len() as u64));
    m.connected
        .set(gauge(rows.iter().filter(|r| r.connected).count() as u64));
    m.behind
        .set(gauge(rows.iter().map(|r| r.entries_behind).sum()));
    m.feed.set(gauge(*hq.ingest.feed_len().borrow()));
    for (state, n) in [
        ("pending", counts.pending),
        ("sent", counts.sent),
        ("failed", counts.failed),
        ("suppressed", counts.suppressed),
    ] {
        m.outbox
            .get_or_create(&State {
                state: state.into(),
            })
            .set(gauge(n));
    }
    m.all.answer()
}
