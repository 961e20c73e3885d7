//! Accepting HTTPS connections and serving them with hyper.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::timeout_io::WriteTimeout;
use super::{AppState, routes};
use crate::config::ServerConfig;
use crate::runtime::{self, LocalExec};

/// Small kernel send buffers keep a slow client's backlog to a fraction of a second of
/// video instead of megabytes (design decision 2).
const SEND_BUFFER: usize = 64 * 1024;
/// Request heads larger than this are refused with 431.
const MAX_HEAD: usize = 8 * 1024;

/// Runs a hyper connection (HTTP/1 or HTTP/2: same methods, no common trait) until it
/// ends, or until shutdown, when it finishes its in-flight responses and closes.
macro_rules! drive {
    ($conn:ident, $shutdown:ident) => {{
        let mut shutdown = $shutdown;
        tokio::pin!($conn);
        tokio::select! {
            res = $conn.as_mut() => return Ok(res?),
            _ = shutdown.changed() => $conn.as_mut().graceful_shutdown(),
        }
        Ok($conn.await?)
    }};
}

/// Accepts connections until shutdown; each connection runs as its own local task.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Rc<AppState>,
    limits: ServerConfig,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut shutdown = state.shutdown.clone();
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning, and keep serving.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if state.connections.get() >= limits.max_connections {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    refused,
                    "refusing {peer}: {} connections open (server.max_connections)",
                    limits.max_connections
                );
            }
            continue;
        }
        let (acceptor, state, limits) = (acceptor.clone(), Rc::clone(&state), limits.clone());
        runtime::spawn(async move {
            let _open = state.connections.enter();
            if let Err(e) = connection(stream, peer, acceptor, &state, &limits).await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    acceptor: TlsAcceptor,
    state: &Rc<AppState>,
    limits: &ServerConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    stream.set_nodelay(true)?;
    socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER)?;
    // The timeout wraps the TCP stream, under TLS: rustls taking bytes into its own
    // buffer is not progress, the peer taking them off the socket is.
    let stream = WriteTimeout::new(stream, limits.write_timeout);
    let tls = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream))
        .await
        .map_err(|_| "TLS handshake timed out")??;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let service = {
        let state = Rc::clone(state);
        service_fn(move |req| routes::handle(Rc::clone(&state), peer, req))
    };
    let shutdown = state.shutdown.clone();
    if h2 {
        let conn = http2::Builder::new(LocalExec)
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEAD as u32)
            .max_concurrent_streams(32)
            .max_send_buf_size(SEND_BUFFER)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(limits.write_timeout)
            .serve_connection(io, service);
        drive!(conn, shutdown)
    } else {
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(MAX_HEAD)
            .keep_alive(true)
            .serve_connection(io, service);
        drive!(conn, shutdown)
    }
}
