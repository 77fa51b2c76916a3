//! The uplink: one long-lived QUIC connection to headquarters (mutual TLS), driving the store's
//! end of the sync session (`protocol::sync::UplinkSession`). It pushes the log's backlog,
//! applies the hub's feed through the journal, reconnects with jittered exponential back-off,
//! and publishes its state for the API. Cashiers never wait for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use protocol::ask::Tracker;
use protocol::sync::{
    self, Ask, AskAnswer, FeedItem, HubMsg, Recall, SyncError, UplinkEvent, UplinkSession,
};
use protocol::{StaffId, StoreId};
use quinn::{RecvStream, SendStream};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::config::SyncConfig;
use crate::journal::{
    Command, Control, JournalHandle, Rejection, Request, WalletAction, WalletRequest,
};
use crate::views::Views;

/// The first wait before reconnecting; it doubles up to `retry_delay_ms_max`.
const RETRY_DELAY_MS_MIN: u64 = 200;
/// Feed batches received and not yet applied, at most; the session waits when this many are.
const FEED_QUEUE: usize = 16;
/// Batches that queued while the journal applied the one before go in together, up to this
/// many items.
const FEED_MERGE_ITEMS_MAX: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// No headquarters configured: the store runs on its own.
    Disabled,
    Connecting,
    Online,
    Offline,
}

/// What the till's "link" indicator shows.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    pub link: Link,
    pub hub: Option<String>,
    /// Entries of this store's log headquarters holds durably.
    pub acked_seq: u64,
    /// Entries in this store's log.
    pub log_len: u64,
    /// Entries not yet at headquarters.
    pub backlog: u64,
    /// When headquarters last acknowledged (ms since the epoch), if ever since start.
    pub last_sync_ms: Option<u64>,
    /// How much of the hub's feed (other stores' member changes) is applied here.
    pub feed_applied: u64,
    pub last_error: Option<String>,
    /// Headquarters refuses this store (it fenced it): why. Member money stops here until
    /// the store is re-enrolled, since nothing it writes counts any more.
    pub refused: Option<String>,
    /// When this store's certificate runs out (ms since the epoch): it must be renewed before.
    pub certificate_expires_ms: Option<u64>,
    /// Why headquarters did not renew the certificate when last asked (`crate::renew`).
    pub renew_refused: Option<String>,
    /// While this store's log is restored from headquarters' copy (a new PC, an older
    /// backup): the seq it must reach before it records anything (`u64::MAX`: until
    /// headquarters says how far its copy goes).
    pub restore_to: Option<u64>,
    /// Connections made to headquarters since start (the first and every reconnect).
    pub connections: u64,
    /// UDP bytes sent and received on those connections (QUIC and TLS included).
    pub wire_bytes_sent: u64,
    pub wire_bytes_received: u64,
}

impl SyncStatus {
    pub fn disabled(log_len: u64) -> Self {
        Self {
            link: Link::Disabled,
            hub: None,
            acked_seq: 0,
            log_len,
            backlog: log_len,
            last_sync_ms: None,
            feed_applied: 0,
            last_error: None,
            refused: None,
            certificate_expires_ms: None,
            renew_refused: None,
            restore_to: None,
            connections: 0,
            wire_bytes_sent: 0,
            wire_bytes_received: 0,
        }
    }
}

pub fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// When the certificate in `path` runs out (ms since the epoch).
pub fn certificate_expiry(path: &std::path::Path) -> anyhow::Result<u64> {
    let cert = CertificateDer::from_pem_file(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert)
        .with_context(|| format!("parsing {}", path.display()))?;
    Ok(u64::try_from(parsed.validity().not_after.timestamp()).unwrap_or(0) * 1000)
}

/// Client config: trusts only the chain's CA and presents this store's certificate.
pub fn client_config(config: &SyncConfig) -> anyhow::Result<quinn::ClientConfig> {
    let read_certs = |path: &std::path::Path| -> anyhow::Result<Vec<CertificateDer<'static>>> {
        CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading {}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing {}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in read_certs(&config.ca_cert)? {
        roots.add(ca).context("adding the CA certificate")?;
    }
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .with_context(|| format!("reading {}", config.key.display()))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(read_certs(&config.cert)?, key)
        .context("the store certificate and key do not match")?;
    tls.alpn_protocols = vec![sync::ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut client = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(2)));
    // Path MTU probes cost kilobytes per connection and buy little for batches this small.
    transport.mtu_discovery_config(None);
    transport.max_idle_timeout(Some(Duration::from_secs(8).try_into()?));
    client.transport_config(Arc::new(transport));
    Ok(client)
}

/// A till's ask for rights, with where to send headquarters' answer, and the command it is for.
pub type AskRequest = (Ask, oneshot::Sender<AskAnswer>, Retry);

/// The command an ask was for, to run once the rights granted have arrived, and where its
/// result goes. The uplink queues it (`Control::AfterFeed`) as soon as "granted" comes in,
/// ahead of the feed bringing the rights, so both are written with one flush.
pub type Retry = (Command, crate::journal::Replier);

pub struct Uplink {
    pub store: StoreId,
    pub config: SyncConfig,
    pub journal: JournalHandle,
    pub views: Views,
    pub status: watch::Sender<SyncStatus>,
    /// Asks from the API; taken by whichever session is up.
    pub asks: tokio::sync::Mutex<mpsc::Receiver<AskRequest>>,
    /// Set by headquarters' clock, told the PC's.
    pub clock: crate::clock::ChainClock,
}

impl Uplink {
    /// Runs until the process ends: connect, sync, and on any failure wait and try again.
    pub async fn run(self) {
        let mut endpoint = match self.endpoint() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "sync disabled: cannot set up the uplink");
                self.status
                    .send_modify(|s| s.last_error = Some(format!("{e:#}")));
                return;
            }
        };
        if let Err(e) = self.publish_restore() {
            tracing::warn!(error = %e, "reading whether this store is being restored");
        }
        let mut delay_ms = RETRY_DELAY_MS_MIN;
        // The versions offered: all this build speaks, until the hub closes a session because
        // it could not read what was sent (a thin member change it could not make whole, say);
        // then the older ones, until the node restarts.
        let mut versions = sync::VERSIONS;
        // The certificate presented; one renewed (or replaced by hand) is taken up at the next
        // connection.
        let mut presented = certificate_expiry(&self.config.cert).ok();
        // Headquarters' addresses: the next is tried after any session ends (the hub stopped,
        // or stands by and turns stores away at once).
        let hubs: Vec<SocketAddr> = std::iter::once(self.config.hub)
            .chain(self.config.more_hubs.iter().copied())
            .collect();
        let mut at = 0usize;
        loop {
            let hub = hubs[at % hubs.len()];
            let on_disk = certificate_expiry(&self.config.cert).ok();
            if on_disk != presented {
                match client_config(&self.config) {
                    Ok(client) => {
                        endpoint.set_default_client_config(client);
                        presented = on_disk;
                        tracing::info!(expires_ms = ?on_disk, "connecting with the new certificate");
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "the new certificate cannot be used")
                    }
                }
            }
            self.status.send_modify(|s| s.link = Link::Connecting);
            let mut welcomed = false;
            let outcome = self.session(&endpoint, hub, versions, &mut welcomed).await;
            if let Some(older) = versions.get(1..)
                && !older.is_empty()
                && outcome.as_ref().is_err_and(unreadable)
            {
                tracing::warn!(
                    from = versions[0],
                    to = older[0],
                    "the hub could not read a message: offering an older version"
                );
                versions = older;
            }
            if welcomed {
                delay_ms = RETRY_DELAY_MS_MIN;
            }
            at += 1;
            let refused = outcome.as_ref().err().and_then(refused_by_hub);
            let error = match outcome {
                Ok(()) => "headquarters closed the connection".to_owned(),
                Err(e) => format!("{e:#}"),
            };
            if refused.is_some() {
                tracing::error!(%hub, %error, "headquarters refuses this store");
            }
            tracing::warn!(%hub, %error, retry_in_ms = delay_ms, "uplink down");
            self.status.send_modify(|s| {
                s.link = Link::Offline;
                s.last_error = Some(error);
                if refused.is_some() {
                    s.refused = refused;
                }
            });
            tokio::time::sleep(jittered(delay_ms)).await;
            delay_ms = (delay_ms * 2).min(self.config.retry_delay_ms_max.max(RETRY_DELAY_MS_MIN));
        }
    }

    /// Tells headquarters of the members this store follows and it has not been told of in
    /// this session; with a hub that does not route, every one of them is whole already.
    async fn announce(
        &self,
        session: &mut UplinkSession,
        told: &mut std::collections::HashSet<protocol::MemberId>,
    ) -> anyhow::Result<()> {
        match session.routed() {
            None => Ok(()),
            Some(false) => {
                // Every member is whole here with a hub that does not route: none to tell.
                self.journal.take_followed();
                self.journal
                    .send(Control::HubRoutes(false))
                    .await
                    .context("following every member")?;
                Ok(())
            }
            Some(true) => {
                // Everything followed until now is on disk and read here; what is taken from
                // the journal from now on is new.
                self.journal.take_followed();
                session.follow(&crate::follow::untold(self.views.store(), told)?);
                Ok(())
            }
        }
    }

    /// Tells headquarters of the members followed since the last announcement: those the
    /// journal handed over (a scan of every followed member after each flush would grow with
    /// the members waiting for their history — quadratic in an import).
    async fn announce_new(
        &self,
        session: &mut UplinkSession,
        told: &mut std::collections::HashSet<protocol::MemberId>,
    ) -> anyhow::Result<()> {
        if session.routed() != Some(true) {
            return self.announce(session, told).await;
        }
        let Some(followed) = self.journal.take_followed() else {
            // More waited than the journal keeps: every followed member is read instead.
            session.follow(&crate::follow::untold(self.views.store(), told)?);
            return Ok(());
        };
        let new: Vec<_> = followed.into_iter().filter(|m| told.insert(*m)).collect();
        if !new.is_empty() {
            session.follow(&new);
        }
        Ok(())
    }

    /// Shows whether the store is restoring its log, and to where (`journal::restore`).
    fn publish_restore(&self) -> anyhow::Result<()> {
        let to = crate::journal::restore::restore_to(self.views.store())?;
        if self.status.borrow().restore_to != to {
            self.status.send_modify(|s| s.restore_to = to);
        }
        Ok(())
    }

    fn endpoint(&self) -> anyhow::Result<quinn::Endpoint> {
        let bind: SocketAddr = if self.config.hub.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            "[::]:0".parse()?
        };
        let mut endpoint = quinn::Endpoint::client(bind)?;
        endpoint.set_default_client_config(client_config(&self.config)?);
        Ok(endpoint)
    }

    async fn session(
        &self,
        endpoint: &quinn::Endpoint,
        hub: SocketAddr,
        versions: &[u16],
        welcomed: &mut bool,
    ) -> anyhow::Result<()> {
        let connecting = endpoint.connect(hub, &self.config.hub_name)?;
        let (base_sent, base_received) = {
            let s = self.status.borrow();
            (s.wire_bytes_sent, s.wire_bytes_received)
        };
        self.status.send_modify(|s| s.connections += 1);
        let connection = connecting.await.context("connecting")?;
        let wire = Wire {
            connection: connection.clone(),
            base_sent,
            base_received,
        };
        let (mut send, recv) = connection
            .open_bi()
            .await
            .context("opening the sync stream")?;
        let mut log_len = self.journal.log_len();
        let feed_applied = self.views.feed_applied()?;
        let mut session = UplinkSession::offering(
            self.store.clone(),
            *log_len.borrow_and_update(),
            feed_applied,
            versions,
        );
        let mut inbox = spawn_reader(recv);
        let result = self
            .drive(
                &mut session,
                &mut send,
                &mut inbox,
                &mut log_len,
                welcomed,
                &wire,
            )
            .await;
        wire.publish(&self.status);
        if let Err(e) = &result
            && let Some(sync_error) = e.downcast_ref::<SyncError>()
            && !matches!(sync_error, SyncError::Link(_))
        {
            connection.close(
                sync_error.close_code().into(),
                sync_error.to_string().as_bytes(),
            );
        }
        // The hub's own reason (a refused certificate, a broken chain) says more than "lost".
        match (result, connection.close_reason()) {
            (Err(e), Some(reason)) => Err(e.context(reason)),
            (result, _) => result,
        }
    }

    async fn drive(
        &self,
        session: &mut UplinkSession,
        send: &mut SendStream,
        inbox: &mut mpsc::Receiver<Result<HubMsg, SyncError>>,
        log_len: &mut watch::Receiver<u64>,
        welcomed: &mut bool,
        wire: &Wire,
    ) -> anyhow::Result<()> {
        let mut log_open = true;
        let mut asks = self.asks.lock().await;
        // The till requests waiting on asks, until answered (then a grant's request goes to the
        // journal to wait for the feed). Dropped with the session: their tills hear the link
        // dropped.
        let mut waiting: Tracker<(oneshot::Sender<AskAnswer>, Retry)> = Tracker::default();
        // Members headquarters has been told to route here in this session (`crate::follow`).
        let mut told: std::collections::HashSet<protocol::MemberId> = Default::default();
        let mut renewal = crate::renew::Renewal::default();
        let mut follows = self.journal.follows();
        let (feed, queued) = mpsc::channel(FEED_QUEUE);
        let mut applier = tokio::spawn(
            apply_feed(self.journal.clone(), self.status.clone(), queued).in_current_span(),
        );
        let _stop_applier = AbortOnDrop(applier.abort_handle());
        loop {
            while let Some(range) = session.poll_push() {
                let mut entries = Vec::new();
                let mut bytes = 0;
                for seq in range {
                    let entry = self
                        .views
                        .log_entry(&self.store, seq)?
                        .with_context(|| format!("log entry {seq} missing"))?;
                    bytes += entry.len();
                    entries.push(entry);
                    if bytes >= sync::PUSH_BYTES_MAX {
                        break;
                    }
                }
                let keys = member_keys(self.views.store(), &entries)?;
                session.push(entries, keys);
            }
            while let Some(frame) = session.poll_frame() {
                send.write_all(&frame).await.context("sending")?;
            }
            while let Some(event) = session.poll_event() {
                match event {
                    UplinkEvent::Behind { hub_seq } => {
                        tracing::warn!(
                            hub_seq,
                            "headquarters holds more of this store's log than this PC: restoring"
                        );
                    }
                    UplinkEvent::Acked(seq) => {
                        if !*welcomed {
                            // Further than here: the store restores up to it from the feed;
                            // otherwise its log is whole (a restore mark goes).
                            self.journal
                                .send(Control::HubHolds { seq })
                                .await
                                .context("taking how far headquarters holds this store's log")?;
                            self.publish_restore()?;
                            let routed = session.routed() == Some(true);
                            self.journal
                                .send(Control::HubRoutes(routed))
                                .await
                                .context("taking the hub's routing")?;
                            self.announce(session, &mut told).await?;
                            let asked = renewal.start(session, &self.config, &self.store, now_ms());
                            if let Err(e) = asked {
                                tracing::warn!(error = %format!("{e:#}"), "could not ask for a new certificate");
                            }
                        }
                        *welcomed = true;
                        wire.publish(&self.status);
                        let backlog = session.backlog();
                        self.status.send_modify(|s| {
                            s.link = Link::Online;
                            s.acked_seq = seq;
                            s.backlog = backlog;
                            s.last_sync_ms = Some(now_ms());
                            s.last_error = None;
                            s.refused = None;
                        });
                    }
                    UplinkEvent::Backfill {
                        member,
                        items,
                        last,
                    } => {
                        let backfill = Applied::Backfill {
                            member,
                            items,
                            last,
                        };
                        if feed.send(backfill).await.is_err() {
                            return match (&mut applier).await {
                                Ok(Err(e)) => Err(e),
                                _ => Err(anyhow::anyhow!("the feed applier stopped")),
                            };
                        }
                    }
                    UplinkEvent::Restore {
                        upto,
                        entries,
                        keys,
                    } => {
                        if feed
                            .send(Applied::Restore {
                                upto,
                                entries,
                                keys,
                            })
                            .await
                            .is_err()
                        {
                            return match (&mut applier).await {
                                Ok(Err(e)) => Err(e),
                                _ => Err(anyhow::anyhow!("the feed applier stopped")),
                            };
                        }
                    }
                    UplinkEvent::Feed { upto, items, keys } => {
                        if feed.send(Applied::Feed((upto, items, keys))).await.is_err() {
                            // The applier failed: its error is the one to report.
                            return match (&mut applier).await {
                                Ok(Err(e)) => Err(e),
                                _ => Err(anyhow::anyhow!("the feed applier stopped")),
                            };
                        }
                        wire.publish(&self.status);
                    }
                    UplinkEvent::Answer { id, answer } => {
                        for (reply, _) in waiting.answer(&id, &answer) {
                            let _ = reply.send(answer.clone());
                        }
                        for (_, upto, (reply, (then, result))) in waiting.take_granted() {
                            // A till that stopped waiting is not served later.
                            if reply.send(answer.clone()).is_err() {
                                continue;
                            }
                            let then = Box::new(then);
                            let parked = Control::AfterFeed { upto, then };
                            // If the journal has stopped, `result` is dropped: the till hears.
                            let _ = self.journal.send_with(parked, result).await;
                        }
                    }
                    UplinkEvent::Recall(recall) => self.hand_back(recall).await?,
                    UplinkEvent::Renewed { chain } => {
                        let (config, store) = (self.config.clone(), self.store.clone());
                        let installed = tokio::task::spawn_blocking(move || {
                            renewal
                                .finish(&config, &store, &chain)
                                .map(|at| (renewal, at))
                        })
                        .await?;
                        let refused = match installed {
                            Ok((kept, expires_ms)) => {
                                renewal = kept;
                                tracing::info!(expires_ms, "this store's certificate renewed");
                                self.status
                                    .send_modify(|s| s.certificate_expires_ms = Some(expires_ms));
                                None
                            }
                            Err(e) => {
                                renewal = Default::default();
                                Some(format!("{e:#}"))
                            }
                        };
                        if let Some(why) = &refused {
                            tracing::error!(error = %why, "the renewed certificate was not installed");
                        }
                        self.status.send_modify(|s| s.renew_refused = refused);
                    }
                    UplinkEvent::RenewRefused { reason } => {
                        tracing::warn!(%reason, "headquarters did not renew this store's certificate");
                        self.status.send_modify(|s| s.renew_refused = Some(reason));
                    }
                    UplinkEvent::Clock { hub_ms } => {
                        let pc = self.clock.pc_ms();
                        self.clock.heard_hub(hub_ms, pc);
                        session.clock(pc);
                    }
                }
            }
            // What the events queued (the answer to the hub's clock) goes now, not after the
            // hub's next message.
            while let Some(frame) = session.poll_frame() {
                send.write_all(&frame).await.context("sending")?;
            }
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(Ok(msg)) => session.handle(msg)?,
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
                ended = &mut applier => return match ended {
                    Ok(Err(e)) => Err(e),
                    _ => Err(anyhow::anyhow!("the feed applier stopped")),
                },
                Some((ask, reply, retry)) = asks.recv() => {
                    waiting.retain(|(reply, _)| !reply.is_closed());
                    let id = ask.id.clone();
                    if waiting.ask(id.clone(), (reply, retry))
                        && let Err(e) = session.ask(ask)
                    {
                        let refused = AskAnswer::Refused { reason: e.to_string() };
                        for (reply, _) in waiting.withdraw(&id) {
                            let _ = reply.send(refused.clone());
                        }
                    }
                }
                changed = follows.changed(), if *welcomed => {
                    if changed.is_ok() {
                        follows.borrow_and_update();
                        self.announce_new(session, &mut told).await?;
                    }
                }
                changed = log_len.changed(), if log_open => {
                    if changed.is_err() {
                        // The journal has stopped; keep pushing what is already on disk.
                        log_open = false;
                        continue;
                    }
                    let len = *log_len.borrow_and_update();
                    self.publish_restore()?;
                    session.log_grew(len);
                    let backlog = session.backlog();
                    self.status.send_modify(|s| {
                        s.log_len = len;
                        s.backlog = backlog;
                    });
                }
            }
        }
    }
}

/// A feed batch as the applier takes it: up to where, the items, and their members' keys.
type FeedBatch = (
    u64,
    Vec<FeedItem>,
    Vec<(protocol::MemberId, Option<protocol::seal::MemberKey>)>,
);

/// What the applier takes, in the order the hub sent it.
enum Applied {
    Feed(FeedBatch),
    /// Entries of this store's own log from headquarters' copy (`journal::restore`), then the
    /// feed's position, with the members' keys.
    Restore {
        upto: u64,
        entries: Vec<Vec<u8>>,
        keys: Vec<(protocol::MemberId, Option<protocol::seal::MemberKey>)>,
    },
    /// A followed member's earlier changes.
    Backfill {
        member: protocol::MemberId,
        items: Vec<FeedItem>,
        last: bool,
    },
}

/// The keys of the members these entries of this store's log register, to go to
/// headquarters right before them (a member erased here meanwhile has none to send).
pub fn member_keys(
    store: &dyn crate::store::Store,
    entries: &[Vec<u8>],
) -> Result<Vec<(protocol::MemberId, protocol::seal::MemberKey)>, crate::store::StoreError> {
    let mut keys = Vec::new();
    for member in sync::members_keyed(entries.iter().map(Vec::as_slice)) {
        if let crate::sealed::KeyState::Held(key) = crate::sealed::member_key(store, &member)? {
            keys.push((member, key));
        }
    }
    Ok(keys)
}

/// Applies the hub's feed through the journal, in order and off the session's loop, so asks,
/// answers and recalls are not held up behind it; batches that queued meanwhile go in as one.
/// Ends with the error if the journal cannot apply one (the session then ends too).
async fn apply_feed(
    journal: JournalHandle,
    status: watch::Sender<SyncStatus>,
    mut queued: mpsc::Receiver<Applied>,
) -> anyhow::Result<()> {
    let mut next = queued.recv().await;
    while let Some(applied) = next.take() {
        match applied {
            Applied::Backfill {
                member,
                items,
                last,
            } => {
                let backfill = Control::Backfill {
                    member,
                    items,
                    last,
                };
                journal
                    .send(backfill)
                    .await
                    .context("applying a member's history")?;
            }
            Applied::Restore {
                upto,
                entries,
                keys,
            } => {
                journal
                    .send(Control::Restore {
                        upto,
                        entries,
                        keys,
                    })
                    .await
                    .context("restoring this store's log from headquarters")?;
                status.send_modify(|s| s.feed_applied = s.feed_applied.max(upto));
            }
            Applied::Feed((mut upto, mut items, mut keys)) => {
                while items.len() < FEED_MERGE_ITEMS_MAX {
                    match queued.try_recv() {
                        Ok(Applied::Feed((later, more, more_keys))) => {
                            upto = later;
                            items.extend(more);
                            keys.extend(more_keys);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                journal
                    .send(Control::ApplyFeed { upto, items, keys })
                    .await
                    .context("applying the feed")?;
                status.send_modify(|s| s.feed_applied = s.feed_applied.max(upto));
            }
        }
        if next.is_none() {
            next = queued.recv().await;
        }
    }
    Ok(())
}

/// Why headquarters refuses this store, if it said so: in a `Refuse` message, or in the
/// reason it closed the connection with (it may close before the message arrives).
fn refused_by_hub(e: &anyhow::Error) -> Option<String> {
    let refused = SyncError::Refused(String::new()).close_code();
    e.chain().find_map(|cause| {
        if let Some(SyncError::Refused(reason)) = cause.downcast_ref::<SyncError>() {
            return Some(reason.clone());
        }
        match cause.downcast_ref::<quinn::ConnectionError>() {
            Some(quinn::ConnectionError::ApplicationClosed(close))
                if close.error_code == quinn::VarInt::from_u32(refused) =>
            {
                let text = String::from_utf8_lossy(&close.reason).into_owned();
                Some(
                    text.strip_prefix("the hub refused: ")
                        .map_or(text.clone(), str::to_owned),
                )
            }
            _ => None,
        }
    })
}

/// Whether the hub closed the connection because it could not read a message of ours, or this
/// store could not read the hub's (a thin member change following one not held here).
fn unreadable(e: &anyhow::Error) -> bool {
    let malformed = SyncError::Malformed(String::new()).close_code();
    matches!(
        e.downcast_ref::<quinn::ConnectionError>(),
        Some(quinn::ConnectionError::ApplicationClosed(close))
            if close.error_code == quinn::VarInt::from_u32(malformed)
    ) || matches!(
        e.downcast_ref::<Rejection>(),
        Some(Rejection::FeedUnreadable { .. })
    )
}

/// Aborts a task when the scope that started it ends.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Uplink {
    /// Headquarters recalls rights: the journal writes the transfer (up to what is held), and it
    /// reaches the hub with the next push. The recall's id is the request key, so a repeated
    /// recall is answered from its record.
    async fn hand_back(&self, recall: Recall) -> anyhow::Result<()> {
        let fingerprint: [u8; 32] = Sha256::digest(postcard::to_stdvec(&recall)?).into();
        let request = Request {
            key: recall.id.clone(),
            fingerprint,
            staff: StaffId::system(),
            body: WalletRequest {
                member_id: recall.member,
                action: WalletAction::Recall {
                    counter: recall.counter,
                    units: recall.units,
                },
            },
        };
        match self.journal.send(Command::Wallet(request)).await {
            Ok(_) => Ok(()),
            Err(Rejection::Unavailable) => anyhow::bail!("the journal has stopped"),
            Err(e) => {
                tracing::warn!(recall = %recall.id, error = %e, "recall not honoured");
                Ok(())
            }
        }
    }
}

/// Byte counts of the current connection, added to those of earlier ones.
struct Wire {
    connection: quinn::Connection,
    base_sent: u64,
    base_received: u64,
}

impl Wire {
    fn publish(&self, status: &watch::Sender<SyncStatus>) {
        let stats = self.connection.stats();
        status.send_modify(|s| {
            s.wire_bytes_sent = self.base_sent + stats.udp_tx.bytes;
            s.wire_bytes_received = self.base_received + stats.udp_rx.bytes;
        });
    }
}

/// Half the delay plus a random share of the other half, so a thousand stores that lost the
/// hub together do not come back together.
fn jittered(delay_ms: u64) -> Duration {
    let mut bytes = [0u8; 8];
    let random = getrandom::fill(&mut bytes)
        .map(|_| u64::from_le_bytes(bytes))
        .unwrap_or(0);
    let half = delay_ms / 2;
    Duration::from_millis(half + random % (half + 1))
}

/// The most one read takes off the stream.
const READ_CHUNK_MAX: usize = 256 * 1024;

fn spawn_reader(mut recv: RecvStream) -> mpsc::Receiver<Result<HubMsg, SyncError>> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut frames = sync::Frames::default();
        loop {
            let frame = match frames.hub_msg() {
                Ok(Some(msg)) => Ok(msg),
                Ok(None) => match recv.read_chunk(READ_CHUNK_MAX, true).await {
                    Ok(Some(chunk)) => {
                        frames.push(&chunk.bytes);
                        continue;
                    }
                    Ok(None) => match frames.finish() {
                        Ok(()) => return,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(SyncError::Link(e.to_string())),
                },
                Err(e) => Err(e),
            };
            let failed = frame.is_err();
            if tx.send(frame).await.is_err() || failed {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the hub's "could not read that" close makes the store offer an older version.
    #[test]
    fn a_session_the_hub_could_not_read_is_told_apart() {
        let closed = |code: u32| {
            let close = quinn::ApplicationClose {
                error_code: quinn::VarInt::from_u32(code),
                reason: Vec::new().into(),
            };
            anyhow::anyhow!("reading").context(quinn::ConnectionError::ApplicationClosed(close))
        };
        let malformed = SyncError::Malformed(String::new()).close_code();
        let chain =
            SyncError::Chain(protocol::entry::ChainError::BrokenLink { seq: 2 }).close_code();
        assert!(unreadable(&closed(malformed)));
        assert!(!unreadable(&closed(chain)));
        assert!(!unreadable(&anyhow::anyhow!("connection lost")));
        let feed: Result<(), Rejection> = Err(Rejection::FeedUnreadable {
            position: 7,
            reason: "a member change follows one that is not here".to_owned(),
        });
        assert!(unreadable(&feed.context("applying the feed").unwrap_err()));
    }
}
