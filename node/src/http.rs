//! The HTTP server loop around the router, with the limits `axum::serve` does not set
//! (`protocol::web::HttpLimits`): a cap on open connections, in all and per client address, a
//! timeout on reading a request's headers that also closes a connection idle between requests,
//! a timeout on each request, and one on a client that stops reading an answer.
//! Headquarters compiles this same file (`#[path]` in `hub/src/lib.rs`): the hub does not
//! depend on the node and `protocol` does no I/O, so neither crate can hold it for both.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;
use hyper_util::rt::{TokioIo, TokioTimer};
use protocol::web::HttpLimits;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::Instrument;

/// A connection's places: one of the server's and one of its address's, given back on drop.
struct Place {
    _permit: OwnedSemaphorePermit,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    address: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.address);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish
/// (for at most `request_secs`).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.connections_max));
    let per_address: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let (closing, close) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused = 0u64;
    let mut last_said: Option<std::time::Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors or a connection reset before accept: wait, go on.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let place = permits.clone().try_acquire_owned().ok().and_then(|permit| {
            let mut map = per_address.lock().unwrap_or_else(|e| e.into_inner());
            let held = map.entry(peer.ip()).or_default();
            (*held < limits.connections_per_address_max).then(|| {
                *held += 1;
                Place {
                    _permit: permit,
                    per_address: per_address.clone(),
                    address: peer.ip(),
                }
            })
        });
        let Some(place) = place else {
            drop(stream);
            // Said at most once a second: a flood of connections is not a flood of log lines.
            refused += 1;
            if last_said.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                tracing::warn!(%peer, max = limits.connections_max, refused, "too many connections: closed");
                last_said = Some(std::time::Instant::now());
            }
            continue;
        };
        let router = router.clone();
        let mut close = close.clone();
        tokio::spawn(
            async move {
                let timeout = Duration::from_secs(limits.request_secs);
                let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
                    request
                        .extensions_mut()
                        .insert(protocol::web::Peer(peer.ip()));
                    let mut router = router.clone();
                    async move {
                        let call = tower_service::Service::call(&mut router, request);
                        Ok::<_, std::convert::Infallible>(
                            match tokio::time::timeout(timeout, call).await {
                                Ok(Ok(response)) => response,
                                Ok(Err(never)) => match never {},
                                Err(_) => timed_out(),
                            },
                        )
                    }
                });
                // A client that stops reading an answer loses its connection after `write_secs`.
                let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
                stream.set_write_timeout(Some(Duration::from_secs(limits.write_secs)));
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(limits.header_read_secs));
                let connection = http.serve_connection(TokioIo::new(Box::pin(stream)), service);
                let mut connection = std::pin::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => {}
                    _ = async { close.wait_for(|closing| *closing).await.map(|_| ()) } => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
                drop(place);
            }
            .in_current_span(),
        );
    }
    // Open connections finish their request and close; new ones are no longer accepted. A
    // connection that does not finish within a request's time is left behind.
    let _ = closing.send(true);
    drop(close);
    let drain = Duration::from_secs(limits.request_secs);
    if tokio::time::timeout(drain, closing.closed()).await.is_err() {
        tracing::warn!("connections still open at shutdown: left behind");
    }
    Ok(())
}

/// A request over `request_secs`: 408 with the error body and headers every answer has.
fn timed_out() -> axum::response::Response {
    let (code, message, detail) = protocol::web::router_error(408).unwrap_or_default();
    let mut response = (
        axum::http::StatusCode::REQUEST_TIMEOUT,
        axum::Json(serde_json::json!({"code": code, "message": message, "detail": detail})),
    )
        .into_response();
    for (name, value) in protocol::web::SECURITY_HEADERS {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static(name),
            axum::http::HeaderValue::from_static(value),
        );
    }
    response
}
