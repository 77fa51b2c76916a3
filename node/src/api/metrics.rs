//! The node's `GET /metrics`: every request by route (`crate::metrics`), the journal's groups
//! and flushes, and this store's sync as it stands at each scrape.

use axum::extract::State;
use axum::response::Response;
use prometheus_client::metrics::gauge::Gauge;

use super::app::St;
use super::*;
use crate::metrics::Metrics;

/// The node's metrics, and the gauges set at each scrape.
#[derive(Clone)]
pub struct NodeMetrics {
    pub all: std::sync::Arc<Metrics>,
    log_len: Gauge,
    backlog: Gauge,
    feed_applied: Gauge,
    online: Gauge,
    since_sync: Gauge,
    connections: Gauge,
    certificate: Gauge,
}

impl NodeMetrics {
    pub fn new(group: &crate::journal::GroupMetrics) -> Self {
        let all = Metrics::new("node");
        all.histogram(
            "journal_group_commands",
            "Commands answered by one flush (group commit)",
            group.commands.clone(),
        );
        all.histogram(
            "journal_flush_seconds",
            "Time one group's flush took (fsync included)",
            group.flush_seconds.clone(),
        );
        Self {
            log_len: all.gauge("log_entries", "Entries in this store's log"),
            backlog: all.gauge(
                "sync_backlog_entries",
                "Entries of this store's log not yet held by headquarters",
            ),
            feed_applied: all.gauge("feed_applied", "Records of headquarters' feed applied here"),
            online: all.gauge("sync_online", "1 while connected to headquarters"),
            since_sync: all.gauge(
                "sync_seconds_since_ack",
                "Seconds since headquarters last acknowledged (-1: not since start)",
            ),
            connections: all.gauge(
                "sync_connections",
                "Connections made to headquarters since start",
            ),
            certificate: all.gauge(
                "sync_certificate_seconds_left",
                "Seconds until this store's certificate runs out (renew before 0)",
            ),
            all,
        }
    }
}

/// Prometheus' scrape: counts and times, no member data.
pub(super) async fn metrics(State(app): St) -> Result<Response, ApiError> {
    let status = app.sync.borrow().clone();
    let log_len = status
        .log_len
        .max(app.views.log_length(app.settings.store_id.as_str())?);
    let Some(m) = &app.metrics else {
        return Err(ApiError::new(
            Code::NotFound,
            "metrics are off in node.toml",
        ));
    };
    let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    m.log_len.set(gauge(log_len));
    m.backlog
        .set(gauge(log_len.saturating_sub(status.acked_seq)));
    m.feed_applied.set(gauge(status.feed_applied));
    m.online
        .set(i64::from(status.link == crate::uplink::Link::Online));
    m.connections.set(gauge(status.connections));
    let now = app.clock.now_ms();
    m.since_sync.set(
        status
            .last_sync_ms
            .map_or(-1, |at| gauge(now.saturating_sub(at) / 1000)),
    );
    if let Some(at) = status.certificate_expires_ms {
        let left = i128::from(at) - i128::from(now);
        m.certificate
            .set(i64::try_from(left / 1000).unwrap_or(i64::MIN));
    }
    Ok(m.all.answer())
}
