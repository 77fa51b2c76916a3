//! A TCP proxy on loopback that adds a fixed one-way delay to every byte in both directions, so
//! a benchmark can show what a client on a wide-area link would feel (there is no netem on these
//! machines). Order is kept and throughput is not limited: each chunk read is written to the
//! other side `one_way` after it arrived.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Listens on a loopback port and forwards every connection to `upstream`, each direction
/// delayed by `one_way` (a round trip gains twice that). Runs until the runtime stops or the
/// returned task is aborted.
pub async fn start(
    upstream: SocketAddr,
    one_way: Duration,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::join!(
                    pump(client_read, server_write, one_way),
                    pump(server_read, client_write, one_way)
                );
            });
        }
    });
    Ok((addr, task))
}

/// Copies `from` to `to`, each chunk written `delay` after it was read; end of stream is passed
/// on (as a shutdown of the write side) after the same delay.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (sender, mut receiver) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = from.read(&mut buffer).await.unwrap_or(0);
            // An empty chunk is the end of the stream.
            if sender
                .send((Instant::now() + delay, buffer[..n].to_vec()))
                .is_err()
                || n == 0
            {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = receiver.recv().await {
            tokio::time::sleep_until(due).await;
            if chunk.is_empty() || to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind the proxy: every byte comes back, in order, and a round trip takes
    /// at least twice the one-way delay (a lower bound, which load cannot make flaky).
    #[tokio::test]
    async fn delays_each_round_trip_and_keeps_every_byte_in_order() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = echo.accept().await.unwrap();
            let (mut r, mut w) = socket.split();
            tokio::io::copy(&mut r, &mut w).await.unwrap();
        });
        let (addr, _task) = start(upstream, Duration::from_millis(20)).await.unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let message: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
        let started = Instant::now();
        let (mut r, mut w) = client.split();
        let send = async {
            w.write_all(&message).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut back = Vec::new();
        let receive = r.read_to_end(&mut back);
        let (_, received) = tokio::join!(send, receive);
        received.unwrap();
        assert_eq!(back, message);
        assert!(started.elapsed() >= Duration::from_millis(40));
    }
}
