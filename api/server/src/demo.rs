//! `scrm demo`: everything a new user needs to see the engine work, from one command.
//! The embedded database unless DATABASE_URL says otherwise, the `demo` tenant seeded
//! once, read models built, the server with GraphiQL, and tokens to paste.

use std::net::SocketAddr;

use domain::values::TenantId;
use fixtures::{Params, Scale};
use projections::{on_pool, projector, rebuild};

use crate::config::{AuthSettings, DatabaseSettings};
use crate::seed::{self, Progress};
use crate::serve::{shutdown_signal, App, ServerSettings};
use crate::token::TokenArgs;
use engine::auth::{JwtSettings, Role};
use engine::db::Database;

pub const TENANT: &str = "demo";

async fn tenant_exists(db: &Database) -> Result<bool, sqlx::Error> {
    let n: i64 = on_pool!(db, |pool| {
        sqlx::query_scalar("SELECT count(*) FROM tenants WHERE tenant_id = $1")
            .bind(TENANT)
            .fetch_one(pool)
            .await
    })?;
    Ok(n > 0)
}

/// The guide with the most customers, and their store.
async fn busiest_guide(db: &Database) -> Result<Option<(String, String)>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT r.staff_id, s.store_id FROM rm_customer_staff r \
             JOIN rm_staff s ON s.tenant_id = r.tenant_id AND s.staff_id = r.staff_id \
             WHERE r.tenant_id = $1 AND s.departed_at IS NULL \
             GROUP BY r.staff_id, s.store_id ORDER BY count(*) DESC, r.staff_id LIMIT 1",
        )
        .bind(TENANT)
        .fetch_optional(pool)
        .await
    })
}

/// The mass messages the generated log holds, as finished campaign jobs (the fixtures
/// write their deliveries and holdouts, not the jobs that sent them), so `campaignResults`
/// answers for them as for a campaign started through the API. Returns the busiest one's
/// job id.
async fn register_campaigns(db: &Database) -> anyhow::Result<Option<String>> {
    let found: Vec<(String, i64, i64)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT campaign_id, min(at_s), count(*) FROM rm_campaign_member \
             WHERE tenant_id = $1 GROUP BY campaign_id HAVING max(kind) = 'mass_message' \
             ORDER BY count(*) DESC, campaign_id",
        )
        .bind(TENANT)
        .fetch_all(pool)
        .await
    })?;
    for (campaign, first_s, _) in &found {
        let send_at = chrono::DateTime::from_timestamp(*first_s, 0).unwrap_or_default();
        let input = engine::campaign::CampaignInput {
            name: Some(format!("门店群发 {campaign}")),
            kind: engine::campaign::KindInput::MassMessage,
            text: format!("门店群发 {campaign}"),
            attachments: Vec::new(),
            coupon_campaign: None,
            filter: Default::default(),
            stores: None,
            send_at,
            holdout_per_mille: 100,
        };
        let input = serde_json::to_string(&input)?;
        on_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO jobs (tenant_id, job_id, kind, status, input, created_by, \
                 created_at, started_at, finished_at) \
                 VALUES ($1, $2, $3, 'succeeded', $4, 'system:fixtures', $5, $5, $5) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(TENANT)
            .bind(campaign)
            .bind(engine::campaign::KIND)
            .bind(&input)
            .bind(send_at)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
    }
    Ok(found.into_iter().next().map(|(campaign, _, _)| campaign))
}

fn token(
    jwt: &JwtSettings,
    role: Role,
    staff: Option<&str>,
    stores: &[String],
) -> anyhow::Result<String> {
    TokenArgs {
        tenant: TENANT.to_string(),
        role,
        staff: staff.map(str::to_string),
        stores: stores.to_vec(),
        scopes: Vec::new(),
        hours: 12,
    }
    .mint(jwt)
}

pub async fn run(
    database: &DatabaseSettings,
    auth: &AuthSettings,
    listen: SocketAddr,
    scale: Scale,
) -> anyhow::Result<()> {
    let (db, backend) = database.open_migrated().await?;
    if !tenant_exists(&db).await? {
        println!(
            "seeding the demo tenant into {} (once)...",
            backend.describe()
        );
        let params = Params::for_scale(scale, TenantId::parse_slug(TENANT)?, 1);
        let report = seed::seed(&db, params, false, Progress::Auto).await?;
        println!(
            "seeded {} events in {:.1}s; building read models...",
            report.rows,
            report.elapsed.as_secs_f64()
        );
        projector::prepare(&db).await?;
        rebuild::rebuild_all(&db, false).await?;
        register_campaigns(&db).await?;
    }
    let campaign = register_campaigns(&db).await?.unwrap_or_default();
    let campaign_id = graphql::ids::encode("Job", &campaign).to_string();
    let engine = engine::app::Engine::start(db.clone()).await?;
    projector::catch_up(&db).await?;
    let jwt = auth.jwt()?;
    let (guide, store) = busiest_guide(&db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo tenant has no guide with customers"))?;
    let stores = vec![store];
    let guide_token = token(&jwt, Role::Guide, Some(&guide), &stores)?;
    let ops_token = token(&jwt, Role::Operations, None, &[])?;
    let analyst_token = token(&jwt, Role::Analyst, None, &[])?;
    let mut settings = ServerSettings::new(listen, jwt);
    settings.graphiql = true;
    let app = App::build(engine, settings).await?;
    let url = format!("http://{}", app.local_addr());
    println!(
        r#"
scrm demo is running on {store_desc}

  GraphiQL:  {url}/graphiql   (paste a token into the Headers tab:
                               {{"Authorization": "Bearer <token>"}})

Tokens (valid 12 hours, tenant "demo"):
  guide {guide} ({store}):
    {guide_token}
  operations:
    {ops_token}
  analyst:
    {analyst_token}

Try, as the guide:
  {{ customers(first: 5, filter: {{stages: [REPURCHASE]}}) {{ edges {{ node {{ id name maskedPhone stage lastActivityAt
      tags(first: 5) {{ edges {{ node {{ name }} }} }} timeline(first: 3) {{ edges {{ node {{ occurredAt summary }} }} }} }} }} }} }}
As operations:
  {{ departures(first: 5) {{ edges {{ node {{ staffId name customersRemaining groupsRemaining }} }} }} }}
As the analyst:
  {{ funnel(by: STORE, first: 5) {{ edges {{ node {{ key friends firstPurchase repurchase repurchaseRate }} }} }} }}
  {{ campaignResults(id: "{campaign_id}") {{ reached {{ customers buyers amountFen conversionRate }}
      heldOut {{ customers buyers conversionRate }} conversionUplift }} }}

Or with curl:
  curl -s {url}/graphql -H 'content-type: application/json' \
    -H 'authorization: Bearer {guide_token}' \
    -d '{{"query":"{{ viewer {{ subject role }} customers(first: 3) {{ edges {{ node {{ name stage }} }} }} }}"}}'

Ctrl-C stops the server; the data stays in {store_desc}.
"#,
        store_desc = backend.describe(),
        store = stores[0],
    );
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}
