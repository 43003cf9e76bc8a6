//! How many connections the server holds open, and when it closes one
//! (docs/adr/0027-connection-limit.md).
//!
//! Each open HTTP/1 connection keeps hyper's read and write buffers (about 25 KiB with
//! a request's headers and a portrait's answer) and, while a request waits, its
//! handler's future. Under an overload a client opens a connection per request it is
//! still waiting for, and the server held 2,048 of them: a heap profile of the open-loop
//! ladder's overload step put 65 MiB of the server's 176 MiB peak in connections
//! (BENCHMARKS.md, issue 19). Past the limit, new connections wait in the kernel's
//! accept queue, which costs the server nothing, and are accepted as others close.
//!
//! A limit alone would let idle keep-alive connections keep every place while new
//! ones wait (a client's pool keeps them open for as long as the server does), so:
//! - a connection that sat idle for the idle timeout is closed;
//! - while a new connection waits for a place, connections idle between requests for a
//!   moment are closed to make room, as nginx reuses its keep-alive connections.
//!
//! Closing is always hyper's graceful shutdown: an answer being written is finished
//! first, and an idle connection is closed at once. A connection upgraded to a
//! WebSocket leaves hyper and is closed by its own keep-alive instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// The defaults. At 512 connections an overloaded 2-core server stays under 200 MB, but
/// a keep-alive client's requests then wait in the accept queue until it times out
/// (BENCHMARKS.md, stop 39), so the default bounds memory only far out: about 250 MB of
/// connections. An idle one is closed after nginx's keep-alive timeout.
pub const MAX_CONNECTIONS: usize = 10_000;
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// How long a new connection waits for a place before idle ones are asked to make room,
/// and how often again while it still waits.
const MAKE_ROOM_AFTER: Duration = Duration::from_millis(50);
/// How long a connection must have been idle between requests to give up its place.
const IDLE_ENOUGH_TO_YIELD: Duration = Duration::from_millis(200);

/// Limits on the connections a server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max: usize,
    pub idle: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max: MAX_CONNECTIONS,
            idle: IDLE_TIMEOUT,
        }
    }
}

/// A bound listener and the places its connections take.
#[derive(Debug)]
pub struct Limited {
    listener: TcpListener,
    places: Arc<Semaphore>,
    limits: ConnectionLimits,
}

impl Limited {
    pub fn new(listener: TcpListener, limits: ConnectionLimits) -> Self {
        let limits = ConnectionLimits {
            max: limits.max.max(1),
            ..limits
        };
        Self {
            listener,
            places: Arc::new(Semaphore::new(limits.max)),
            limits,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What tells how many connections are open.
    pub fn gauge(&self) -> OpenConnections {
        OpenConnections {
            places: self.places.clone(),
            max: self.limits.max,
        }
    }

    /// Serves `router` on every accepted connection until `shutdown` resolves, then
    /// lets every connection finish its answer and waits for them.
    pub async fn serve(
        self,
        router: Router,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let (stopping, stop) = watch::channel(false);
        // Bumped to ask idle connections to make room for one that waits.
        let (room, wanted) = watch::channel(0u64);
        // Every connection's task holds a clone; `recv` ends once all are gone.
        let (alive, mut all_closed) = mpsc::channel::<()>(1);
        tokio::pin!(shutdown);
        loop {
            let place = tokio::select! {
                () = &mut shutdown => break,
                place = self.place(&room) => place,
            };
            let (stream, addr) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(%error, "could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Answers leave at once: a small response must not wait for the client's
            // delayed ACK of the previous one (Nagle's algorithm).
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
            let activity = Arc::new(Activity::new());
            let io = Connection {
                stream,
                _place: place,
                activity: activity.clone(),
            };
            tokio::spawn(serve_connection(
                io,
                addr,
                router.clone(),
                Closing {
                    activity,
                    idle: self.limits.idle,
                    stop: stop.clone(),
                    wanted: wanted.clone(),
                },
                alive.clone(),
            ));
        }
        drop(self.listener);
        let _ = stopping.send(true);
        drop(alive);
        let _ = all_closed.recv().await;
        Ok(())
    }

    /// A place for the next connection; while none is free, asks idle connections to
    /// make room.
    async fn place(&self, room: &watch::Sender<u64>) -> OwnedSemaphorePermit {
        if let Ok(place) = self.places.clone().try_acquire_owned() {
            return place;
        }
        let waiting = self.places.clone().acquire_owned();
        tokio::pin!(waiting);
        loop {
            tokio::select! {
                place = &mut waiting => {
                    return place.expect("the connection semaphore is never closed");
                }
                () = tokio::time::sleep(MAKE_ROOM_AFTER) => {
                    room.send_modify(|n| *n += 1);
                }
            }
        }
    }
}

/// What decides when a connection is closed.
struct Closing {
    activity: Arc<Activity>,
    idle: Duration,
    stop: watch::Receiver<bool>,
    wanted: watch::Receiver<u64>,
}

async fn serve_connection(
    io: Connection,
    addr: SocketAddr,
    router: Router,
    mut closing: Closing,
    _alive: mpsc::Sender<()>,
) {
    let service = router.map_request(move |request: axum::http::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(addr));
        request
    });
    let service = hyper_util::service::TowerToHyperService::new(service);
    let builder = Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut closed = false;
    // Once the server is gone, nobody asks for room any more.
    let mut asked = true;
    loop {
        let idle_at = closing.activity.last_moved() + closing.idle;
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::trace!(%error, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(idle_at), if !closed => {
                if Instant::now() >= closing.activity.last_moved() + closing.idle {
                    tracing::debug!(%addr, "closing a connection idle for its timeout");
                    connection.as_mut().graceful_shutdown();
                    closed = true;
                }
            }
            changed = closing.wanted.changed(), if !closed && asked => {
                if changed.is_err() {
                    asked = false;
                    continue;
                }
                if closing.activity.between_requests_for() >= IDLE_ENOUGH_TO_YIELD {
                    connection.as_mut().graceful_shutdown();
                    closed = true;
                }
            }
            changed = closing.stop.changed(), if !closed => {
                let _ = changed;
                connection.as_mut().graceful_shutdown();
                closed = true;
            }
        }
    }
}

/// Open connections, for `/metrics`.
#[derive(Debug, Clone)]
pub struct OpenConnections {
    places: Arc<Semaphore>,
    max: usize,
}

impl OpenConnections {
    pub fn open(&self) -> usize {
        self.max - self.places.available_permits()
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

/// When bytes last moved on a connection, and which way.
#[derive(Debug)]
struct Activity {
    since: Instant,
    /// Milliseconds after `since`.
    last_moved_ms: AtomicU64,
    /// The last bytes moved were the server's: an answer is out and no request has
    /// come since (HTTP/1 answers requests in turn).
    answered: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            last_moved_ms: AtomicU64::new(0),
            // A new connection has no request in progress.
            answered: AtomicBool::new(true),
        }
    }

    fn moved(&self, answered: bool) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_moved_ms.store(ms, Ordering::Relaxed);
        self.answered.store(answered, Ordering::Relaxed);
    }

    fn last_moved(&self) -> Instant {
        self.since + Duration::from_millis(self.last_moved_ms.load(Ordering::Relaxed))
    }

    /// How long the connection has been waiting for its next request (zero while one
    /// is in progress).
    fn between_requests_for(&self) -> Duration {
        if self.answered.load(Ordering::Relaxed) {
            self.last_moved().elapsed()
        } else {
            Duration::ZERO
        }
    }
}

/// An accepted connection: it gives its place back when dropped, and notes when bytes
/// move.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    _place: OwnedSemaphorePermit,
    activity: Arc<Activity>,
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut this.stream).poll_read(cx, buf));
        if buf.filled().len() > before {
            this.activity.moved(false);
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.stream).poll_write(cx, buf))?;
        this.activity.moved(true);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.stream).poll_write_vectored(cx, bufs))?;
        this.activity.moved(true);
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
