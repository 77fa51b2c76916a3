//! A UDP fault proxy between stores and the hub (there is no netem on these machines): it
//! relays datagrams both ways and, as told, drops, duplicates, delays (and so reorders) them, or
//! cuts the link entirely. Seeded, so a failing run's fault pattern can be replayed. The tests
//! use it for faults, `ops bench wallet` for a fixed round trip.

use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};

/// What the proxy does to each datagram.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Probability of dropping a datagram.
    pub drop: f64,
    /// Probability of sending a datagram twice.
    pub duplicate: f64,
    /// Each datagram waits at least this long (a fixed one-way delay when equal to the most).
    pub delay_ms_min: u64,
    /// Each datagram waits a random time up to this, which also reorders them.
    pub delay_ms_max: u64,
    /// Drop everything: a partition.
    pub cut: bool,
}

struct Shared {
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    stop: AtomicBool,
}

pub struct FaultProxy {
    /// Where stores should send (instead of the hub).
    pub address: SocketAddr,
    shared: Arc<Shared>,
}

/// A datagram waiting for its delay to pass.
struct Due {
    at: Instant,
    seq: u64,
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq)) // earliest first in a max-heap
    }
}

/// A lock whose holder panicked still guards plain data: take it.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FaultProxy {
    /// Relays between a loopback port of its own and `hub`.
    pub fn start(hub: SocketAddr, seed: u64) -> std::io::Result<Self> {
        let listen = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
        listen.set_read_timeout(Some(Duration::from_millis(50)))?;
        let address = listen.local_addr()?;
        let shared = Arc::new(Shared {
            faults: Mutex::new(Faults::default()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            stop: AtomicBool::new(false),
        });
        let (delayed, queue) = mpsc::channel::<Due>();
        std::thread::spawn({
            let shared = shared.clone();
            move || sender(queue, shared)
        });
        std::thread::spawn({
            let shared = shared.clone();
            move || relay(listen, hub, shared, delayed)
        });
        Ok(Self { address, shared })
    }

    pub fn set(&self, faults: Faults) {
        *locked(&self.shared.faults) = faults;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// Applies the faults to one datagram and schedules what survives.
fn forward(
    shared: &Shared,
    delayed: &mpsc::Sender<Due>,
    seq: &mut u64,
    socket: &Arc<UdpSocket>,
    to: SocketAddr,
    bytes: &[u8],
) {
    let faults = *locked(&shared.faults);
    if faults.cut {
        return;
    }
    let mut rng = locked(&shared.rng);
    if rng.random_bool(faults.drop.clamp(0.0, 1.0)) {
        return;
    }
    let copies = if rng.random_bool(faults.duplicate.clamp(0.0, 1.0)) {
        2
    } else {
        1
    };
    for _ in 0..copies {
        let least = faults.delay_ms_min.min(faults.delay_ms_max);
        let wait = if faults.delay_ms_max > least {
            rng.random_range(least..=faults.delay_ms_max)
        } else {
            least
        };
        *seq += 1;
        let due = Due {
            at: Instant::now() + Duration::from_millis(wait),
            seq: *seq,
            socket: socket.clone(),
            to,
            bytes: bytes.to_vec(),
        };
        let _ = delayed.send(due);
    }
}

fn relay(listen: Arc<UdpSocket>, hub: SocketAddr, shared: Arc<Shared>, delayed: mpsc::Sender<Due>) {
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok((n, client)) = listen.recv_from(&mut buf) else {
            continue;
        };
        let upstream = match upstreams.get(&client) {
            Some(upstream) => upstream.clone(),
            None => {
                // One upstream socket per store, so the hub sees each store at its own address.
                let Ok(socket) = upstream_for(hub, client, &listen, &shared, &delayed) else {
                    continue; // no socket now: the datagram is lost, as on a real network
                };
                upstreams.insert(client, socket.clone());
                socket
            }
        };
        forward(&shared, &delayed, &mut seq, &upstream, hub, &buf[..n]);
    }
}

/// A socket toward the hub for one store, with a thread relaying the hub's answers back.
fn upstream_for(
    hub: SocketAddr,
    client: SocketAddr,
    listen: &Arc<UdpSocket>,
    shared: &Arc<Shared>,
    delayed: &mpsc::Sender<Due>,
) -> std::io::Result<Arc<UdpSocket>> {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
    socket.connect(hub)?;
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    let (back, listen, shared, delayed) = (
        socket.clone(),
        listen.clone(),
        shared.clone(),
        delayed.clone(),
    );
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        let mut seq = 1u64 << 40;
        while !shared.stop.load(Ordering::Relaxed) {
            if let Ok(n) = back.recv(&mut buf) {
                forward(&shared, &delayed, &mut seq, &listen, client, &buf[..n]);
            }
        }
    });
    Ok(socket)
}

/// Sends each datagram when its time comes.
fn sender(queue: mpsc::Receiver<Due>, shared: Arc<Shared>) {
    let mut heap = BinaryHeap::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let wait = heap.peek().map_or(Duration::from_millis(20), |d: &Due| {
            d.at.saturating_duration_since(Instant::now())
        });
        match queue.recv_timeout(wait) {
            Ok(due) => heap.push(due),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while let Some(top) = heap.peek_mut() {
            if top.at > Instant::now() {
                break;
            }
            let due = std::collections::binary_heap::PeekMut::pop(top);
            // Connected upstream sockets must use send; the listening socket sends to the client.
            let _ = if due.socket.peer_addr().is_ok() {
                due.socket.send(&due.bytes)
            } else {
                due.socket.send_to(&due.bytes, due.to)
            };
        }
    }
}
