//! The HTTP server: one builder used by `main` and by tests (bind, then run until a
//! shutdown future resolves). The projector runs inside it, woken by every command this
//! process executes and by PostgreSQL NOTIFY for everyone else's.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use projections::projector;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::Engine;

/// A bound, not yet running server.
#[allow(missing_debug_implementations)]
pub struct App {
    listener: TcpListener,
    engine: Arc<Engine>,
}

impl App {
    /// Binds `listen` (port 0 picks a free one) around a started engine.
    pub async fn build(engine: Engine, listen: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(listen).await?,
            engine: Arc::new(engine),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    /// Serves until `shutdown` resolves, then stops the projector between batches and
    /// lets in-flight requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let projector = tokio::spawn(projector::run(
            self.engine.db.clone(),
            self.engine.wake.clone(),
            stopped,
        ));
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(ready))
            .route("/metrics", get(metrics))
            .with_state(self.engine.clone());
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop.send(true);
        match projector.await {
            Ok(Err(error)) => tracing::error!(%error, "projector stopped with an error"),
            Err(error) => tracing::error!(%error, "projector task failed"),
            Ok(Ok(())) => {}
        }
        served
    }
}

/// Ready when the store answers and every projection is at its code version; the body
/// says how far behind each is.
async fn ready(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    match projector::status(&engine.db).await {
        Ok(statuses) => {
            let ready = statuses
                .iter()
                .all(|s| s.stored_version == Some(s.code_version));
            let body = json!({
                "ready": ready,
                "projections": statuses.iter().map(|s| json!({
                    "name": s.name,
                    "version": s.code_version,
                    "eventsBehind": s.events_behind,
                    "secondsBehind": s.seconds_behind,
                })).collect::<Vec<_>>(),
            });
            let code = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (code, Json(body))
        }
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "ready": false })),
            )
        }
    }
}

/// Prometheus text format: projector lag and progress.
async fn metrics(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    let mut out = String::new();
    if let Ok(statuses) = projector::status(&engine.db).await {
        out.push_str("# HELP scrm_projection_events_behind Committed events not yet applied.\n");
        out.push_str("# TYPE scrm_projection_events_behind gauge\n");
        for s in &statuses {
            out.push_str(&format!(
                "scrm_projection_events_behind{{projection=\"{}\"}} {}\n",
                s.name, s.events_behind
            ));
        }
        out.push_str(
            "# HELP scrm_projection_seconds_behind Age of the oldest event not yet applied.\n",
        );
        out.push_str("# TYPE scrm_projection_seconds_behind gauge\n");
        for s in &statuses {
            out.push_str(&format!(
                "scrm_projection_seconds_behind{{projection=\"{}\"}} {}\n",
                s.name, s.seconds_behind
            ));
        }
        out.push_str(
            "# HELP scrm_projection_events_applied_total Events applied since the last rebuild.\n",
        );
        out.push_str("# TYPE scrm_projection_events_applied_total counter\n");
        for s in &statuses {
            out.push_str(&format!(
                "scrm_projection_events_applied_total{{projection=\"{}\"}} {}\n",
                s.name, s.events_applied
            ));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
