//! Group commit: the journal's thread takes what arrived together, writes it as one batch,
//! flushes once and only then answers; grants wait here for the feed that brings them.

use super::*;

/// Where a command's result goes.
pub type Replier = oneshot::Sender<Result<Reply, Rejection>>;
type Envelope = (Message, Replier);

/// The most followed members kept for the uplink to take (16 bytes each): past it they are let
/// go and the uplink reads every followed member (as it does at each connection).
pub const FOLLOWED_QUEUED_MAX: usize = 65_536;

/// How the HTTP handlers reach the journal.
#[derive(Clone)]
pub struct JournalHandle {
    commands: mpsc::Sender<Envelope>,
    log_len: watch::Receiver<u64>,
    follows: watch::Receiver<u64>,
    /// The members followed since the uplink last took them, each on disk (`follows`
    /// changes after it grows).
    followed: Arc<FollowedQueue>,
    /// What each group did, for `/metrics`.
    pub metrics: GroupMetrics,
}

/// Each group's size (commands answered by one flush) and its flush's time.
#[derive(Clone)]
pub struct GroupMetrics {
    pub commands: prometheus_client::metrics::histogram::Histogram,
    pub flush_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl Default for GroupMetrics {
    fn default() -> Self {
        use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
        Self {
            commands: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            flush_seconds: crate::metrics::Metrics::seconds(),
        }
    }
}

impl JournalHandle {
    pub async fn send(&self, message: impl Into<Message>) -> Result<Reply, Rejection> {
        let (reply, answer) = oneshot::channel();
        self.send_with(message, reply).await?;
        answer.await.map_err(|_| Rejection::Unavailable)?
    }

    /// Queues a request or control message whose result goes to `reply` (for another task to
    /// wait on).
    pub async fn send_with(
        &self,
        message: impl Into<Message>,
        reply: Replier,
    ) -> Result<(), Rejection> {
        self.commands
            .send((message.into(), reply))
            .await
            .map_err(|_| Rejection::Unavailable)
    }

    /// The length of this store's own log on disk, updated after every flush.
    pub fn log_len(&self) -> watch::Receiver<u64> {
        self.log_len.clone()
    }

    /// Changes after every flush in which this store started to follow members or a
    /// backfill made one whole (`crate::follow`).
    pub fn follows(&self) -> watch::Receiver<u64> {
        self.follows.clone()
    }

    /// The members this store started to follow since the last call, written (on disk, or
    /// for a follow the feed started, published and on disk within sled's next flush: lost in
    /// a crash, the feed brings it again and headquarters answers a second follow with the
    /// history again): the uplink tells headquarters of them without reading every followed
    /// member again. `None` when
    /// more than `FOLLOWED_QUEUED_MAX` waited (nobody took them: no uplink, or a long time
    /// offline) and were let go: the taker reads every followed member instead.
    pub fn take_followed(&self) -> Option<Vec<MemberId>> {
        take_queued(&self.followed)
    }
}

type FollowedQueue = std::sync::Mutex<(Vec<MemberId>, bool)>;

/// Adds the members a flush started to follow to what the uplink will take, letting them all
/// go (and saying so) past `max`.
fn queue_followed(queue: &FollowedQueue, newly: Vec<MemberId>, max: usize) {
    if newly.is_empty() {
        return;
    }
    let mut queued = queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    queued.0.extend(newly);
    if queued.0.len() > max {
        *queued = (Vec::new(), true);
    }
}

fn take_queued(queue: &FollowedQueue) -> Option<Vec<MemberId>> {
    let mut queued = queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (list, overflowed) = std::mem::take(&mut *queued);
    (!overflowed).then_some(list)
}

/// Runs the journal on its own thread (flushes block). Returns the handle and the thread, which
/// ends when every handle is dropped or when storage fails.
pub fn spawn(mut journal: Journal) -> (JournalHandle, std::thread::JoinHandle<()>) {
    let (commands, mut inbox) = mpsc::channel::<Envelope>(4 * GROUP_COMMIT_MAX);
    let (log_len_tx, log_len) = watch::channel(journal.tip().next_seq - 1);
    let (follows_tx, follows) = watch::channel(0u64);
    let followed = Arc::new(std::sync::Mutex::new((Vec::new(), false)));
    let queue = followed.clone();
    let mut backfills = 0u64;
    let metrics = GroupMetrics::default();
    let observed = metrics.clone();
    // The thread logs under the caller's span: in a process hosting many stores, its store.
    let span = tracing::Span::current();
    let thread = std::thread::Builder::new()
        .name("journal".to_owned())
        .spawn(move || {
            let _span = span.enter();
            let mut group = Vec::with_capacity(GROUP_COMMIT_MAX);
            // Requests waiting for the feed to bring granted rights (`Control::AfterFeed`).
            let mut parked: Tracker<(Command, Replier)> = Tracker::default();
            // A position that cannot be read lets a waiting command run, to meet the failure.
            let fed_to = |journal: &Journal| journal.feed_applied().unwrap_or(u64::MAX);
            while let Some(first) = inbox.blocking_recv() {
                group.push(first);
                while group.len() < GROUP_COMMIT_MAX {
                    match inbox.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let mut results = Vec::with_capacity(group.len());
                // Results that need no flush of their own: the feed applied (headquarters streams
                // it again from what is durable here, `feed_applied` in the same atomic batch,
                // should this PC stop before sled's next background flush within half a
                // second). A store of a chain of hundreds would otherwise flush once for each
                // other store's registration.
                let mut feed_only = 0usize;
                for (message, reply) in group.drain(..) {
                    let control = match message {
                        Message::Command(command) => {
                            results.push((journal.handle(*command), reply));
                            continue;
                        }
                        Message::Control(control) => control,
                    };
                    match control {
                        Control::AfterFeed { .. } if reply.is_closed() => {}
                        Control::AfterFeed { upto, then } if fed_to(&journal) < upto => {
                            parked.granted(then.key().clone(), upto, (*then, reply));
                        }
                        Control::AfterFeed { then, .. } => {
                            results.push((journal.handle(*then), reply));
                        }
                        Control::Withdraw { key } => {
                            for (_, withdrawn) in parked.withdraw(&key) {
                                let _ = withdrawn.send(Err(Rejection::Withdrawn));
                            }
                            let _ = reply.send(Err(Rejection::Withdrawn));
                        }
                        Control::Holding { member, counters } => {
                            let holding = journal.holding(&member, &counters).map(|h| Reply {
                                outcome: Outcome::Holding(h),
                                replayed: false,
                            });
                            let _ = reply.send(holding);
                        }
                        Control::Backfill {
                            member,
                            items,
                            last,
                        } => {
                            backfills += u64::from(last);
                            results.push((journal.apply_backfill(member, items, last), reply));
                        }
                        Control::Follow { members } => {
                            results.push((journal.follow(&members), reply));
                        }
                        Control::HubRoutes(routed) => {
                            results.push((journal.hub_routes(routed), reply));
                        }
                        Control::HubHolds { seq } => {
                            results.push((journal.hub_holds(seq), reply));
                        }
                        Control::Restore {
                            upto,
                            entries,
                            keys,
                        } => {
                            results.push((journal.restore(upto, entries, keys), reply));
                        }
                        Control::ApplyFeed { upto, items, keys } => {
                            results.push((journal.apply_feed(upto, items, keys), reply));
                            feed_only += 1;
                            for (command, reply) in parked.due(fed_to(&journal)) {
                                if !reply.is_closed() {
                                    results.push((journal.handle(command), reply));
                                }
                            }
                        }
                    }
                }
                // Whoever gave up waiting (the till's request timed out) is not served later.
                parked.retain(|(_, reply)| !reply.is_closed());
                if results.is_empty() {
                    continue;
                }
                let flushing = std::time::Instant::now();
                let flushed = match results.len() > feed_only {
                    true => journal.flush(),
                    false => journal.publish(),
                };
                observed
                    .flush_seconds
                    .observe(flushing.elapsed().as_secs_f64());
                observed.commands.observe(results.len() as f64);
                for (result, reply) in results {
                    let result = match (&flushed, result) {
                        (Err(e), Ok(_)) => Err(Rejection::Storage(format!(
                            "{e}; the outcome is unknown: retry with the same Idempotency-Key"
                        ))),
                        (_, result) => result,
                    };
                    let _ = reply.send(result);
                }
                if let Err(e) = flushed {
                    // Fail-stop: the group may or may not be on disk. The tills were told to retry
                    // with the same key, which is safe either way once the node is restarted.
                    tracing::error!(error = %e, "flush failed; the node stops");
                    std::process::exit(70);
                }
                log_len_tx.send_replace(journal.tip().next_seq - 1);
                queue_followed(&queue, journal.take_followed(), FOLLOWED_QUEUED_MAX);
                let follows_now = journal.follows_started() + backfills;
                if *follows_tx.borrow() != follows_now {
                    follows_tx.send_replace(follows_now);
                }
            }
        })
        .expect("spawning the journal thread");
    (
        JournalHandle {
            commands,
            log_len,
            follows,
            followed,
            metrics,
        },
        thread,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followed_members_nobody_takes_are_let_go_past_the_bound_and_the_taker_told_to_read_all() {
        let queue: Arc<FollowedQueue> = Arc::default();
        let handle_take = || take_queued(&queue);
        let m = |n: u128| MemberId::mint(1_000, n);
        queue_followed(&queue, vec![m(1), m(2)], 2);
        assert_eq!(handle_take(), Some(vec![m(1), m(2)]));
        queue_followed(&queue, vec![m(3), m(4)], 2);
        queue_followed(&queue, vec![m(5)], 2);
        assert_eq!(queue.lock().unwrap().0.len(), 0, "let go past the bound");
        assert_eq!(handle_take(), None, "the taker reads every followed member");
        queue_followed(&queue, vec![m(6)], 2);
        assert_eq!(
            handle_take(),
            Some(vec![m(6)]),
            "and the queue starts again"
        );
    }
}
