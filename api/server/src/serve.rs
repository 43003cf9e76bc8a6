//! The HTTP server: one builder used by `main` and by tests (bind, then run until a
//! shutdown future resolves). The projector runs inside it, woken by every command this
//! process executes and by PostgreSQL NOTIFY for everyone else's.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use projections::projector;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

use crate::connections::{ConnectionLimits, Limited, OpenConnections};
use crate::http::{GraphqlHttp, MAX_BODY_BYTES, REQUEST_TIMEOUT};
use crate::metrics::Metrics;
use engine::app::Engine;
use engine::auth::{Authenticator, JwtSettings};
use engine::clock::Clock;
use engine::coupons::CouponExpiry;
use engine::handover::{HandoverJobs, HandoverTick};
use engine::jobs::Jobs;
use graphql::in_flight::{InFlight, InFlightLimits};
use graphql::rate_limit::{RateLimiter, RateLimits};
use graphql::ApiState;
use wecom::campaign::CampaignJobs;
use wecom::client::WecomApi;
use wecom::directory::DirectorySync;
use wecom::import::{ImportSettings, WecomImportJobs};
use wecom::{InboxTick, OutboundSettings, OutboxTick};

/// How the server runs, beyond the engine it serves.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub jwt: JwtSettings,
    /// Serve the GraphiQL page (and introspection to every authenticated caller).
    pub graphiql: bool,
    /// Browser origins allowed to call the API (CORS); none by default.
    pub cors_origins: Vec<String>,
    pub clock: Clock,
    pub request_timeout: std::time::Duration,
    pub rate_limits: RateLimits,
    /// How often the job runner continues waiting jobs (and auto-accepts handovers).
    pub tick_every: std::time::Duration,
    /// Complete handovers whose 24-hour window passed without an answer. Off unless
    /// asked for: nothing should change data behind a caller's back by default.
    pub auto_accept_handovers: bool,
    /// Retries and polling of the calls to WeCom (docs/adr/0013-wecom-outbox.md).
    pub outbound: OutboundSettings,
    /// Requests running at once per caller and per tenant; derived from the pool size
    /// when not set.
    pub in_flight: Option<InFlightLimits>,
    /// Page sizes and patience of WeCom imports.
    pub wecom_import: ImportSettings,
    /// Bytes of today's portraits kept in memory (PostgreSQL); 0 turns the cache off.
    pub portrait_cache_bytes: u64,
    /// Connections open at once, and how long one may sit idle (`crate::connections`).
    pub connections: ConnectionLimits,
}

impl ServerSettings {
    pub fn new(listen: SocketAddr, jwt: JwtSettings) -> Self {
        Self {
            listen,
            jwt,
            graphiql: false,
            cors_origins: Vec::new(),
            clock: Clock::System,
            request_timeout: REQUEST_TIMEOUT,
            rate_limits: RateLimits::default(),
            tick_every: std::time::Duration::from_secs(30),
            auto_accept_handovers: false,
            outbound: OutboundSettings::default(),
            in_flight: None,
            wecom_import: ImportSettings::default(),
            portrait_cache_bytes: engine::reads::cache::DEFAULT_BYTES,
            connections: ConnectionLimits::default(),
        }
    }
}

/// A bound, not yet running server.
#[allow(missing_debug_implementations)]
pub struct App {
    listener: Limited,
    engine: Arc<Engine>,
    settings: ServerSettings,
    jobs: Jobs,
    wecom: WecomApi,
    metrics: Arc<Metrics>,
}

impl App {
    /// Binds `settings.listen` (port 0 picks a free one) around a started engine.
    pub async fn build(mut engine: Engine, settings: ServerSettings) -> std::io::Result<Self> {
        engine.portraits = Arc::new(engine::reads::cache::PortraitCache::new(
            settings.portrait_cache_bytes,
        ));
        let engine = Arc::new(engine);
        // WeCom's server API, one token cache for the callback endpoint and the ticks.
        let wecom = WecomApi::default();
        let jobs = Jobs::new(engine.clone(), settings.clock.clone())
            .with_kind(Arc::new(HandoverJobs))
            .with_kind(Arc::new(DirectorySync { api: wecom.clone() }))
            .with_kind(Arc::new(WecomImportJobs {
                api: wecom.clone(),
                settings: settings.wecom_import.clone(),
            }))
            .with_kind(Arc::new(CampaignJobs {
                api: wecom.clone(),
                poll_every: settings.outbound.poll_every,
            }))
            .with_periodic(Arc::new(HandoverTick {
                auto_accept: settings.auto_accept_handovers,
            }))
            .with_periodic(Arc::new(CouponExpiry))
            .with_periodic(Arc::new(InboxTick { api: wecom.clone() }))
            .with_periodic(Arc::new(OutboxTick::new(wecom.clone(), settings.outbound)));
        Ok(Self {
            listener: Limited::new(
                TcpListener::bind(settings.listen).await?,
                settings.connections,
            ),
            engine,
            settings,
            jobs,
            wecom,
            metrics: Arc::new(Metrics::default()),
        })
    }

    fn router(&self) -> Router {
        let state = Arc::new(ApiState {
            engine: self.engine.clone(),
            clock: self.settings.clock.clone(),
            jobs: self.jobs.clone(),
            open_introspection: self.settings.graphiql,
            in_flight: Arc::new(InFlight::new(self.in_flight_limits())),
            wecom: self.wecom.clone(),
        });
        let (gate, schema) = graphql::build(state);
        let http = Arc::new(GraphqlHttp {
            gate,
            schema,
            auth: Authenticator::new(
                self.settings.jwt.clone(),
                &self.engine.db,
                self.engine.presence.clone(),
            ),
            metrics: self.metrics.clone(),
            timeout: self.settings.request_timeout,
            limits: Arc::new(RateLimiter::new(self.settings.rate_limits)),
        });
        let origins: Vec<HeaderValue> = self
            .settings
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT]);
        let graphql = Router::new()
            .route("/graphql", post(crate::http::handle))
            .route("/graphql/ws", get(crate::ws::handle))
            .with_state(http)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
            .layer(cors);
        let mut router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(ready))
            .route("/metrics", get(metrics))
            .with_state(Observed {
                engine: self.engine.clone(),
                metrics: self.metrics.clone(),
                connections: self.listener.gauge(),
            })
            .merge(graphql)
            // Static files only; every request the page makes is an API request.
            .merge(crate::console::router("/graphql", "/graphql/ws"))
            .merge(crate::callback::router(
                self.engine.clone(),
                self.wecom.clone(),
                self.settings.clock.clone(),
            ));
        if self.settings.graphiql {
            router = router.merge(crate::graphiql::router("/graphql"));
        }
        router
    }

    /// On PostgreSQL a share of the pool; SQLite's one connection serializes reads
    /// anyway, so its limits only bound the queue, sized as for a default pool.
    fn in_flight_limits(&self) -> InFlightLimits {
        self.settings
            .in_flight
            .unwrap_or_else(|| match &self.engine.db {
                engine::db::Database::Postgres(pool) => {
                    InFlightLimits::for_pool(pool.options().get_max_connections())
                }
                engine::db::Database::Sqlite(_) => InFlightLimits::for_pool(10),
            })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    /// The WeCom API client (and token cache) this server's notices are read with.
    pub fn wecom(&self) -> WecomApi {
        self.wecom.clone()
    }

    /// Serves until `shutdown` resolves, then stops the projector between batches and
    /// lets in-flight requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        if let engine::db::Database::Postgres(pool) = &self.engine.db {
            tokio::spawn(engine::hearing::listen(
                self.engine.portraits.clone(),
                self.engine.presence.clone(),
                pool.clone(),
                stop.subscribe(),
            ));
        }
        let projector = tokio::spawn(projector::run(
            self.engine.db.clone(),
            self.engine.wake.clone(),
            stopped,
        ));
        match self.jobs.unfinished().await {
            Ok(unfinished) => {
                for (tenant, job) in unfinished {
                    tracing::info!(job = %job.job_id, kind = %job.kind, "resuming job");
                    self.jobs.spawn(tenant, job);
                }
            }
            Err(error) => tracing::error!(%error, "could not list unfinished jobs"),
        }
        let ticker = tokio::spawn(tick(
            self.jobs.clone(),
            self.settings.tick_every,
            stop.subscribe(),
        ));
        let router = self.router();
        let served = self.listener.serve(router, shutdown).await;
        let _ = stop.send(true);
        let _ = ticker.await;
        match projector.await {
            Ok(Err(error)) => tracing::error!(%error, "projector stopped with an error"),
            Err(error) => tracing::error!(%error, "projector task failed"),
            Ok(Ok(())) => {}
        }
        served
    }
}

/// The job runner's periodic step, until `shutdown` turns true.
async fn tick(jobs: Jobs, every: std::time::Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
        jobs.tick().await;
    }
}

/// Ready when the store answers and every projection is at its code version; the body
/// says how far behind each is.
async fn ready(State(observed): State<Observed>) -> impl IntoResponse {
    match projector::status(&observed.engine.db).await {
        Ok(statuses) => {
            let ready = statuses
                .iter()
                .all(|s| s.stored_version == Some(s.code_version));
            // A stopped projection leaves this instance serving (its other reads are
            // current, and every instance shares the log, so taking them all out of the
            // balancer would turn one stale read model into an outage); the body says
            // which one is stopped, where and what kind of failure. The error itself may
            // quote an event, so it stays in the log and in `projection_failures`.
            let body = json!({
                "ready": ready,
                "degraded": statuses.iter().any(|s| s.failure.is_some()),
                "projections": statuses.iter().map(|s| json!({
                    "name": s.name,
                    "version": s.code_version,
                    "eventsBehind": s.events_behind,
                    "secondsBehind": s.seconds_behind,
                    "stopped": s.failure.as_ref().map(|f| json!({
                        "kind": f.kind,
                        "position": f.at.position,
                        "since": f.since,
                        "attempts": f.attempts,
                    })),
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

/// What the health and metrics endpoints read.
#[derive(Clone)]
struct Observed {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    connections: OpenConnections,
}

/// What a server keeps in memory (`engine::hearing`): `<name>_lookups_total` by result,
/// and `<name>_live`.
fn render_memory(
    out: &mut String,
    name: &str,
    asked: &str,
    live_help: &str,
    lookups: &engine::hearing::Lookups,
    live: bool,
) {
    use std::sync::atomic::Ordering::Relaxed;
    out.push_str(&format!(
        "# HELP {name}_lookups_total {asked}, by whether memory answered.\n\
         # TYPE {name}_lookups_total counter\n"
    ));
    for (result, n) in [("hit", &lookups.hits), ("miss", &lookups.misses)] {
        let n = n.load(Relaxed);
        out.push_str(&format!(
            "{name}_lookups_total{{result=\"{result}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP {name}_live {live_help}.\n# TYPE {name}_live gauge\n{name}_live {}\n",
        u8::from(live)
    ));
}

/// Prometheus text format: requests, jobs, projector lag and progress.
async fn metrics(State(observed): State<Observed>) -> impl IntoResponse {
    let mut out = String::new();
    observed.metrics.render(&mut out);
    let connections = &observed.connections;
    out.push_str(&format!(
        "# HELP scrm_connections_open Client connections open now.\n\
         # TYPE scrm_connections_open gauge\nscrm_connections_open {}\n\
         # HELP scrm_connections_max Client connections kept open at most; more wait for a place.\n\
         # TYPE scrm_connections_max gauge\nscrm_connections_max {}\n\
         # HELP scrm_connections_refused_total Connections answered 503 busy: no place came free in time.\n\
         # TYPE scrm_connections_refused_total counter\nscrm_connections_refused_total {}\n",
        connections.open(),
        connections.max(),
        connections.refused()
    ));
    let engine = &observed.engine;
    render_memory(
        &mut out,
        "scrm_portrait_cache",
        "Portraits asked of the cache",
        "Whether portraits are served from memory",
        &engine.portraits.stats,
        engine.portraits.is_live(),
    );
    render_memory(
        &mut out,
        "scrm_staff_presence",
        "Callers' departure checks",
        "Whether departures are heard",
        &engine.presence.stats,
        engine.presence.is_live(),
    );
    let jobs: Result<Vec<(String, i64)>, sqlx::Error> =
        projections::on_pool!(&observed.engine.db, |pool| {
            sqlx::query_as("SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status")
                .fetch_all(pool)
                .await
        });
    if let Ok(jobs) = jobs {
        out.push_str("# HELP scrm_jobs Jobs by status, all tenants.\n");
        out.push_str("# TYPE scrm_jobs gauge\n");
        for (status, n) in jobs {
            out.push_str(&format!("scrm_jobs{{status=\"{status}\"}} {n}\n"));
        }
    }
    if let Ok(statuses) = projector::status(&observed.engine.db).await {
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
        out.push_str("# HELP scrm_projection_stopped 1 while the projection cannot go on.\n");
        out.push_str("# TYPE scrm_projection_stopped gauge\n");
        for s in &statuses {
            out.push_str(&format!(
                "scrm_projection_stopped{{projection=\"{}\"}} {}\n",
                s.name,
                u8::from(s.failure.is_some())
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
