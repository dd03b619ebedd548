//! The accept loop under the router: each TCP connection gets
//! `TCP_NODELAY` and an HTTP/1.1 connection whose request heads must
//! arrive within a deadline.
//!
//! `axum::serve` sets neither. Without `TCP_NODELAY` a response written in
//! several small pieces (an SSE answer is) waits in Nagle's algorithm for
//! the client's delayed ACK, 40 ms on every call after the first on a
//! kept-alive connection. Without a head deadline a client that sends half
//! a request head holds its connection for ever. The deadline runs while
//! hyper waits for a head, so an idle kept-alive connection closes after it
//! too; it never runs while a response streams (an SSE stream, a long lock
//! wait). Body reads have their own deadline, in the router (`body.rs`).
//!
//! Deliberately absent: HTTP/2 and TLS (the server speaks plain HTTP/1.1,
//! on loopback or behind a proxy).

use std::io;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Serves `app` on `listener` until `shutdown` fires, then lets open
/// connections finish (each is asked to close after its response in
/// flight) and returns when the last one has.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // Every connection task holds a receiver; `closed()` resolves when the
    // last one is gone.
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, %peer, "cannot set TCP_NODELAY on a connection");
        }
        let service = TowerToHyperService::new(app.clone());
        let connection = http1.serve_connection(TokioIo::new(stream), service);
        let shutdown = shutdown.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "an HTTP connection ended with an error");
            }
            drop(open);
        });
    }
    drop(open_rx);
    drop(listener);
    open_tx.closed().await;
    Ok(())
}

/// A connection reset before it was accepted is the client's business; any
/// other failure (out of file descriptors, say) is logged and retried after
/// a pause, so the loop does not spin.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting an HTTP connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
