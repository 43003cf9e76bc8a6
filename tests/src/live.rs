//! A running server over real HTTP, for end-to-end API tests: the same `App` builder
//! `scrm serve` uses, on a test database, with a known signing secret.

use std::sync::Arc;

use domain::values::{StoreId, TenantId};
use engine::app::Engine;
use engine::auth::{JwtSettings, Role};
use engine::clock::Clock;
use graphql::rate_limit::{Rate, RateLimits};
use serde_json::{json, Value};
use server::serve::{App, ServerSettings};
use tokio::sync::oneshot;
use wecom::client::WecomApi;

use crate::TestDb;

pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";

pub fn jwt() -> JwtSettings {
    JwtSettings::new(SECRET, "scrm", "scrm-api")
}

/// A token for `role` in `tenant`; guides and store managers pass their staff id.
pub fn token(tenant: &str, role: Role, staff: Option<&str>, stores: &[&str]) -> String {
    token_with_scopes(tenant, role, staff, stores, &[])
}

pub fn token_with_scopes(
    tenant: &str,
    role: Role,
    staff: Option<&str>,
    stores: &[&str],
    scopes: &[&str],
) -> String {
    let jwt = jwt();
    let stores: Vec<StoreId> = stores.iter().map(|s| StoreId::parse(*s).unwrap()).collect();
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let subject = staff.map_or_else(|| format!("{}-test", role.as_str()), str::to_string);
    let claims = jwt.claims(
        &TenantId::parse(tenant).unwrap(),
        &subject,
        role,
        &stores,
        &scopes,
        chrono::Utc::now(),
        chrono::Duration::hours(1),
    );
    jwt.mint(&claims)
}

/// The tenants the suites mint tokens for, registered in every test server's store
/// as `scrm tenant create` would: a token of any other tenant is refused.
pub const TEST_TENANTS: &[&str] = &[
    "acme", "beta", "dep", "globex", "other", "rival", "wecom-co",
];

/// Registers `tenant` (if it is not yet) with the default settings.
pub async fn register(db: &engine::db::Database, tenant: &str) {
    let new = engine::tenants::NewTenant {
        tenant: TenantId::parse(tenant).unwrap(),
        name: tenant.to_string(),
        time_zone: chrono_tz::Asia::Shanghai,
        group_capacity: engine::tenants::DEFAULT_GROUP_CAPACITY,
        locale: engine::tenants::ZH_CN,
    };
    engine::tenants::create(db, &new)
        .await
        .expect("register tenant");
}

/// A server running until dropped.
#[allow(missing_debug_implementations)]
pub struct TestApi {
    pub base: String,
    pub engine: Arc<Engine>,
    /// The server's WeCom API client (and token cache), for processing notices here.
    pub wecom: WecomApi,
    pub clock: Clock,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApi {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, |_| {}).await
    }

    pub async fn start_with(db: &TestDb, tune: impl FnOnce(&mut ServerSettings)) -> Self {
        let engine = db.engine().await;
        for tenant in TEST_TENANTS {
            register(&engine.db, tenant).await;
        }
        let clock = Clock::shiftable();
        let mut settings = ServerSettings::new("127.0.0.1:0".parse().unwrap(), jwt());
        settings.clock = clock.clone();
        // Suites fire hundreds of requests per token within a second; the limits
        // themselves are tested with their production values in `tests/api/limits.rs`.
        settings.rate_limits = RateLimits {
            per_caller: Rate::new(1e6, 1e6),
            tenant_points: Rate::new(1e9, 1e9),
            anonymous: Rate::new(1e6, 1e6),
            heavy: Rate::new(1e6, 1e6),
        };
        tune(&mut settings);
        let app = App::build(engine, settings).await.expect("bind");
        let base = format!("http://{}", app.local_addr());
        let engine = app.engine();
        let wecom = app.wecom();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            base,
            engine,
            wecom,
            clock,
            http: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// The server's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// POSTs a GraphQL request as JSON and returns the parsed body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 200, "unexpected HTTP status");
        response.json().await.expect("JSON body")
    }

    /// Applies everything committed so far to the read models.
    pub async fn settle(&self) {
        projections::projector::catch_up(&self.engine.db)
            .await
            .expect("catch up");
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The first error's `extensions.code`, if any.
pub fn error_code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_string)
}
