//! 消息发送: the outbox's sender. Notices are queued at ingest (`protocol::notice`, stored
//! with the batch that caused them); this thread sends what is due, at most `per_second`, and
//! records each try durably.
//!
//! Delivery is at most once per notice id at the gateway: the id goes as the
//! `Idempotency-Key` of every try, so a try that timed out after the gateway took it, and is
//! tried again, is recognised there (a gateway answers 409 to a key it has; that counts as
//! sent). After a 2xx or a 409 the notice is never posted again. A 5xx, 429, a timeout or a
//! refused connection is tried again with back-off (1 s, 2 s, 4 s … at most 10 minutes), up to
//! `attempts_max`; any other 4xx fails at once. Rules come before the gateway: no marketing
//! without consent (read at send time), none in quiet hours (deferred to their end), nothing to
//! an erased member, nothing older than `stale_hours`, no more than `marketing_per_day`
//! marketing messages to one member in a day (the rest wait for the next morning), no reminder
//! of a coupon used since. Transactional notices have a queue of
//! their own, ahead of marketing. Notices done more than `keep_days` ago are forgotten.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Timelike;
use protocol::MemberId;
use protocol::calendar::StoreCalendar;
use protocol::notice::{Notice, Purpose, Subject};
use serde::Serialize;

use crate::config::NotifyConfig;
use crate::storage::{Delivery, DeliveryState, HubStore};

/// The longest wait between two tries.
const BACKOFF_MAX_MS: u64 = 10 * 60 * 1000;
/// How often the sender looks for due notices when there are none.
const IDLE: Duration = Duration::from_millis(200);
/// How often old notices are forgotten, and how many per write.
const PRUNE_EVERY_MS: u64 = 3_600_000;
const PRUNE_CHUNK: usize = 1_000;

/// A message as the gateway gets it.
#[derive(Debug, Clone, Serialize)]
pub struct Outgoing {
    pub id: String,
    pub member_id: MemberId,
    pub phone: String,
    pub text: String,
    pub purpose: Purpose,
}

/// Why a try did not get through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth another try: the gateway was busy, down or slow.
    Retry(String),
    /// The gateway refused the message itself: trying again will not help.
    Refused(String),
}

/// Where messages go: an SMS or WeChat gateway, or a file.
pub trait Sender: Send + Sync {
    fn send(&self, message: &Outgoing) -> Result<(), SendError>;
}

/// Posts each message as JSON to the gateway's URL, signed (`protocol::notice::signature`).
pub struct HttpSender {
    url: String,
    secret: Vec<u8>,
    agent: ureq::Agent,
}

impl HttpSender {
    pub fn new(url: &str, secret: &str, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self {
            url: url.to_owned(),
            secret: secret.as_bytes().to_vec(),
            agent,
        }
    }
}

impl Sender for HttpSender {
    fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let body = serde_json::to_vec(message).map_err(|e| SendError::Refused(e.to_string()))?;
        let timestamp = crate::ingest::system_now_ms() / 1000;
        let signature = protocol::notice::signature(&self.secret, timestamp, &body);
        let answer = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &message.id)
            .header("x-timestamp", timestamp.to_string())
            .header("x-signature", format!("sha256={signature}"))
            .send(&body[..]);
        match answer {
            Ok(_) => Ok(()),
            // The gateway has this key already: an earlier try got through.
            Err(ureq::Error::StatusCode(409)) => Ok(()),
            Err(ureq::Error::StatusCode(status)) if status >= 500 || status == 429 => {
                Err(SendError::Retry(format!("the gateway answered {status}")))
            }
            Err(ureq::Error::StatusCode(status)) => Err(SendError::Refused(format!(
                "the gateway refused the message ({status})"
            ))),
            Err(e) => Err(SendError::Retry(e.to_string())),
        }
    }
}

/// Appends each message to a file as a JSON line (the demo's gateway).
pub struct FileSender {
    file: std::sync::Mutex<std::fs::File>,
}

impl FileSender {
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: std::sync::Mutex::new(file),
        })
    }
}

impl Sender for FileSender {
    fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let mut line =
            serde_json::to_vec(message).map_err(|e| SendError::Refused(e.to_string()))?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| SendError::Retry("the outbox file is poisoned".into()))?;
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| SendError::Retry(e.to_string()))
    }
}

/// The sender a config names.
pub fn sender(config: &NotifyConfig) -> anyhow::Result<Box<dyn Sender>> {
    Ok(match (&config.url, &config.file) {
        (Some(url), _) => Box::new(HttpSender::new(
            url,
            &config.secret,
            Duration::from_millis(config.timeout_ms),
        )),
        (None, Some(file)) => Box::new(FileSender::open(file)?),
        (None, None) => anyhow::bail!("notify: name a url or a file"),
    })
}

/// The outbox's sending rules and clock.
pub struct Outbox {
    pub storage: Arc<dyn HubStore>,
    pub config: NotifyConfig,
    pub calendar: StoreCalendar,
    pub now_ms: Box<dyn Fn() -> u64 + Send>,
}

/// What one look at the outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub sent: u32,
    pub retrying: u32,
    pub failed: u32,
    pub suppressed: u32,
    pub deferred: u32,
}

impl Outbox {
    /// When quiet hours starting or running at `now_ms` end, if they do.
    fn quiet_until(&self, now_ms: u64) -> Option<u64> {
        let (from, to) = (self.config.quiet_from, self.config.quiet_to);
        if from == to {
            return None;
        }
        let local = self.calendar.local_time(now_ms);
        let hour = local.hour();
        let quiet = match from < to {
            true => hour >= from && hour < to,
            false => hour >= from || hour < to,
        };
        if !quiet {
            return None;
        }
        let into = u64::from(local.minute()) * 60_000 + u64::from(local.second()) * 1000;
        let hours_left = u64::from((to + 24 - hour) % 24);
        Some(now_ms + hours_left * 3_600_000 - into)
    }

    /// The end of quiet hours on the local day after `now_ms` (midnight without quiet hours).
    fn next_morning(&self, now_ms: u64) -> u64 {
        let local = self.calendar.local_time(now_ms);
        let hour = match self.config.quiet_from == self.config.quiet_to {
            true => 0,
            false => self.config.quiet_to,
        };
        let since_midnight = u64::from(local.num_seconds_from_midnight()) * 1000
            + u64::from(local.and_utc().timestamp_subsec_millis());
        now_ms - since_midnight + 86_400_000 + u64::from(hour) * 3_600_000
    }

    /// Forgets notices done (sent, failed, suppressed) more than `keep_days` ago: they hold a
    /// member's personal data, kept no longer than needed. Pending ones stay.
    pub fn prune(&self, now_ms: u64) -> anyhow::Result<usize> {
        let keep_ms = u64::from(self.config.keep_days).saturating_mul(86_400_000);
        let mut gone = 0;
        loop {
            let n = self
                .storage
                .prune_notices(now_ms.saturating_sub(keep_ms), PRUNE_CHUNK)?;
            gone += n;
            if n < PRUNE_CHUNK {
                return Ok(gone);
            }
        }
    }

    /// Sends what is due now, at most `limit`, through `sender`, pacing itself to
    /// `per_second` when `pace` is set.
    pub fn round(&self, sender: &dyn Sender, limit: usize, pace: bool) -> anyhow::Result<Round> {
        let now = (self.now_ms)();
        let mut round = Round::default();
        let gap = Duration::from_millis(1000 / u64::from(self.config.per_second.max(1)));
        let due = self.storage.notices_due(now, limit)?;
        if due.is_empty() {
            return Ok(round);
        }
        // A notice is read as soon as ingest stored it, before the group commit made it
        // durable: make it durable before it is sent, or a crash could take back the entry it
        // came from and give its id to another notice.
        self.storage.flush()?;
        for (notice, delivery) in due {
            let now = (self.now_ms)();
            // One notice that cannot be handled (its member's record damaged) fails alone; the
            // outbox goes on.
            let (delivery, tried) = match self.deliver(sender, &notice, delivery.clone(), now) {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(notice = %notice.id, error = %e, "a notice could not be sent");
                    let failed = Delivery {
                        state: DeliveryState::Failed,
                        last_error: Some(format!("could not be sent: {e}")),
                        done_ms: Some(now),
                        ..delivery
                    };
                    (failed, false)
                }
            };
            match delivery.state {
                DeliveryState::Sent => round.sent += 1,
                DeliveryState::Failed => round.failed += 1,
                DeliveryState::Suppressed => round.suppressed += 1,
                DeliveryState::Pending if tried => round.retrying += 1,
                DeliveryState::Pending => round.deferred += 1,
            }
            self.storage.set_delivery(&notice.id, &delivery)?;
            if tried && pace {
                std::thread::sleep(gap);
            }
        }
        Ok(round)
    }

    /// The rules, then one try; the delivery as it stands after, and whether the gateway was
    /// tried.
    fn deliver(
        &self,
        sender: &dyn Sender,
        notice: &Notice,
        mut d: Delivery,
        now: u64,
    ) -> anyhow::Result<(Delivery, bool)> {
        let suppress = |mut d: Delivery, why: &str| {
            d.state = DeliveryState::Suppressed;
            d.last_error = Some(why.to_owned());
            d.done_ms = Some(now);
            (d, false)
        };
        let stale_ms = self.config.stale_hours.saturating_mul(3_600_000);
        if now.saturating_sub(notice.at_ms) > stale_ms {
            return Ok(suppress(d, "too old to be news"));
        }
        let Some(member) = self.storage.member(&notice.member)? else {
            return Ok(suppress(d, "the member is erased or unknown"));
        };
        if let Subject::CouponExpiring { coupon, .. } = &notice.subject {
            let today = self.calendar.business_date(now);
            let usable = protocol::wallet::CardId::parse(coupon).is_ok_and(|card| {
                self.storage
                    .wallet(&notice.member)
                    .ok()
                    .flatten()
                    .is_some_and(|w| w.usable_coupon(&card, today).is_ok())
            });
            if !usable {
                return Ok(suppress(d, "the coupon was used or is no longer good"));
            }
        }
        let day = self.calendar.local_time(now).date();
        if notice.purpose == Purpose::Marketing {
            if !member.profile.marketing_consent {
                return Ok(suppress(d, "no marketing consent"));
            }
            if let Some(until) = self.quiet_until(now) {
                d.next_ms = until;
                return Ok((d, false));
            }
            if self.storage.sent_on(&notice.member, day)? >= self.config.marketing_per_day {
                d.next_ms = self.next_morning(now);
                d.last_error = Some("the member's marketing messages for today are sent".into());
                return Ok((d, false));
            }
        }
        let outgoing = Outgoing {
            id: notice.id.clone(),
            member_id: notice.member,
            phone: member.profile.phone.to_string(),
            text: notice.text(&member.profile.name, &self.config.texts),
            purpose: notice.purpose,
        };
        d.attempts += 1;
        match sender.send(&outgoing) {
            Ok(()) => {
                d.state = DeliveryState::Sent;
                d.last_error = None;
                d.done_ms = Some(now);
                if notice.purpose == Purpose::Marketing {
                    self.storage.count_sent(&notice.member, day)?;
                }
            }
            Err(SendError::Refused(e)) => {
                d.state = DeliveryState::Failed;
                d.last_error = Some(e);
                d.done_ms = Some(now);
            }
            Err(SendError::Retry(e)) if d.attempts >= self.config.attempts_max => {
                d.state = DeliveryState::Failed;
                d.last_error = Some(format!("gave up after {} tries: {e}", d.attempts));
                d.done_ms = Some(now);
            }
            Err(SendError::Retry(e)) => {
                let backoff = 1000u64
                    .saturating_mul(1 << d.attempts.min(20).saturating_sub(1))
                    .min(BACKOFF_MAX_MS);
                d.next_ms = now + backoff;
                d.last_error = Some(e);
            }
        }
        Ok((d, true))
    }
}

/// Runs the sender on a thread of its own until `stop` is set.
pub fn spawn(
    outbox: Outbox,
    sender: Box<dyn Sender>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || {
            let batch = outbox.config.per_second as usize;
            let mut pruned_ms = 0;
            while !stop.load(Ordering::Relaxed) {
                let now = (outbox.now_ms)();
                if now.saturating_sub(pruned_ms) >= PRUNE_EVERY_MS {
                    pruned_ms = now;
                    match outbox.prune(now) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(notices = n, "the outbox forgot old notices"),
                        Err(e) => tracing::error!(error = %e, "the outbox could not be pruned"),
                    }
                }
                match outbox.round(&*sender, batch, true) {
                    Ok(round) if round.sent + round.retrying + round.failed > 0 => {
                        tracing::debug!(?round, "outbox");
                    }
                    Ok(_) => std::thread::sleep(IDLE),
                    Err(e) => {
                        tracing::error!(error = %e, "the outbox could not be read or written");
                        std::thread::sleep(IDLE * 10);
                    }
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;

    use axum::http::{HeaderMap, StatusCode};
    use protocol::entry::{ChainTip, Entry, Payload, Sealed};
    use protocol::sale::Tender;
    use protocol::wallet::{Wallet, WalletEvent};
    use protocol::{Fen, Hlc, StaffId, StoreId, TxId};

    use super::*;
    use crate::ingest::Ingest;
    use crate::ingest::tests::registration_with;
    use crate::storage::MemHubStore;

    const SECRET: &str = "gateway-secret-0123456789";

    /// What the gateway saw: every post by key, and what it delivered.
    #[derive(Default)]
    struct Seen {
        posts: Vec<String>,
        delivered: HashMap<String, u32>,
        texts: Vec<String>,
    }

    /// A real HTTP gateway on loopback that checks the signature, and by key: answers
    /// `fail-<key>` with 500 on the first try, `slow-<key>` late on the second (after taking
    /// it), 409 to a key it has delivered, and 400 to a key in `refuse`.
    fn gateway(
        fail: &'static str,
        slow: &'static str,
        refuse: &'static str,
    ) -> (String, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let state = seen.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().route(
                    "/sms",
                    axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                        let seen = state.clone();
                        async move {
                            let header = |name: &str| {
                                headers
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned()
                            };
                            let key = header("idempotency-key");
                            let ts: u64 = header("x-timestamp").parse().unwrap_or(0);
                            let want = format!(
                                "sha256={}",
                                protocol::notice::signature(SECRET.as_bytes(), ts, &body)
                            );
                            if header("x-signature") != want {
                                return StatusCode::UNAUTHORIZED;
                            }
                            let tries = {
                                let mut seen = seen.lock().unwrap();
                                seen.posts.push(key.clone());
                                seen.posts.iter().filter(|k| **k == key).count()
                            };
                            if key == refuse {
                                return StatusCode::BAD_REQUEST;
                            }
                            if key == fail && tries == 1 {
                                return StatusCode::INTERNAL_SERVER_ERROR;
                            }
                            let fresh = {
                                let mut s = seen.lock().unwrap();
                                let fresh = !s.delivered.contains_key(&key);
                                if fresh {
                                    s.delivered.insert(key.clone(), 1);
                                    let v: serde_json::Value =
                                        serde_json::from_slice(&body).unwrap();
                                    s.texts.push(v["text"].as_str().unwrap_or("").to_owned());
                                }
                                fresh
                            };
                            if !fresh {
                                return StatusCode::CONFLICT;
                            }
                            if key == slow {
                                tokio::time::sleep(Duration::from_millis(1_500)).await;
                            }
                            StatusCode::OK
                        }
                    }),
                );
                axum::serve(listener, app).await.unwrap();
            });
        });
        let address = rx.recv().unwrap();
        (format!("http://{address}/sms"), seen)
    }

    fn entry(store: &StoreId, tip: ChainTip, payload: Payload, at_ms: u64) -> Entry {
        Entry {
            origin: store.clone(),
            seq: tip.next_seq,
            hlc: Hlc {
                wall_ms: at_ms,
                logical: 0,
            },
            business_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
            staff: StaffId::system(),
            tx: TxId::parse(&format!("{store}-tx-{:04}", tip.next_seq)).unwrap(),
            prev_hash: tip.hash,
            payload,
        }
    }

    /// 2026-12-05 10:00 in Shanghai.
    const MORNING_MS: u64 = 1_796_436_000_000;

    /// A hub that queues notices, where S001 registered a member who agreed to marketing
    /// and one who did not, and topped each up (a transactional notice each); then
    /// headquarters gave both a campaign coupon (a marketing notice each).
    fn outbox_with_notices() -> (Arc<MemHubStore>, Vec<String>) {
        let storage = Arc::new(MemHubStore::default());
        let (ingest, _) = queue_notices(storage.clone());
        ingest.flush().unwrap();
        drop(ingest);
        let ids = storage
            .latest_notices(100)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n.id)
            .collect();
        (storage, ids)
    }

    /// `outbox_with_notices` on any storage, not flushed; the ingest and the two members.
    fn queue_notices(storage: Arc<dyn HubStore>) -> (Ingest, Vec<(MemberId, StoreId)>) {
        let mut ingest = Ingest::open(storage, Box::new(|| MORNING_MS)).unwrap();
        ingest.set_notify(true);
        let s001 = StoreId::parse("S001").unwrap();
        let mut tip = ChainTip::GENESIS;
        let mut batch = Vec::new();
        let mut members = Vec::new();
        for (phone, consent) in [("13900000001", true), ("13900000002", false)] {
            let reg = registration_with(&s001, tip, phone, consent);
            let member_id = match &reg.payload {
                Payload::MemberRegistered { member_id, .. } => *member_id,
                _ => unreachable!(),
            };
            members.push((member_id, s001.clone()));
            tip = tip.extend(&s001, &reg).unwrap();
            batch.push(Sealed::new(reg));
            let ops = Wallet::default().top_up(&s001, 10_000, 0).unwrap();
            let payload = Payload::Wallet {
                member_id,
                event: WalletEvent::TopUp {
                    paid: Fen(10_000),
                    bonus: Fen(0),
                    rule: None,
                    tender: Tender::Cash {
                        tendered: Fen(10_000),
                        change: Fen(0),
                    },
                },
                ops,
            };
            let top_up = entry(&s001, tip, payload, MORNING_MS);
            tip = tip.extend(&s001, &top_up).unwrap();
            batch.push(Sealed::new(top_up));
        }
        ingest.ingest(&s001, batch, tip.next_seq - 1).unwrap();
        crate::ingest::marketing::tests::publish(&mut ingest, None, 1, &["C1"]);
        ingest
            .run_campaign(
                "C1",
                crate::ingest::marketing::tests::DAY,
                &members,
                &StaffId::system(),
            )
            .unwrap();
        (ingest, members)
    }

    fn outbox(storage: Arc<dyn HubStore>, clock: Arc<AtomicU64>, url: Option<String>) -> Outbox {
        Outbox {
            storage,
            config: NotifyConfig {
                url,
                secret: SECRET.into(),
                timeout_ms: 500,
                attempts_max: 5,
                ..NotifyConfig::default()
            },
            calendar: StoreCalendar::default(),
            now_ms: Box::new(move || clock.load(Ordering::Relaxed)),
        }
    }

    fn state_of(storage: &MemHubStore, id: &str) -> Delivery {
        storage
            .latest_notices(100)
            .unwrap()
            .into_iter()
            .find(|(n, _)| n.id == id)
            .unwrap()
            .1
    }

    #[test]
    fn a_gateway_that_fails_then_is_slow_gets_each_message_once_and_none_after() {
        let (storage, ids) = outbox_with_notices();
        assert_eq!(ids.len(), 4, "two top-ups and two coupons: {ids:?}");
        let transactional: Vec<&String> = ids.iter().filter(|i| i.ends_with("-sv")).collect();
        let (fail, slow) = (transactional[0].clone(), transactional[1].clone());
        let (url, seen) = gateway(fail.clone().leak(), slow.clone().leak(), "none");
        let clock = Arc::new(AtomicU64::new(MORNING_MS));
        let outbox = outbox(storage.clone(), clock.clone(), Some(url.clone()));
        let sender = HttpSender::new(&url, SECRET, Duration::from_millis(500));
        for _ in 0..6 {
            outbox.round(&sender, 100, false).unwrap();
            clock.fetch_add(60_000, Ordering::Relaxed);
        }
        let seen = seen.lock().unwrap();
        for id in [&fail, &slow] {
            assert_eq!(state_of(&storage, id).state, DeliveryState::Sent, "{id}");
            assert_eq!(seen.delivered.get(id), Some(&1), "{id} delivered once");
        }
        // The failing one: a 500, then through; the slow one: taken but answered too late,
        // then recognised by its key (409).
        let posts = |id: &str| seen.posts.iter().filter(|k| *k == id).count();
        assert_eq!((posts(&fail), posts(&slow)), (2, 2), "{:?}", seen.posts);
        assert_eq!(state_of(&storage, &slow).attempts, 2);
        // The marketing coupon: sent to the member who agreed, suppressed for the other.
        let coupons: Vec<Delivery> = ids
            .iter()
            .filter(|i| i.ends_with("-coupon"))
            .map(|i| state_of(&storage, i))
            .collect();
        let mut states: Vec<DeliveryState> = coupons.iter().map(|d| d.state.clone()).collect();
        states.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(states, vec![DeliveryState::Sent, DeliveryState::Suppressed]);
        assert_eq!(
            seen.delivered.len(),
            3,
            "nothing to the member without consent"
        );
        assert!(
            seen.texts
                .iter()
                .any(|t| t.contains("储值账户存入100.00元")),
            "{:?}",
            seen.texts
        );
    }

    #[test]
    fn a_refused_message_fails_at_once_and_marketing_waits_out_quiet_hours() {
        let (storage, ids) = outbox_with_notices();
        let refused = ids.iter().find(|i| i.ends_with("-sv")).unwrap().clone();
        let (url, seen) = gateway("none", "none", refused.clone().leak());
        // 22:30 in Shanghai: quiet hours (21 to 9) for marketing.
        let night = MORNING_MS + 12 * 3_600_000 + 30 * 60_000;
        let clock = Arc::new(AtomicU64::new(night));
        let outbox = outbox(storage.clone(), clock.clone(), Some(url.clone()));
        let sender = HttpSender::new(&url, SECRET, Duration::from_millis(500));
        let round = outbox.round(&sender, 100, false).unwrap();
        assert_eq!(
            (round.sent, round.failed, round.deferred, round.suppressed),
            (1, 1, 1, 1),
            "{round:?}"
        );
        let failed = state_of(&storage, &refused);
        assert_eq!((failed.state, failed.attempts), (DeliveryState::Failed, 1));
        let coupon = ids
            .iter()
            .map(|i| state_of(&storage, i))
            .find(|d| d.state == DeliveryState::Pending)
            .unwrap();
        // Deferred to 09:00 the next morning.
        assert_eq!(coupon.next_ms, MORNING_MS + 23 * 3_600_000);
        assert_eq!(seen.lock().unwrap().posts.len(), 2);
    }

    /// Takes every message, in order.
    #[derive(Default)]
    struct Taken(Mutex<Vec<Outgoing>>);

    impl Sender for Taken {
        fn send(&self, message: &Outgoing) -> Result<(), SendError> {
            self.0.lock().unwrap().push(message.clone());
            Ok(())
        }
    }

    #[test]
    fn transactional_notices_go_before_a_marketing_backlog() {
        let (storage, _) = outbox_with_notices();
        let outbox = outbox(storage.clone(), Arc::new(AtomicU64::new(MORNING_MS)), None);
        let taken = Taken::default();
        outbox.round(&taken, 2, false).unwrap();
        let purposes: Vec<Purpose> = taken.0.lock().unwrap().iter().map(|m| m.purpose).collect();
        assert_eq!(purposes, vec![Purpose::Transactional; 2]);
    }

    #[test]
    fn a_notice_is_durable_before_it_is_sent() {
        let storage = Arc::new(MemHubStore::default());
        let (ingest, _) = queue_notices(storage.clone());
        let outbox = outbox(storage.clone(), Arc::new(AtomicU64::new(MORNING_MS)), None);
        let taken = Taken::default();
        outbox.round(&taken, 100, false).unwrap();
        assert_eq!(taken.0.lock().unwrap().len(), 3);
        // The hub dies after sending: what was sent is still there, sent.
        drop(ingest);
        storage.crash();
        for message in taken.0.lock().unwrap().iter() {
            assert_eq!(state_of(&storage, &message.id).state, DeliveryState::Sent);
        }
    }

    #[test]
    fn a_notice_that_cannot_be_read_fails_alone_and_the_outbox_goes_on() {
        let dir = std::env::temp_dir().join(format!("hub-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let storage = Arc::new(crate::storage::SledHubStore::open(&dir).unwrap());
        let (ingest, members) = queue_notices(storage.clone());
        ingest.flush().unwrap();
        let damaged = members[0].0;
        storage
            .db()
            .insert(format!("m/{damaged}"), &b"not a member"[..])
            .unwrap();
        let outbox = outbox(storage.clone(), Arc::new(AtomicU64::new(MORNING_MS)), None);
        let taken = Taken::default();
        let round = outbox.round(&taken, 100, false).unwrap();
        assert_eq!(
            (round.failed, round.sent, round.suppressed),
            (2, 1, 1),
            "{round:?}"
        );
        let sent = taken.0.lock().unwrap();
        assert!(sent.iter().all(|m| m.member_id != damaged));
        let counts = storage.notice_counts().unwrap();
        assert_eq!((counts.failed, counts.sent, counts.pending), (2, 1, 0));
        drop((sent, outbox, ingest));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn done_notices_are_forgotten_after_keep_days_and_pending_ones_stay() {
        let dir = std::env::temp_dir().join(format!("hub-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let storage = Arc::new(crate::storage::SledHubStore::open(&dir).unwrap());
        let (ingest, _) = queue_notices(storage.clone());
        ingest.flush().unwrap();
        // 22:30: the marketing notice to the member who agreed waits out quiet hours.
        let night = MORNING_MS + 12 * 3_600_000 + 30 * 60_000;
        let clock = Arc::new(AtomicU64::new(night));
        let outbox = outbox(storage.clone(), clock.clone(), None);
        outbox.round(&Taken::default(), 100, false).unwrap();
        assert_eq!(outbox.prune(night).unwrap(), 0, "kept for 30 days");
        let month = night + 31 * 86_400_000;
        assert_eq!(outbox.prune(month).unwrap(), 3);
        let left = storage.latest_notices(100).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1.state, DeliveryState::Pending);
        let counts = storage.notice_counts().unwrap();
        assert_eq!((counts.pending, counts.sent, counts.suppressed), (1, 0, 0));
        // Counted again from the disk when the hub starts.
        drop((outbox, ingest));
        let again = Arc::into_inner(storage).unwrap();
        drop(again);
        let reopened = crate::storage::SledHubStore::open(&dir).unwrap();
        assert_eq!(reopened.notice_counts().unwrap(), counts);
        drop(reopened);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_member_gets_at_most_marketing_per_day_and_the_rest_the_next_morning() {
        let (storage, _) = outbox_with_notices();
        // Three more marketing messages to the member who agreed: greetings, say.
        let agreed = storage
            .latest_notices(100)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .find(|n| {
                n.purpose == Purpose::Marketing
                    && storage
                        .member(&n.member)
                        .unwrap()
                        .unwrap()
                        .profile
                        .marketing_consent
            })
            .unwrap();
        let more: Vec<Notice> = (0..3)
            .map(|i| Notice {
                id: format!("birthday-{}-{i}", agreed.member),
                subject: Subject::Birthday,
                ..agreed.clone()
            })
            .collect();
        assert_eq!(storage.queue_notices(&more).unwrap(), 3);
        let clock = Arc::new(AtomicU64::new(MORNING_MS));
        let outbox = outbox(storage.clone(), clock.clone(), None);
        let taken = Taken::default();
        outbox.round(&taken, 100, false).unwrap();
        let to_agreed = |taken: &Taken| {
            taken
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|m| m.member_id == agreed.member && m.purpose == Purpose::Marketing)
                .count()
        };
        assert_eq!(to_agreed(&taken), 2, "the default limit is two a day");
        let waiting: Vec<Delivery> = storage
            .latest_notices(100)
            .unwrap()
            .into_iter()
            .filter(|(_, d)| d.state == DeliveryState::Pending)
            .map(|(_, d)| d)
            .collect();
        assert_eq!(waiting.len(), 2);
        // 09:00 the next morning, when quiet hours end.
        assert!(
            waiting
                .iter()
                .all(|d| d.next_ms == MORNING_MS + 23 * 3_600_000)
        );
        clock.store(MORNING_MS + 23 * 3_600_000, Ordering::Relaxed);
        outbox.round(&taken, 100, false).unwrap();
        assert_eq!(to_agreed(&taken), 4);
    }
}
