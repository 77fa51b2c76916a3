//! The replay's HTTP client: retries with the same idempotency key, and waiting for a state.

use super::*;

pub(super) fn new_agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

/// How long a request is tried again while the store does not answer (a chain of hundreds of
/// processes starting on two cores keeps some busy for a while).
const RETRY_FOR: Duration = Duration::from_secs(120);

/// Sends a request until it gets an answer: a transport error, 503, or 408 (a store too busy
/// to answer in its time: the outcome unknown) is retried with the same idempotency key (every request that writes carries one, so a retry is safe) for up to
/// `RETRY_FOR`, waiting longer each time; then fails naming the request, the tries and the
/// last error. Returns the status and the JSON body.
pub(super) fn send(
    agent: &ureq::Agent,
    url: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let started = Instant::now();
    let mut tries = 0u32;
    loop {
        tries += 1;
        let answer = match body {
            Some(body) => {
                let mut req = agent
                    .post(url)
                    .header("x-staff-id", "replay")
                    .header("content-type", "application/json");
                if let Some(key) = key {
                    req = req.header("idempotency-key", key);
                }
                req.send(serde_json::to_vec(body)?.as_slice())
            }
            None => agent.get(url).call(),
        };
        let last = match answer {
            Ok(mut r) if !matches!(r.status().as_u16(), 503 | 408) => {
                let status = r.status().as_u16();
                let text = r.body_mut().read_to_string()?;
                return Ok((
                    status,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                ));
            }
            Ok(r) => format!("answered {}", r.status()),
            // Some transport errors print as nothing: their debug form says what they are.
            Err(e) => match e.to_string() {
                text if text.trim().is_empty() => format!("{e:?}"),
                text => text,
            },
        };
        anyhow::ensure!(
            started.elapsed() < RETRY_FOR,
            "{} {url}{}: no answer after {tries} tries in {} s; the last: {last}",
            if body.is_some() { "POST" } else { "GET" },
            key.map(|k| format!(" (idempotency key {k})"))
                .unwrap_or_default(),
            started.elapsed().as_secs()
        );
        std::thread::sleep(Duration::from_millis(250 << tries.min(3)));
    }
}

pub(super) fn get(agent: &ureq::Agent, url: &str) -> anyhow::Result<Value> {
    let (status, body) = send(agent, url, None, None)?;
    anyhow::ensure!(status == 200, "{url}: {status} {body}");
    Ok(body)
}

pub(super) fn wait_for(
    what: &str,
    seconds: u64,
    mut done: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while !done()? {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(seconds),
            "waited {seconds} s for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
