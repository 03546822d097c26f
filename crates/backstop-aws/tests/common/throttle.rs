//! A slow link: a TCP proxy on 127.0.0.1 that passes requests through as
//! they come and answers in small chunks, a pause apart, so a download's
//! body takes a while and can be dropped halfway.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The proxy; stops accepting when dropped.
pub struct Throttle {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Throttle {
    /// A proxy to `upstream` answering `chunk` bytes at a time, `pause` apart.
    pub async fn start(upstream: SocketAddr, chunk: usize, pause: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, chunk, pause));
            }
        });
        Self { addr, accept }
    }

    /// The endpoint URL for a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, chunk: usize, pause: Duration) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    });
    let mut buf = vec![0u8; chunk];
    while let Ok(n @ 1..) = server_read.read(&mut buf).await {
        if client_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    requests.abort();
}
