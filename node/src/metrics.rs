//! Metrics for Prometheus (`GET /metrics`, OpenMetrics text) — the node's, and the hub's, which
//! compiles this file: every request counted by route, method and status, and timed by route;
//! and what each side registers besides (the journal's groups and flushes, sync, the outbox).
//! Counts and times only: no member, phone or amount is ever a label.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A request's route (the path pattern, never the path: ids stay out) and method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    pub method: String,
    pub route: String,
}

/// A request's route, method and answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Answer {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Seconds from 0.5 ms doubling to about 16 s: a till's request to a slow report.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
}

/// One process side's metrics: its registry and the HTTP ones.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<Answer, Counter>,
    latency: Family<Route, Histogram>,
}

impl Metrics {
    /// Metrics named `<prefix>_…` (`node` or `hub`).
    pub fn new(prefix: &str) -> Arc<Self> {
        let mut registry = Registry::with_prefix(prefix);
        let requests = Family::<Answer, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        let latency = Family::<Route, Histogram>::new_with_constructor(seconds as fn() -> _);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route and method",
            latency.clone(),
        );
        Arc::new(Self {
            registry: Mutex::new(registry),
            requests,
            latency,
        })
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a counter (its name gains `_total`) and gives it back.
    pub fn counter(&self, name: &str, help: &str, counter: Counter) -> Counter {
        self.registry().register(name, help, counter.clone());
        counter
    }

    /// Registers a gauge, set by its owner (or at each scrape).
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        self.registry().register(name, help, gauge.clone());
        gauge
    }

    /// Registers a family of metrics by label.
    pub fn family<L, M>(&self, name: &str, help: &str, family: &Family<L, M>)
    where
        Family<L, M>: prometheus_client::registry::Metric + Clone,
    {
        self.registry().register(name, help, family.clone());
    }

    /// Registers a histogram its owner observes.
    pub fn histogram(&self, name: &str, help: &str, histogram: Histogram) -> Histogram {
        self.registry().register(name, help, histogram.clone());
        histogram
    }

    /// A histogram of seconds, 0.5 ms to about 16 s.
    pub fn seconds() -> Histogram {
        seconds()
    }

    /// Everything, as Prometheus reads it.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry())?;
        Ok(out)
    }

    /// The answer to `GET /metrics`.
    pub fn answer(&self) -> Response {
        match self.render() {
            Ok(text) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                text,
            )
                .into_response(),
            Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

/// Counts and times every request that matched a route (a `route_layer`).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let answer = next.run(request).await;
    let labels = Route { method, route };
    metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&Answer {
            method: labels.method,
            route: labels.route,
            status: answer.status().as_u16(),
        })
        .inc();
    answer
}
