//! How many connections the server holds open, when it closes one, and what it tells
//! one it has no place for (docs/adr/0027-connection-limit.md).
//!
//! Each open HTTP/1 connection keeps hyper's read and write buffers (about 25 KiB with
//! a request's headers and a portrait's answer) and, while a request waits, its
//! handler's future. Under an overload a client opens a connection per request it is
//! still waiting for, and the server held 2,048 of them: a heap profile of the open-loop
//! ladder's overload step put 65 MiB of the server's 176 MiB peak in connections
//! (BENCHMARKS.md, issue 19). So the server holds at most its limit of them.
//!
//! One past the limit is accepted, holds no buffers, and waits a moment for a place,
//! which places are handed out in the order they were asked for. If none comes free in
//! time it is answered 503 "busy" with `Retry-After` and closed. Leaving it in the
//! kernel's accept queue instead (the first version) cost nothing either, but its
//! client could not tell a busy server from a dead one and gave up after its own
//! timeout, 10 s later.
//!
//! A limit alone would let idle keep-alive connections keep every place while new
//! ones wait (a client's pool keeps them open for as long as the server does), so:
//! - a connection that sat idle for the idle timeout is closed;
//! - while a new connection waits for a place, connections idle between requests for a
//!   moment are closed to make room, as nginx reuses its keep-alive connections.
//!
//! Closing is always hyper's graceful shutdown: an answer being written is finished
//! first, and an idle connection is closed at once. A connection upgraded to a
//! WebSocket leaves hyper, keeps its place, and is closed by its own keep-alive.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// The defaults. 512 connections carry far more than 2 cores serve (at 4,000 req/s and
/// 1.5 ms each, about 6 are busy) and keep at most about 16 MiB of buffers, which keeps
/// an overloaded server under 200 MB (BENCHMARKS.md, issue 19). An idle one is closed
/// after nginx's keep-alive timeout. One past the limit waits a quarter of a second for
/// a place, then is told the server is busy.
pub const MAX_CONNECTIONS: usize = 512;
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
pub const ADMIT_WITHIN: Duration = Duration::from_millis(250);

/// Connections accepted but not yet given a place (or being told the server is busy).
/// They hold no buffers while they wait, but each holds its socket; past this many, new
/// ones wait in the kernel's accept queue.
const WAITING: usize = 512;
/// How long a busy answer may take, so that a client that never sends its request does
/// not keep a waiting slot.
const REFUSE_WITHIN: Duration = Duration::from_secs(1);
/// A refused request's body is read (so that closing does not reset the connection
/// before the client reads the answer) up to this size.
const REFUSED_BODY: usize = 64 * 1024;

/// How long a new connection waits for a place before idle ones are asked to make room,
/// and how often again while one still waits.
const MAKE_ROOM_AFTER: Duration = Duration::from_millis(50);
/// How long a connection must have been idle between requests to give up its place.
const IDLE_ENOUGH_TO_YIELD: Duration = Duration::from_millis(200);

/// Limits on the connections a server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max: usize,
    pub idle: Duration,
    /// How long a connection past the limit waits for a place before it is answered
    /// 503 and closed.
    pub admit_within: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max: MAX_CONNECTIONS,
            idle: IDLE_TIMEOUT,
            admit_within: ADMIT_WITHIN,
        }
    }
}

/// A bound listener and the places its connections take.
#[derive(Debug)]
pub struct Limited {
    listener: TcpListener,
    places: Arc<Semaphore>,
    refused: Arc<AtomicU64>,
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
            refused: Arc::new(AtomicU64::new(0)),
            limits,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What tells how many connections are open, and how many were refused.
    pub fn gauge(&self) -> OpenConnections {
        OpenConnections {
            places: self.places.clone(),
            refused: self.refused.clone(),
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
        let (room, wanted) = watch::channel(0u64);
        let admission = Arc::new(Admission {
            places: self.places.clone(),
            refused: self.refused.clone(),
            within: self.limits.admit_within,
            room: Room {
                wanted: room,
                asked: Mutex::new(None),
            },
        });
        let waiting = Arc::new(Semaphore::new(WAITING));
        // Every connection's task holds a clone; `recv` ends once all are gone.
        let (alive, mut all_closed) = mpsc::channel::<()>(1);
        tokio::pin!(shutdown);
        loop {
            let ticket = tokio::select! {
                () = &mut shutdown => break,
                ticket = waiting.clone().acquire_owned() => {
                    ticket.expect("the waiting semaphore is never closed")
                }
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
            let (idle, stop, mut wanted) = (self.limits.idle, stop.clone(), wanted.clone());
            // A free place is taken here, in the order connections are accepted; the
            // rest wait for one in their own tasks, in the order they started to.
            let free = self.places.clone().try_acquire_owned().ok();
            let (admission, router, alive) = (admission.clone(), router.clone(), alive.clone());
            tokio::spawn(async move {
                let _alive = alive;
                let place = match free {
                    Some(place) => Some(place),
                    None => admission.place().await,
                };
                if let Some(place) = place {
                    drop(ticket);
                    // Its idleness counts from now, and only asks for room from now on
                    // concern it: it may have waited for this place behind them.
                    wanted.borrow_and_update();
                    let closing = Closing {
                        activity: Arc::new(Activity::new()),
                        idle,
                        stop,
                        wanted,
                    };
                    serve_connection(stream, place, addr, router, closing).await;
                } else {
                    admission.refused.fetch_add(1, Ordering::Relaxed);
                    // The waiting slot is kept until the answer is out, so that refusals
                    // are bounded too.
                    refuse(stream).await;
                    drop(ticket);
                }
            });
        }
        drop(self.listener);
        let _ = stopping.send(true);
        drop(alive);
        let _ = all_closed.recv().await;
        Ok(())
    }
}

/// Who gets a place, and for how long one past the limit may wait for it.
#[derive(Debug)]
struct Admission {
    places: Arc<Semaphore>,
    refused: Arc<AtomicU64>,
    within: Duration,
    room: Room,
}

impl Admission {
    /// A place for a connection that found none free, in the order they asked
    /// (tokio's semaphore is fair), or none after `within`; while it waits, idle
    /// connections are asked to make room.
    async fn place(&self) -> Option<OwnedSemaphorePermit> {
        let deadline = tokio::time::sleep(self.within);
        let waiting = self.places.clone().acquire_owned();
        tokio::pin!(deadline, waiting);
        loop {
            tokio::select! {
                place = &mut waiting => {
                    return Some(place.expect("the connection semaphore is never closed"));
                }
                () = &mut deadline => return None,
                () = tokio::time::sleep(MAKE_ROOM_AFTER) => self.room.ask(),
            }
        }
    }
}

/// Asks idle connections to make room, at most once per [`MAKE_ROOM_AFTER`] however
/// many connections wait: each ask wakes every open connection.
#[derive(Debug)]
struct Room {
    wanted: watch::Sender<u64>,
    asked: Mutex<Option<Instant>>,
}

impl Room {
    fn ask(&self) {
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        if asked.is_some_and(|at| at.elapsed() < MAKE_ROOM_AFTER) {
            return;
        }
        *asked = Some(Instant::now());
        self.wanted.send_modify(|n| *n += 1);
    }
}

/// Answers every request on `stream` with 503 and closes it; a liveness probe is still
/// told the process is alive, so that an orchestrator does not restart a server for
/// being busy.
async fn refuse(stream: TcpStream) {
    let service = hyper::service::service_fn(|request: axum::http::Request<Incoming>| async move {
        let alive = request.uri().path() == "/healthz";
        let body = axum::body::Body::new(request.into_body());
        let _ = axum::body::to_bytes(body, REFUSED_BODY).await;
        Ok::<_, std::convert::Infallible>(if alive {
            axum::http::Response::new(axum::body::Body::from("ok"))
        } else {
            busy()
        })
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(false);
    let answered = builder.serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(REFUSE_WITHIN, answered).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::trace!(%error, "a refused connection ended with an error"),
        Err(_) => tracing::trace!("a refused connection sent no request in time"),
    }
}

/// 503 with a GraphQL error a client can act on, as `RATE_LIMITED` is answered.
fn busy() -> axum::http::Response<axum::body::Body> {
    let body = serde_json::json!({ "errors": [{
        "message": "Server busy; retry later",
        "extensions": { "code": "BUSY", "retryAfterSeconds": 1 },
    }] });
    axum::http::Response::builder()
        .status(axum::http::StatusCode::SERVICE_UNAVAILABLE)
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .header(axum::http::header::RETRY_AFTER, "1")
        .header(axum::http::header::CONNECTION, "close")
        .body(axum::body::Body::from(body.to_string()))
        .expect("a static response is valid")
}

/// What decides when a connection is closed.
struct Closing {
    activity: Arc<Activity>,
    idle: Duration,
    stop: watch::Receiver<bool>,
    wanted: watch::Receiver<u64>,
}

async fn serve_connection(
    stream: TcpStream,
    place: OwnedSemaphorePermit,
    addr: SocketAddr,
    router: Router,
    mut closing: Closing,
) {
    let io = Connection {
        stream,
        _place: place,
        activity: closing.activity.clone(),
    };
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
    refused: Arc<AtomicU64>,
    max: usize,
}

impl OpenConnections {
    pub fn open(&self) -> usize {
        self.max - self.places.available_permits()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections answered "busy" because none made room in time, since the start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
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
