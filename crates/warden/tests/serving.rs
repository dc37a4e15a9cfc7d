//! The serving threads share client connections out evenly, however the clients connect.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A kept-alive connection that has been answered once (so the gateway has taken it).
async fn answered(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    tcp
}

/// Clients that connect one after another while the gateway is idle were all taken by the
/// thread the kernel happened to wake first, leaving the others idle under their load.
#[tokio::test(flavor = "multi_thread")]
async fn connections_are_shared_evenly_between_the_serving_threads() {
    let upstream = fixture_http(None).await;
    let w = warden("workers = 3", &http_upstream("fx", &upstream, "")).await;
    let mut open = Vec::new();
    for n in 1..=9 {
        open.push(answered(w.addr).await);
        let serving = w.connections_per_thread();
        assert_eq!(serving.iter().sum::<usize>(), n, "{serving:?}");
        let (least, most) = (serving.iter().min(), serving.iter().max());
        assert!(
            most.zip(least).is_some_and(|(m, l)| m - l <= 1),
            "{serving:?}"
        );
    }
    assert_eq!(w.connections_per_thread(), [3, 3, 3]);
    // Closed connections are no longer counted, and new ones go where there is room.
    open.truncate(3);
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.connections_per_thread().iter().sum::<usize>() != 3 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            w.connections_per_thread()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..6 {
        open.push(answered(w.addr).await);
    }
    assert_eq!(w.connections_per_thread(), [3, 3, 3]);
    drop(open);
    w.stop().await.unwrap();
}
