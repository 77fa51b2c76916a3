//! The ingest thread and its handle: sessions and pages send commands; the thread runs them in
//! groups that share one flush, serves the waiting asks and rebalances after each group, and
//! hands the group's flush and answers to the flusher (`flusher.rs`) while it goes on.

use super::*;

enum Command {
    Clock {
        store: StoreId,
        off_ms: i64,
    },
    Certificate {
        store: StoreId,
        until_ms: u64,
    },
    Tip {
        store: StoreId,
        reply: oneshot::Sender<Result<ChainTip, IngestError>>,
    },
    Hold {
        store: StoreId,
        until_ms: u64,
        by: String,
        reason: String,
        reply: oneshot::Sender<Result<Fence, HoldError>>,
    },
    VoidHold {
        store: StoreId,
        by: String,
        reply: oneshot::Sender<Result<(), HoldError>>,
    },
    Catalogue {
        changes: Vec<CatalogueChange>,
        by: StaffId,
        reply: oneshot::Sender<Result<CatalogueWritten, CatalogueError>>,
    },
    Transfer {
        id: Option<DocId>,
        step: TransferStep,
        by: StaffId,
        reply: oneshot::Sender<Result<Transfer, TransferRefused>>,
    },
    HqWrite {
        write: HqWrite,
        by: StaffId,
        reply: oneshot::Sender<Result<(), HqWriteError>>,
    },
    Marketing {
        change: protocol::campaign::MarketingChange,
        by: StaffId,
        reply: oneshot::Sender<Result<(), MarketingRefused>>,
    },
    IssueCampaign {
        id: String,
        on: chrono::NaiveDate,
        coupons: u32,
        targets: Vec<(MemberId, StoreId)>,
        by: StaffId,
        reply: oneshot::Sender<Result<protocol::campaign::Run, MarketingRefused>>,
    },
    RecordRun {
        run: protocol::campaign::Run,
        by: StaffId,
        reply: oneshot::Sender<Result<(), MarketingRefused>>,
    },
    ImportMembers {
        rows: Vec<super::Prepared>,
        import: String,
        by: StaffId,
        reply: oneshot::Sender<Result<super::Imported, IngestError>>,
    },
    Ingest {
        store: StoreId,
        entries: Vec<Sealed>,
        log_len: u64,
        keys: Vec<(MemberId, MemberKey)>,
        reply: oneshot::Sender<Result<u64, IngestError>>,
    },
    Link {
        store: StoreId,
        up: bool,
        log_len: u64,
    },
    Stores {
        reply: oneshot::Sender<Vec<StoreRow>>,
    },
    /// Nothing to do but look at the waiting asks again (deadlines, withdrawn asks).
    Tick,
}

impl Command {
    /// The entries a command writes, for the group's budget.
    fn entries(&self) -> usize {
        match self {
            Command::Ingest { entries, .. } => entries.len(),
            Command::IssueCampaign { targets, .. } => targets.len(),
            Command::ImportMembers { rows, .. } => rows.len() * 2,
            _ => 1,
        }
    }
}

/// A batch on its way to disk: answered with the seq durably held, after the flush.
pub type Persisting = oneshot::Receiver<Result<u64, IngestError>>;

/// Members one command of a campaign run issues to (about a second of the ingest thread);
/// two in tests, so that a small run comes in parts.
#[cfg(not(test))]
const CAMPAIGN_PART: usize = 10_000;
#[cfg(test)]
const CAMPAIGN_PART: usize = 2;

#[derive(Clone)]
pub struct IngestHandle {
    commands: mpsc::Sender<Command>,
    /// Asks for rights go in a lane of their own that the ingest thread takes first at every
    /// group: a till waits on each, and a busy hub's queue of pushes must not hold them back.
    asks: mpsc::Sender<(StoreId, Ask, Answers)>,
    feed_len: watch::Receiver<u64>,
    recalls: broadcast::Sender<(StoreId, Recall)>,
    routes: crate::routes::SharedRoutes,
    /// What the ingest thread did, for `/metrics`.
    pub metrics: IngestMetrics,
}

/// Entries taken from stores, asks answered, recalls sent, and each group's flush time.
#[derive(Clone)]
pub struct IngestMetrics {
    pub entries: prometheus_client::metrics::counter::Counter,
    pub asks: prometheus_client::metrics::counter::Counter,
    pub recalls: prometheus_client::metrics::counter::Counter,
    pub flush_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self {
            entries: Default::default(),
            asks: Default::default(),
            recalls: Default::default(),
            flush_seconds: crate::metrics::Metrics::seconds(),
        }
    }
}

impl IngestHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| IngestError::Unavailable)?;
        answer.await.map_err(|_| IngestError::Unavailable)
    }

    /// Where the hub's durable copy of `store`'s log ends, as a session with it opens (which
    /// voids a hold on it); an error for a fenced store.
    pub async fn tip(&self, store: StoreId) -> Result<ChainTip, IngestError> {
        self.ask(|reply| Command::Tip { store, reply }).await?
    }

    /// Puts a quiet store on hold until `until_ms` (see `Ingest::hold`).
    pub async fn hold(
        &self,
        store: StoreId,
        until_ms: u64,
        by: String,
        reason: String,
    ) -> Result<Fence, HoldError> {
        self.ask(|reply| Command::Hold {
            store,
            until_ms,
            by,
            reason,
            reply,
        })
        .await?
    }

    /// Writes a catalogue change set as headquarters' next version (answered once durable).
    pub async fn change_catalogue(
        &self,
        changes: Vec<CatalogueChange>,
        by: StaffId,
    ) -> Result<Result<CatalogueWritten, CatalogueError>, IngestError> {
        self.ask(|reply| Command::Catalogue { changes, by, reply })
            .await
    }

    /// Imports a part of a member file (checked rows), answered once durable.
    pub async fn import_members(
        &self,
        rows: Vec<super::Prepared>,
        import: String,
        by: StaffId,
    ) -> Result<super::Imported, IngestError> {
        self.ask(|reply| Command::ImportMembers {
            rows,
            import,
            by,
            reply,
        })
        .await?
    }

    /// Writes a staff directory change or commission rules in headquarters' log (answered
    /// once durable); stores learn staff changes through the feed.
    pub async fn hq_write(
        &self,
        write: HqWrite,
        by: StaffId,
    ) -> Result<Result<(), HqWriteError>, IngestError> {
        self.ask(|reply| Command::HqWrite { write, by, reply })
            .await
    }

    /// Publishes a coupon template, segment or campaign (answered once durable).
    pub async fn publish_marketing(
        &self,
        change: protocol::campaign::MarketingChange,
        by: StaffId,
    ) -> Result<Result<(), MarketingRefused>, IngestError> {
        self.ask(|reply| Command::Marketing { change, by, reply })
            .await
    }

    /// Runs a campaign over the members its segment found, in parts of `CAMPAIGN_PART`
    /// members (the ingest thread takes stores' pushes between them), then records the run
    /// (answered once durable).
    pub async fn run_campaign(
        &self,
        id: String,
        (on, coupons): (chrono::NaiveDate, u32),
        mut targets: Vec<(MemberId, StoreId)>,
        by: StaffId,
    ) -> Result<Result<protocol::campaign::Run, MarketingRefused>, IngestError> {
        targets.sort_by_key(|(m, _)| *m);
        targets.dedup_by_key(|(m, _)| *m);
        let mut parts = targets.chunks((CAMPAIGN_PART / coupons.max(1) as usize).max(1));
        let first = parts.next().unwrap_or(&[]);
        let mut run = match self.issue_part(&id, (on, coupons), first, &by).await? {
            Ok(run) => run,
            Err(refused) => return Ok(Err(refused)),
        };
        for part in parts {
            match self.issue_part(&id, (on, coupons), part, &by).await? {
                Ok(done) => run.add(&done),
                Err(refused) => return Ok(Err(refused)),
            }
        }
        let recorded = self
            .ask(|reply| Command::RecordRun {
                run: run.clone(),
                by,
                reply,
            })
            .await?;
        Ok(recorded.map(|()| run))
    }

    async fn issue_part(
        &self,
        id: &str,
        (on, coupons): (chrono::NaiveDate, u32),
        targets: &[(MemberId, StoreId)],
        by: &StaffId,
    ) -> Result<Result<protocol::campaign::Run, MarketingRefused>, IngestError> {
        self.ask(|reply| Command::IssueCampaign {
            id: id.to_owned(),
            on,
            coupons,
            targets: targets.to_vec(),
            by: by.clone(),
            reply,
        })
        .await
    }

    /// Headquarters takes a transfer step: a request (`id` none), approve, reject, or ask the
    /// source to cancel (answered once durable).
    pub async fn transfer_step(
        &self,
        id: Option<DocId>,
        step: TransferStep,
        by: StaffId,
    ) -> Result<Result<Transfer, TransferRefused>, IngestError> {
        self.ask(|reply| Command::Transfer {
            id,
            step,
            by,
            reply,
        })
        .await
    }

    /// Voids the hold on a store (an operator's decision).
    pub async fn void_hold(&self, store: StoreId, by: String) -> Result<(), HoldError> {
        self.ask(|reply| Command::VoidHold { store, by, reply })
            .await?
    }

    /// Hands a verified batch to the ingest thread; the receiver says the seq now durably held
    /// once the group it joined is flushed. A session may hand over its next batch before that
    /// (the thread takes them in order), so an ask behind a batch is not held up by its flush.
    pub async fn submit(
        &self,
        store: StoreId,
        entries: Vec<Sealed>,
        log_len: u64,
        keys: Vec<(MemberId, MemberKey)>,
    ) -> Result<Persisting, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Ingest {
                store,
                entries,
                log_len,
                keys,
                reply,
            })
            .await
            .map_err(|_| IngestError::Unavailable)?;
        Ok(answer)
    }

    /// How far `store`'s PC clock is off headquarters' (as it last said).
    pub async fn clock(&self, store: StoreId, off_ms: i64) {
        let _ = self.commands.send(Command::Clock { store, off_ms }).await;
    }

    /// `store` connected with a certificate good until `until_ms`.
    pub async fn certificate(&self, store: StoreId, until_ms: u64) {
        let _ = self
            .commands
            .send(Command::Certificate { store, until_ms })
            .await;
    }

    pub async fn link(&self, store: StoreId, up: bool, log_len: u64) {
        let _ = self
            .commands
            .send(Command::Link { store, up, log_len })
            .await;
    }

    pub async fn stores(&self) -> Result<Vec<StoreRow>, IngestError> {
        self.ask(|reply| Command::Stores { reply }).await
    }

    /// The durable feed length, updated after every flush.
    pub fn feed_len(&self) -> watch::Receiver<u64> {
        self.feed_len.clone()
    }

    /// Which feed records reach which store.
    pub fn routes(&self) -> crate::routes::SharedRoutes {
        self.routes.clone()
    }

    /// Serves a store's ask for rights: answered on `answers` once granted (and durable), or
    /// refused (at the latest after `protocol::ask::Limits::HUB`'s wait). A grant's answer is sent before the feed
    /// that carries it is published, so the store hears "granted" first. Dropping the receiver
    /// withdraws the ask.
    pub async fn ask_rights(
        &self,
        store: StoreId,
        ask: Ask,
        answers: Answers,
    ) -> Result<(), IngestError> {
        self.asks
            .send((store, ask, answers))
            .await
            .map_err(|_| IngestError::Unavailable)?;
        // Wakes an idle thread; a busy one takes the ask at its next group anyway.
        let _ = self.commands.try_send(Command::Tick);
        Ok(())
    }

    /// Has the ingest thread look at its waiting asks (sent every second by the hub).
    pub async fn tick(&self) {
        let _ = self.commands.send(Command::Tick).await;
    }

    /// Recalls headquarters sends, for sessions to forward to their store.
    pub fn recalls(&self) -> broadcast::Receiver<(StoreId, Recall)> {
        self.recalls.subscribe()
    }
}

/// Starts the ingest owner on its own thread (flushes block).
pub fn spawn(
    storage: Arc<dyn HubStore>,
    fence_rule: protocol::lease::FenceRule,
    policy: bank::Policy,
    notify: bool,
) -> anyhow::Result<(IngestHandle, std::thread::JoinHandle<()>)> {
    let flushing = storage.clone();
    let mut ingest = Ingest::open(storage, Box::new(system_now_ms))?;
    ingest.set_fence_rule(fence_rule);
    ingest.set_policy(policy);
    ingest.set_notify(notify);
    let feed_len = ingest.feed_len;
    let routes = ingest.routes();
    let (commands, mut inbox) = mpsc::channel::<Command>(1024);
    let (asks_tx, mut ask_inbox) = mpsc::channel::<(StoreId, Ask, Answers)>(ASKS_QUEUED_MAX);
    let (feed_tx, feed_rx) = watch::channel(feed_len);
    let (recalls, _) = broadcast::channel(RECALLS_QUEUED_MAX);
    let recall_tx = recalls.clone();
    let metrics = IngestMetrics::default();
    let observed = metrics.clone();
    let (flushes, flusher) =
        super::flusher::start(flushing, metrics.flush_seconds.clone(), feed_tx)?;
    let thread = std::thread::Builder::new()
        .name("ingest".into())
        .spawn(move || {
            let mut group = Vec::with_capacity(GROUP_MAX);
            let mut asks: AskQueue<Answers> = AskQueue::new(Limits::HUB);
            while let Some(first) = inbox.blocking_recv() {
                // Asks first (their own lane), then a group of commands no bigger than a flush
                // should be, so an ask waits at most about two groups.
                while let Ok((store, ask, reply)) = ask_inbox.try_recv() {
                    if let Some((reply, id, answer)) = asks.offer(store, ask, reply, system_now_ms())
                    {
                        let _ = reply.send((id, answer));
                    }
                }
                let mut entries = first.entries();
                group.push(first);
                while group.len() < GROUP_MAX && entries < GROUP_ENTRIES_MAX {
                    match inbox.try_recv() {
                        Ok(next) => {
                            entries += next.entries();
                            group.push(next);
                        }
                        Err(_) => break,
                    }
                }
                let mut replies = super::flusher::Replies::default();
                for command in group.drain(..) {
                    match command {
                        Command::Ingest {
                            store,
                            entries,
                            log_len,
                            keys,
                            reply,
                        } => {
                            observed.entries.inc_by(entries.len() as u64);
                            let held = ingest.ingest_keyed(&store, entries, log_len, keys);
                            replies.ingested.push((reply, held));
                        }
                        Command::Tip { store, reply } => {
                            replies.tips.push((reply, ingest.open_session(&store)));
                        }
                        Command::Hold {
                            store,
                            until_ms,
                            by,
                            reason,
                            reply,
                        } => {
                            let _ = reply.send(ingest.hold(&store, until_ms, &by, &reason));
                        }
                        Command::VoidHold { store, by, reply } => {
                            let _ = reply.send(ingest.void_hold(&store, &by));
                        }
                        Command::Catalogue { changes, by, reply } => {
                            replies
                                .catalogue
                                .push((reply, ingest.change_catalogue(changes, &by)));
                        }
                        Command::Transfer {
                            id,
                            step,
                            by,
                            reply,
                        } => {
                            replies
                                .transfers
                                .push((reply, ingest.transfer_step(id, step, &by)));
                        }
                        Command::HqWrite { write, by, reply } => {
                            replies.staffed.push((reply, ingest.hq_write(write, &by)));
                        }
                        Command::ImportMembers {
                            rows,
                            import,
                            by,
                            reply,
                        } => {
                            replies
                                .imported
                                .push((reply, ingest.import_members(rows, &import, &by)));
                        }
                        Command::Marketing { change, by, reply } => {
                            replies
                                .published
                                .push((reply, ingest.publish_marketing(change, &by)));
                        }
                        Command::IssueCampaign {
                            id,
                            on,
                            coupons,
                            targets,
                            by,
                            reply,
                        } => {
                            let ran = ingest.issue_campaign(&id, (on, coupons), &targets, &by);
                            replies.ran.push((reply, ran));
                        }
                        Command::RecordRun { run, by, reply } => {
                            replies.published.push((reply, ingest.record_run(&run, &by)));
                        }
                        Command::Link { store, up, log_len } => {
                            ingest.link(&store, up);
                            let status = ingest.statuses.entry(store).or_default();
                            status.log_len = status.log_len.max(log_len);
                        }
                        Command::Clock { store, off_ms } => ingest.clock(&store, off_ms),
                        Command::Certificate { store, until_ms } => {
                            ingest.certificates.insert(store, until_ms);
                        }
                        Command::Stores { reply } => {
                            replies.stores.push((reply, ingest.rows()));
                        }
                        Command::Tick => {}
                    }
                }
                if let Err(e) = ingest.post_referrals() {
                    tracing::error!(error = %e, "giving referral rewards failed; tried again at the next tick");
                }
                if let Err(e) = ingest.post_due_holds() {
                    tracing::error!(error = %e, "posting a hold failed; tried again at the next tick");
                }
                // Every waiting ask is tried again after each group: a recall's transfer may
                // have just arrived. Then the bank restores reserves and placements.
                let served = asks.serve(system_now_ms(), |reply| reply.is_closed(), |store, ask, may_recall| {
                    ingest
                        .serve_ask(store, ask, may_recall)
                        .unwrap_or_else(|e| AskStep::Refused(e.to_string()))
                });
                let mut recalls = served.recalls;
                // Headquarters' own spends (a gift on the member's page) call points back too.
                recalls.extend(ingest.take_gather_recalls());
                let mut asking = asks.members();
                asking.extend(ingest.gathering());
                match ingest.rebalance_except(&asking) {
                    Ok(refills) => recalls.extend(refills),
                    Err(e) => tracing::error!(error = %e, "rebalancing rights failed; tried again after the next change"),
                }
                observed.recalls.inc_by(recalls.len() as u64);
                observed.asks.inc_by(served.answers.len() as u64);
                for (holder, recall) in recalls {
                    let _ = recall_tx.send((holder, recall));
                }
                replies.asked = served.answers;
                replies.feed_len = ingest.feed_len;
                // The flusher answers the group once it is durable; this thread goes on.
                if flushes.send(replies).is_err() {
                    break;
                }
            }
            drop(flushes);
            let _ = flusher.join();
        })?;
    Ok((
        IngestHandle {
            commands,
            asks: asks_tx,
            feed_len: feed_rx,
            recalls,
            routes,
            metrics,
        },
        thread,
    ))
}
