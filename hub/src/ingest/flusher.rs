//! The flush of each group, on a thread of its own: the ingest thread hands a group's answers
//! over and goes on with the next group while the group's writes reach the disk (or the
//! database). Nothing is answered before the flush that made it durable; a later group's
//! writes may already be on their way, and its own flush covers both.

use std::sync::mpsc::{Receiver, SyncSender};

use super::*;

/// An answer and where it goes.
type Reply<T> = (oneshot::Sender<T>, T);

/// A group's answers, sent once its flush returns.
#[derive(Default)]
pub(super) struct Replies {
    pub(super) ingested: Vec<Reply<Result<u64, IngestError>>>,
    /// A tip is answered after the flush too: a Welcome must never name an entry that a crash
    /// could still take away.
    pub(super) tips: Vec<Reply<Result<ChainTip, IngestError>>>,
    pub(super) catalogue: Vec<Reply<Result<CatalogueWritten, CatalogueError>>>,
    pub(super) transfers: Vec<Reply<Result<Transfer, TransferRefused>>>,
    pub(super) staffed: Vec<Reply<Result<(), HqWriteError>>>,
    pub(super) imported: Vec<Reply<Result<Imported, IngestError>>>,
    pub(super) published: Vec<Reply<Result<(), MarketingRefused>>>,
    pub(super) ran: Vec<Reply<Result<protocol::campaign::Run, MarketingRefused>>>,
    /// The stores' rows (what headquarters holds of each log) once what they show is durable:
    /// an operator replacing a store's PC trusts them.
    pub(super) stores: Vec<Reply<Vec<StoreRow>>>,
    /// Grants go after the flush that made them durable, before the feed that carries them.
    pub(super) asked: Vec<(Answers, TxId, AskAnswer)>,
    /// The feed's length after the group.
    pub(super) feed_len: u64,
}

fn send_all<T>(replies: Vec<Reply<T>>) {
    for (reply, result) in replies {
        let _ = reply.send(result);
    }
}

impl Replies {
    /// Answers everyone once `flushed`, then publishes the feed. A failed flush stops the hub
    /// (fail-stop: nothing unflushed was acknowledged; stores send it again after a restart).
    fn send(self, flushed: Result<(), IngestError>, feed: &watch::Sender<u64>) {
        for (reply, result) in self.ingested {
            let result = match (&flushed, result) {
                (Err(e), Ok(_)) => Err(IngestError::Storage(e.to_string())),
                (_, result) => result,
            };
            let _ = reply.send(result);
        }
        if let Err(e) = flushed {
            tracing::error!(error = %e, "hub flush failed; the hub stops");
            std::process::exit(70);
        }
        send_all(self.tips);
        send_all(self.stores);
        send_all(self.catalogue);
        send_all(self.transfers);
        send_all(self.staffed);
        send_all(self.imported);
        send_all(self.published);
        send_all(self.ran);
        for (reply, id, answer) in self.asked {
            let _ = reply.send((id, answer));
        }
        feed.send_if_modified(|published| {
            std::mem::replace(published, self.feed_len) != self.feed_len
        });
    }
}

/// Starts the flusher: at most one group waits for it while another is being flushed.
pub(super) fn start(
    storage: Arc<dyn HubStore>,
    seconds: prometheus_client::metrics::histogram::Histogram,
    feed: watch::Sender<u64>,
) -> anyhow::Result<(SyncSender<Replies>, std::thread::JoinHandle<()>)> {
    let (groups, flushes): (SyncSender<Replies>, Receiver<Replies>) =
        std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("ingest-flush".into())
        .spawn(move || {
            for replies in flushes {
                let flushing = std::time::Instant::now();
                let flushed = storage
                    .flush()
                    .map_err(|e| IngestError::Storage(e.to_string()));
                seconds.observe(flushing.elapsed().as_secs_f64());
                replies.send(flushed, &feed);
            }
        })?;
    Ok((groups, thread))
}
