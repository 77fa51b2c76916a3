//! Appends written behind the ingest. `append` queues a store's batch and returns; one task of
//! the store's runtime writes the queue in order, the batches waiting together in one
//! transaction, while the ingest verifies the next. What the ingest reads afterwards must see
//! what it appended:
//!
//! - a view or a wallet a queued batch writes is read from the queue (the batch's own value);
//! - every other call waits until every batch queued before it is written (`settle`).
//!
//! A flush waits for the whole queue, then commits synchronously (`flush.rs`): nothing is
//! acknowledged to a store before that, as before. A transaction that fails is settled by the
//! count of batches (`hub_appends.n`): committed, or not and written again once the database
//! is back. If it is not back within `flush::WAIT_MS`, the count disagrees, or another hub took
//! the lease over, the pipe fails: every write after is refused, the flush fails, and the hub
//! stops to start again from what the database holds (the stores send the rest again).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use deadpool_postgres::Pool;

use super::lease::Lease;
use super::write::Batch;
use crate::storage::*;

/// Batches written in one transaction at most.
const GROUP_MAX: usize = 16;
/// Batches queued at most: an ingest faster than the database waits for it here.
const QUEUED_MAX: i64 = 64;

/// Why the pipe writes nothing more.
#[derive(Clone, Debug)]
pub(super) enum Failure {
    Deposed(String),
    Stopped(String),
}

impl Failure {
    pub(super) fn error(&self) -> HubStoreError {
        match self {
            Failure::Deposed(why) => HubStoreError::Deposed(why.clone()),
            Failure::Stopped(why) => HubStoreError::Stopped(why.clone()),
        }
    }
}

#[derive(Default)]
struct State {
    /// The database's count of batches once every queued batch is written.
    queued: i64,
    /// The count written: every batch before it is committed.
    written: i64,
    failed: Option<Failure>,
    /// Counted up by `restart`: what was queued before is never written.
    generation: u64,
    /// The thread that appends (the ingest's), which must read what it appended.
    pusher: Option<std::thread::ThreadId>,
    /// What queued batches write, with the count each batch follows (the last writer's).
    views: HashMap<Vec<u8>, (i64, Option<Vec<u8>>)>,
    wallets: HashMap<MemberId, (i64, Vec<u8>)>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(
        &self,
        state: std::sync::MutexGuard<'a, State>,
    ) -> std::sync::MutexGuard<'a, State> {
        self.changed.wait(state).unwrap_or_else(|p| p.into_inner())
    }

    /// Every batch before `count` is committed (by the writer of `generation`).
    fn written(&self, generation: u64, count: i64) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        state.written = count;
        state.views.retain(|_, (after, _)| *after >= count);
        state.wallets.retain(|_, (after, _)| *after >= count);
        self.changed.notify_all();
    }

    fn fail(&self, failure: Failure) {
        let generation = self.lock().generation;
        self.fail_in(generation, failure);
    }

    fn fail_in(&self, generation: u64, failure: Failure) {
        let mut state = self.lock();
        if state.generation == generation && state.failed.is_none() {
            tracing::error!(
                ?failure,
                "headquarters' database: this hub writes nothing more"
            );
            state.failed = Some(failure);
        }
        self.changed.notify_all();
    }

    /// Whether a batch queued in `generation` is to be written.
    fn writes(&self, generation: u64) -> bool {
        let state = self.lock();
        state.generation == generation && state.failed.is_none()
    }
}

/// A batch queued: its generation, the count it follows, the batch.
type Queued = (u64, i64, Batch);

/// Fails the pipe when the writer panics: no one waits for it in vain (the hub's flush fails
/// and the hub stops). A writer ending with its store (the queue closed, the runtime shut
/// down) leaves no one waiting.
struct WriterEnds(Arc<Shared>);

impl Drop for WriterEnds {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .fail(Failure::Stopped("the database's writer panicked".into()));
        }
    }
}

pub(super) struct Pipe {
    shared: Arc<Shared>,
    queue: tokio::sync::mpsc::UnboundedSender<Queued>,
}

impl Pipe {
    /// Starts the writer on `runtime`, counting on from `count` batches.
    pub(super) fn start(
        runtime: &tokio::runtime::Handle,
        pool: Pool,
        index: IndexKey,
        lease: Arc<RwLock<Option<Lease>>>,
        count: i64,
    ) -> Self {
        let shared = Arc::new(Shared::default());
        {
            let mut state = shared.lock();
            state.queued = count;
            state.written = count;
        }
        let (queue, batches) = tokio::sync::mpsc::unbounded_channel();
        runtime.spawn(write_behind(shared.clone(), batches, pool, index, lease));
        Self { shared, queue }
    }

    /// A pipe with no writer yet (a store being opened): it takes no batch.
    pub(super) fn idle() -> Self {
        let (queue, _) = tokio::sync::mpsc::unbounded_channel();
        Self {
            shared: Arc::default(),
            queue,
        }
    }

    /// Refuses when the pipe failed.
    pub(super) fn check(&self) -> Result<()> {
        match &self.shared.lock().failed {
            Some(failure) => Err(failure.error()),
            None => Ok(()),
        }
    }

    /// Stops the pipe for `failure` (the flush found the database disagreeing).
    pub(super) fn fail(&self, failure: Failure) {
        self.shared.fail(failure);
    }

    /// Queues `batch` (waiting while the queue is full). A thread appending after another
    /// first waits for the other's batches: reads of what was appended are the appending
    /// thread's alone.
    pub(super) fn push(&self, batch: Batch) -> Result<()> {
        let me = std::thread::current().id();
        let mut state = self.shared.lock();
        while state.failed.is_none()
            && (state.queued - state.written >= QUEUED_MAX
                || (state.pusher != Some(me) && state.written < state.queued))
        {
            state = self.shared.wait(state);
        }
        if let Some(failure) = &state.failed {
            return Err(failure.error());
        }
        let after = state.queued;
        state.pusher = Some(me);
        for (key, value) in batch.views() {
            state.views.insert(key.clone(), (after, value.clone()));
        }
        for (member, wallet) in batch.wallets() {
            state.wallets.insert(*member, (after, wallet.clone()));
        }
        state.queued = after + 1;
        let generation = state.generation;
        drop(state);
        if self.queue.send((generation, after, batch)).is_err() {
            let why = "the database's writer is gone".to_owned();
            self.shared.fail(Failure::Stopped(why.clone()));
            return Err(HubStoreError::Stopped(why));
        }
        Ok(())
    }

    /// Called from the thread that appends (the ingest's): waits until every batch it queued
    /// is written (or the pipe failed). Any other thread reads what the database has
    /// committed, as it would have a moment before, and does not wait.
    pub(super) fn settle(&self) {
        if self.shared.lock().pusher == Some(std::thread::current().id()) {
            self.settle_all();
        }
    }

    /// Waits until every batch queued before this call is written (or the pipe failed).
    fn settle_all(&self) {
        let mut state = self.shared.lock();
        let target = state.queued;
        while state.failed.is_none() && state.written < target {
            state = self.shared.wait(state);
        }
    }

    /// Waits for the whole queue: the count written, or why the pipe failed.
    pub(super) fn drain(&self) -> Result<i64> {
        self.settle_all();
        let state = self.shared.lock();
        match &state.failed {
            Some(failure) => Err(failure.error()),
            None => Ok(state.written),
        }
    }

    /// Counts on from what the database counts once the queue is written (`count`: a hub
    /// that took the lease); a hub deposed before writes again, and nothing it queued before
    /// is written.
    pub(super) fn restart(&self, count: impl FnOnce() -> Result<i64>) -> Result<()> {
        self.settle_all();
        let count = count()?;
        let mut state = self.shared.lock();
        if matches!(state.failed, Some(Failure::Deposed(_))) {
            state.failed = None;
        }
        state.generation += 1;
        state.queued = count;
        state.written = count;
        state.views.clear();
        state.wallets.clear();
        self.shared.changed.notify_all();
        Ok(())
    }

    /// A view as the queue leaves it, for the thread that appends (none: no queued batch
    /// writes it, or another thread asks).
    pub(super) fn view(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        let state = self.shared.lock();
        match state.pusher == Some(std::thread::current().id()) {
            true => state.views.get(key).map(|(_, v)| v.clone()),
            false => None,
        }
    }

    /// A wallet, encoded, as the queue leaves it, for the thread that appends.
    pub(super) fn wallet(&self, member: &MemberId) -> Option<Vec<u8>> {
        let state = self.shared.lock();
        match state.pusher == Some(std::thread::current().id()) {
            true => state.wallets.get(member).map(|(_, w)| w.clone()),
            false => None,
        }
    }
}

/// The writer: the queue in order, up to `GROUP_MAX` batches a transaction.
async fn write_behind(
    shared: Arc<Shared>,
    mut batches: tokio::sync::mpsc::UnboundedReceiver<Queued>,
    pool: Pool,
    index: IndexKey,
    lease: Arc<RwLock<Option<Lease>>>,
) {
    let _ends = WriterEnds(shared.clone());
    // A batch of another generation than the group's waits for the next group.
    let mut next: Option<Queued> = None;
    loop {
        let first = match next.take() {
            Some(queued) => queued,
            None => match batches.recv().await {
                Some(queued) => queued,
                None => break,
            },
        };
        let (generation, after, batch) = first;
        let mut group = vec![(after, batch)];
        while group.len() < GROUP_MAX {
            match batches.try_recv() {
                Ok((g, after, batch)) if g == generation => group.push((after, batch)),
                Ok(other) => {
                    next = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        if !shared.writes(generation) {
            // Written by no one: never acknowledged, the stores send them again.
            continue;
        }
        let held = lease.read().unwrap_or_else(|p| p.into_inner()).clone();
        match write_settled(&pool, &index, held.as_ref(), &group).await {
            Ok(()) => shared.written(generation, group.last().map_or(0, |(after, _)| after + 1)),
            Err(failure) => shared.fail_in(generation, failure),
        }
    }
}

/// Writes `group` until the database holds it, or says it cannot.
async fn write_settled(
    pool: &Pool,
    index: &IndexKey,
    lease: Option<&Lease>,
    group: &[(i64, Batch)],
) -> std::result::Result<(), Failure> {
    let first = group.first().map_or(0, |(after, _)| *after);
    let last = group.last().map_or(0, |(after, _)| *after);
    let deadline = tokio::time::Instant::now() + super::flush::wait();
    loop {
        let written = async {
            let mut client = pool.get().await.map_err(super::db)?;
            super::write::write_group(&mut client, index, lease, group).await
        }
        .await;
        let failed = match written {
            Ok(()) => return Ok(()),
            Err(HubStoreError::Deposed(why)) => return Err(Failure::Deposed(why)),
            Err(HubStoreError::Stopped(why)) => return Err(Failure::Stopped(why)),
            // Refused again however often it is sent: the hub stops at once, and says why.
            Err(HubStoreError::Refused(why)) => {
                return Err(Failure::Stopped(format!(
                    "the database refuses a batch of stores' entries: {why}"
                )));
            }
            Err(failed) => failed,
        };
        // Committed or not? The count says, once the database answers.
        match super::flush::count_when_back(pool, deadline).await {
            Some(n) if n == last + 1 => {
                tracing::warn!(error = %failed, "a group of batches answered an error but was committed");
                return Ok(());
            }
            Some(n) if n == first && tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %failed, "a group of batches was not written; writing it again");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Some(n) if n == first => {
                return Err(Failure::Stopped(format!(
                    "batches could not be written for {} s: {failed}",
                    super::flush::wait().as_secs()
                )));
            }
            Some(n) => {
                return Err(Failure::Stopped(format!(
                    "the database counts {n} batches appended, this hub {first}"
                )));
            }
            None => {
                return Err(Failure::Stopped(format!(
                    "the database did not come back: {failed}"
                )));
            }
        }
    }
}
