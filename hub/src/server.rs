//! The QUIC endpoint: accepts store connections (mutual TLS), binds each to the store named in
//! its certificate, and drives a `HubSession` with the ingest owner and the feed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use protocol::seal::{KeyState, MemberKey};
use protocol::sync::{self, AskAnswer, HubEvent, HubSession, StoreMsg, SyncError};
use protocol::{MemberId, StoreId, TxId};
use quinn::{RecvStream, SendStream};
use tokio::sync::{broadcast, mpsc};

use crate::ingest::{IngestError, IngestHandle};
use crate::storage::HubStore;

/// Application close codes beyond the protocol's own (`SyncError::close_code`).
pub const CLOSE_BAD_CERTIFICATE: u32 = 100;
pub const CLOSE_STORAGE: u32 = 101;

/// How many feed records one `Feed` message carries at most, and about how many bytes.
pub(crate) const FEED_BATCH_MAX: usize = 512;
const FEED_BATCH_BYTES_MAX: usize = sync::PUSH_BYTES_MAX;

pub async fn write_frame<T: serde::Serialize>(
    send: &mut SendStream,
    msg: &T,
) -> anyhow::Result<()> {
    send.write_all(&sync::encode_frame(msg)).await?;
    Ok(())
}

/// The store's next message off the stream (`sync::Frames` does the framing); `Ok(None)`
/// when the store finished the stream cleanly.
pub async fn next_store_msg(
    recv: &mut RecvStream,
    frames: &mut sync::Frames,
) -> Result<Option<StoreMsg>, SyncError> {
    loop {
        if let Some(msg) = frames.store_msg()? {
            return Ok(Some(msg));
        }
        match recv
            .read_chunk(READ_CHUNK_MAX, true)
            .await
            .map_err(|e| SyncError::Link(e.to_string()))?
        {
            Some(chunk) => frames.push(&chunk.bytes),
            None => return frames.finish().map(|()| None),
        }
    }
}

/// The most one read takes off the stream.
const READ_CHUNK_MAX: usize = 256 * 1024;

pub async fn serve(
    endpoint: quinn::Endpoint,
    ingest: IngestHandle,
    storage: Arc<dyn HubStore>,
    renewer: Option<Arc<crate::renew::Renewer>>,
) {
    while let Some(incoming) = endpoint.accept().await {
        let (ingest, storage, renewer) = (ingest.clone(), storage.clone(), renewer.clone());
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let connection = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(%remote, error = %e, "store connection refused during the TLS handshake");
                    return;
                }
            };
            let peer = match authenticated_store(&connection) {
                Ok(peer) => peer,
                Err(e) => {
                    tracing::warn!(%remote, error = %e, "store certificate refused");
                    connection.close(CLOSE_BAD_CERTIFICATE.into(), b"bad store certificate");
                    return;
                }
            };
            let store = peer.store.clone();
            tracing::info!(%remote, %store, "store connected");
            let outcome =
                run_session(&connection, &peer, &ingest, &storage, renewer.as_deref()).await;
            match &outcome {
                Ok(()) => tracing::info!(%store, "store disconnected"),
                Err(SessionEnd::Protocol(e)) => {
                    tracing::warn!(%store, error = %e, code = e.close_code(), "closing the session");
                    connection.close(e.close_code().into(), e.to_string().as_bytes());
                }
                Err(SessionEnd::Other(e)) => {
                    tracing::warn!(%store, error = %e, "session ended");
                    connection.close(CLOSE_STORAGE.into(), b"session ended");
                }
            }
        });
    }
}

fn authenticated_store(connection: &quinn::Connection) -> anyhow::Result<crate::tls::Peer> {
    let identity = connection
        .peer_identity()
        .ok_or_else(|| anyhow::anyhow!("no client certificate"))?;
    let chain = identity
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .map_err(|_| anyhow::anyhow!("unexpected peer identity type"))?;
    let leaf = chain
        .first()
        .ok_or_else(|| anyhow::anyhow!("empty certificate chain"))?;
    crate::tls::peer_of(leaf)
}

/// Why this session's certificate is refused now, if it is: revoked since, or out of date.
async fn refusal(
    peer: &crate::tls::Peer,
    storage: &Arc<dyn HubStore>,
) -> Result<Option<String>, SessionEnd> {
    let (reader, store) = (storage.clone(), peer.store.clone());
    let revocation = tokio::task::spawn_blocking(move || reader.revocation(&store))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(anyhow::Error::from)?;
    Ok(peer.refusal(revocation.as_ref(), crate::ingest::system_now_ms()))
}

/// How often a session looks again at its certificate (revoked, out of date).
const CERTIFICATE_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

enum SessionEnd {
    Protocol(SyncError),
    Other(anyhow::Error),
}

impl From<SyncError> for SessionEnd {
    fn from(e: SyncError) -> Self {
        SessionEnd::Protocol(e)
    }
}

impl From<IngestError> for SessionEnd {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::NotAllowed { .. } => {
                SessionEnd::Protocol(SyncError::Refused(e.to_string()))
            }
            e => SessionEnd::Other(e.into()),
        }
    }
}

impl From<anyhow::Error> for SessionEnd {
    fn from(e: anyhow::Error) -> Self {
        SessionEnd::Other(e)
    }
}

async fn run_session(
    connection: &quinn::Connection,
    peer: &crate::tls::Peer,
    ingest: &IngestHandle,
    storage: &Arc<dyn HubStore>,
    renewer: Option<&crate::renew::Renewer>,
) -> Result<(), SessionEnd> {
    let store = peer.store.clone();
    let mut certificate_check = tokio::time::interval(CERTIFICATE_CHECK);
    // A certificate signed in this session already (one a session).
    let mut renewed = false;
    let (mut send, recv) = connection
        .accept_bi()
        .await
        .map_err(|e| anyhow::anyhow!("no stream: {e}"))?;
    let tip = ingest.tip(store.clone()).await?;
    let mut session = HubSession::new(store.clone(), tip);
    // A store behind headquarters' copy of its log gets it back (sync version 8).
    let mut restoring: Option<crate::restore::Restoring> = None;
    let mut inbox = spawn_reader(recv);
    let mut feed_len = ingest.feed_len();
    let mut feed_sent: Option<u64> = None;
    let mut linked = false;
    let mut recalls = ingest.recalls();
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<(TxId, AskAnswer)>();
    // Batches handed to the ingest thread, acknowledged in order as their flushes come back.
    let mut persisting: VecDeque<crate::ingest::Persisting> = VecDeque::new();
    let result = async {
        loop {
            while let Some(frame) = session.poll_frame() {
                send.write_all(&frame).await.map_err(anyhow::Error::from)?;
            }
            if let Some(event) = session.poll_event() {
                match event {
                    HubEvent::Hello {
                        log_len,
                        feed_applied,
                    } => {
                        if let Some(reason) = refusal(peer, storage).await? {
                            return refuse(&mut session, &mut send, reason).await;
                        }
                        let hub_feed = *feed_len.borrow();
                        if feed_applied > hub_feed {
                            return Err(SessionEnd::Protocol(SyncError::FeedAhead {
                                store: feed_applied,
                                hub: hub_feed,
                            }));
                        }
                        let held = tip.next_seq - 1;
                        if log_len < held && session.version() >= sync::RESTORE_VERSION {
                            tracing::warn!(
                                %store,
                                log_len,
                                held,
                                "the store is behind headquarters' copy of its log: restoring it"
                            );
                            restoring = Some(crate::restore::Restoring {
                                next: log_len + 1,
                                held,
                            });
                        }
                        ingest.certificate(store.clone(), peer.not_after_ms).await;
                        ingest.link(store.clone(), true, log_len).await;
                        linked = true;
                        feed_sent = Some(feed_applied);
                        // The chain's time, which the store goes by if its clock is off.
                        session.clock(crate::ingest::system_now_ms());
                    }
                    HubEvent::Clock { store_ms } => {
                        let off = i128::from(store_ms) - i128::from(crate::ingest::system_now_ms());
                        ingest
                            .clock(store.clone(), i64::try_from(off).unwrap_or(i64::MAX))
                            .await;
                    }
                    HubEvent::Persist {
                        entries,
                        log_len,
                        keys,
                    } => {
                        let batch = ingest.submit(store.clone(), entries, log_len, keys).await?;
                        persisting.push_back(batch);
                    }
                    HubEvent::Ask(ask) => {
                        ingest
                            .ask_rights(store.clone(), ask, answers_tx.clone())
                            .await?;
                    }
                    HubEvent::Renew { csr } => {
                        // Revoked since the session began (a stolen key kept connected): no
                        // certificate dated after the revocation, and the session ends now.
                        if let Some(reason) = refusal(peer, storage).await? {
                            return refuse(&mut session, &mut send, reason).await;
                        }
                        let signed = match renewer {
                            _ if renewed => Err("one renewal a session".to_owned()),
                            Some(renewer) => {
                                renewed = true;
                                renewer.sign(&store, &csr, time::OffsetDateTime::now_utc())
                            }
                            None => Err("headquarters has no store-issuing CA ([renewal] in \
                                 hub.toml): enrol the store again with ops pki enrol"
                                .to_owned()),
                        };
                        match signed {
                            Ok(chain) => {
                                tracing::info!(%store, "store certificate renewed");
                                session.renewed(chain);
                            }
                            Err(reason) => {
                                tracing::warn!(%store, %reason, "store certificate not renewed");
                                session.renew_refused(reason);
                            }
                        }
                    }
                    HubEvent::Follow(members) => {
                        // Answered in turn: the feed batches queued after the backfill
                        // already carry the members' later changes (the store now follows).
                        let durable = *feed_len.borrow();
                        let (reader, routes, who) =
                            (storage.clone(), ingest.routes(), store.clone());
                        let histories = tokio::task::spawn_blocking(move || {
                            crate::routes::follow(&*reader, &routes, &who, &members, durable)
                        })
                        .await
                        .map_err(anyhow::Error::from)?
                        .map_err(anyhow::Error::from)?;
                        for (member, items) in histories {
                            session.backfill(member, durable, items);
                        }
                    }
                }
                continue;
            }
            // One feed batch per turn, so a long catch-up does not hold back the store's pushes.
            let durable = *feed_len.borrow_and_update();
            // Answers before the feed: headquarters answers a grant before it publishes the
            // feed that carries it, so, read after the feed's length, every grant's answer is
            // here and goes out first. The store then runs the waiting spend in the same write
            // as the rights' arrival.
            while let Ok((id, answer)) = answers.try_recv() {
                session.answer(id, answer);
            }
            if let Some(sent) = feed_sent.filter(|sent| durable > *sent || restoring.is_some()) {
                let routes = session.routed().then(|| ingest.routes());
                feed_sent = Some(match restoring.as_mut() {
                    Some(r) => {
                        restore(&mut session, storage, routes, &store, r, sent, durable).await?
                    }
                    None => feed(&mut session, storage, routes, &store, sent, durable).await?,
                });
                if restoring.is_some_and(|r| r.done()) {
                    tracing::info!(%store, "the store has its log back");
                    restoring = None;
                }
            }
            while let Some(frame) = session.poll_frame() {
                send.write_all(&frame).await.map_err(anyhow::Error::from)?;
            }
            let more_feed = feed_sent.is_some_and(|sent| *feed_len.borrow() > sent)
                || (feed_sent.is_some() && restoring.is_some());
            tokio::select! {
                biased;
                msg = inbox.recv() => match msg {
                    Some(Ok(msg)) => {
                        // Making thin member changes whole reads storage: off the async threads.
                        let (version, reader) = (session.version(), storage.clone());
                        let msg = tokio::task::spawn_blocking(move || {
                            sync::thicken_msg(version, msg, |member, prefix| {
                                crate::ingest::known_change(&*reader, member, prefix)
                            })
                        })
                        .await
                        .map_err(anyhow::Error::from)??;
                        session.handle(msg)?;
                    }
                    Some(Err(e)) => return Err(SessionEnd::Protocol(e)),
                    None => {
                        tracing::debug!(%store, "the store closed the sync stream");
                        return Ok(());
                    }
                },
                changed = feed_len.changed() => if changed.is_err() {
                    tracing::debug!(%store, "the feed is gone: the hub is stopping");
                    return Ok(());
                },
                Some((id, answer)) = answers.recv() => session.answer(id, answer),
                durable = async { persisting.front_mut().expect("guarded: not empty").await },
                    if !persisting.is_empty() =>
                {
                    persisting.pop_front();
                    let seq = durable.map_err(|_| anyhow::anyhow!("the ingest thread stopped"))??;
                    session.persisted(seq);
                }
                recall = recalls.recv() => match recall {
                    Ok((to, recall)) if to == store => session.recall(recall),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            %store,
                            missed,
                            "recalls missed: asks waiting on them are answered at their deadline"
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                () = std::future::ready(()), if more_feed => {}
                _ = certificate_check.tick() => {
                    if let Some(reason) = refusal(peer, storage).await? {
                        return refuse(&mut session, &mut send, reason).await;
                    }
                }
            }
        }
    }
    .await;
    if linked {
        ingest.link(store, false, 0).await;
    }
    result
}

/// Tells the store why it is refused, then ends the session with that reason.
async fn refuse(
    session: &mut HubSession,
    send: &mut quinn::SendStream,
    reason: String,
) -> Result<(), SessionEnd> {
    session.refuse(reason.clone());
    while let Some(frame) = session.poll_frame() {
        send.write_all(&frame).await.map_err(anyhow::Error::from)?;
    }
    // Closing at once would drop the message unsent: let the store read it (it closes the
    // connection when it does), for two seconds at most.
    let _ = send.finish();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), send.stopped()).await;
    Err(SessionEnd::Protocol(SyncError::Refused(reason)))
}

/// Queues feed records after `sent` (up to `durable`), skipping the store's own entries and,
/// with `routes`, those that do not concern it; the reads run off the async threads.
async fn feed(
    session: &mut HubSession,
    storage: &Arc<dyn HubStore>,
    routes: Option<crate::routes::SharedRoutes>,
    store: &StoreId,
    sent: u64,
    durable: u64,
) -> anyhow::Result<u64> {
    let (storage, store, listed) = (storage.clone(), store.clone(), session.listed());
    let (upto, items, keys) = tokio::task::spawn_blocking(move || {
        read_feed(&*storage, routes.as_deref(), listed, &store, sent, durable)
    })
    .await??;
    session.feed(upto, items, keys);
    Ok(upto)
}

/// The next step of giving a restoring store its log back (`crate::restore`), read off the
/// async threads; returns the feed position the store has then.
async fn restore(
    session: &mut HubSession,
    storage: &Arc<dyn HubStore>,
    routes: Option<crate::routes::SharedRoutes>,
    store: &StoreId,
    restoring: &mut crate::restore::Restoring,
    sent: u64,
    durable: u64,
) -> anyhow::Result<u64> {
    let (storage, store, mut r) = (storage.clone(), store.clone(), *restoring);
    let listed = session.listed();
    let (step, r) = tokio::task::spawn_blocking(move || {
        r.step(&*storage, routes.as_deref(), listed, &store, sent, durable)
            .map(|step| (step, r))
    })
    .await??;
    *restoring = r;
    Ok(match step {
        crate::restore::Step::Feed((upto, items, keys)) => {
            session.feed(upto, items, keys);
            upto
        }
        crate::restore::Step::Own {
            upto,
            entries,
            keys,
        } => {
            session.restore(upto, entries, keys);
            upto
        }
    })
}

pub type FeedBatch = (u64, Vec<sync::FeedItem>, Vec<(MemberId, Option<MemberKey>)>);

/// The next feed batch for `store`: records after `sent` up to `durable` and the size limits.
///
/// With `listed` (sync version 10), a member's registration or edit goes to a store that does
/// not follow the member as their listing (`protocol::listing`), made from their profile as
/// headquarters holds it now; of one member's several listings in the batch only the last goes.
pub fn read_feed(
    storage: &dyn HubStore,
    routes: Option<&std::sync::RwLock<crate::routes::Routes>>,
    listed: bool,
    store: &StoreId,
    sent: u64,
    durable: u64,
) -> anyhow::Result<FeedBatch> {
    // Routed: only the records that reach the store are read (a chain of hundreds of stores
    // would otherwise have each session read every other store's).
    let (mut records, mut upto) = match routes {
        Some(routes) => {
            let (positions, looked) =
                routes
                    .read()
                    .expect("routes lock")
                    .reaching(store, sent, durable, FEED_BATCH_MAX);
            (storage.feed_at(&positions)?, looked)
        }
        None => {
            let records = storage.feed(sent + 1, FEED_BATCH_MAX.min((durable - sent) as usize))?;
            let upto = records.last().map_or(sent, |(position, _)| *position);
            (records, upto)
        }
    };
    let mut bytes = 0;
    let keep = records
        .iter()
        .take_while(|(_, r)| {
            bytes += r.entry.len();
            bytes <= FEED_BATCH_BYTES_MAX
        })
        .count()
        .max(1);
    if keep < records.len() {
        upto = records[keep - 1].0;
        records.truncate(keep);
    }
    records.retain(|(_, r)| &r.origin != store);
    let listings: Vec<Option<MemberId>> = match routes.filter(|_| listed) {
        Some(routes) => {
            let routes = routes.read().expect("routes lock");
            records
                .iter()
                .map(|(position, _)| routes.listing_for(store, *position))
                .collect()
        }
        None => vec![None; records.len()],
    };
    // Each record as it goes: itself, a listing in its place (with the member listed), or
    // nothing (an erased member's listing).
    let mut sent: Vec<(u64, Vec<u8>, Option<MemberId>)> = Vec::with_capacity(records.len());
    for ((position, r), member) in records.into_iter().zip(listings) {
        match member {
            None => sent.push((position, r.entry, None)),
            Some(member) => match listing(storage, r.entry, member)? {
                Listing::Listed(entry) => sent.push((position, entry, Some(member))),
                Listing::AsItIs(entry) => sent.push((position, entry, None)),
                Listing::Erased => {}
            },
        }
    }
    // Of one member's listings only the last goes: it says all the earlier ones did.
    let last: HashMap<MemberId, u64> = sent
        .iter()
        .filter_map(|(position, _, member)| member.map(|m| (m, *position)))
        .collect();
    let items: Vec<sync::FeedItem> = sent
        .into_iter()
        .filter(|(position, _, member)| member.is_none_or(|m| last.get(&m) == Some(position)))
        .map(|(position, entry, _)| sync::FeedItem { position, entry })
        .collect();
    let keys = feed_keys(storage, &items)?;
    Ok((upto, items, keys))
}

/// What a store that does not follow a member gets in place of their registration or edit.
pub(crate) enum Listing {
    /// Their listing, sealed under their key (`protocol::listing`).
    Listed(Vec<u8>),
    /// The entry itself: a member from before keys (nothing to seal a listing under), or
    /// whose profile headquarters could not read (the store skips it as headquarters did).
    AsItIs(Vec<u8>),
    /// Nothing: the member was erased.
    Erased,
}

/// What goes to a store that does not follow `member` in place of `entry`.
pub(crate) fn listing(
    storage: &dyn HubStore,
    entry: Vec<u8>,
    member: MemberId,
) -> Result<Listing, crate::storage::HubStoreError> {
    let key = match storage.member_key(&member)? {
        KeyState::Held(key) => key,
        KeyState::Erased => return Ok(Listing::Erased),
        KeyState::Unknown => return Ok(Listing::AsItIs(entry)),
    };
    let (Ok(decoded), Some(record)) = (protocol::Entry::decode(&entry), storage.member(&member)?)
    else {
        return Ok(Listing::AsItIs(entry));
    };
    let listed = protocol::listing::in_place_of(&decoded, member, &key, &record.profile);
    Ok(Listing::Listed(listed.encode()))
}

/// The keys of the members feed items register or erase, to go right before them (`None` for
/// an erased member: the store then erases its copy too).
pub fn feed_keys(
    storage: &dyn HubStore,
    items: &[sync::FeedItem],
) -> Result<Vec<(MemberId, Option<MemberKey>)>, crate::storage::HubStoreError> {
    let mut keys = Vec::new();
    for member in sync::members_keyed(items.iter().map(|i| i.entry.as_slice())) {
        match storage.member_key(&member)? {
            KeyState::Held(key) => keys.push((member, Some(key))),
            KeyState::Erased => keys.push((member, None)),
            KeyState::Unknown => {}
        }
    }
    Ok(keys)
}

/// Reads frames on their own task (reads are not cancel-safe) and hands them over in order.
fn spawn_reader(mut recv: RecvStream) -> mpsc::Receiver<Result<StoreMsg, SyncError>> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut frames = sync::Frames::default();
        loop {
            match next_store_msg(&mut recv, &mut frames).await {
                Ok(Some(msg)) => {
                    if tx.send(Ok(msg)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    tracing::debug!("sync stream finished");
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    rx
}
