//! The `scrm` command line: subcommands, settings and their dispatch.

use crate::token::TokenArgs;
use clap::{Args, Parser, Subcommand, ValueEnum};
use domain::values::TenantId;
use fixtures::{Params, Scale};

use crate::bench;
use crate::config::{AuthSettings, Backend, DatabaseSettings};
use crate::seed::{self, Progress};
use engine::auth::{ApiKeys, Role};
use engine::db::Database;
use engine::tenants::{NewTenant, TenantStatus};
use projections::registry;
use projections::{projector, rebuild, ProjectionError};

#[derive(Debug, Parser)]
#[command(
    name = "scrm",
    version,
    about = "Event-sourced SCRM engine for WeCom retail chains"
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseSettings,

    #[command(flatten)]
    pub auth: AuthSettings,

    /// A file of `NAME=value` settings (e.g. DATABASE_URL=..., SCRM_LISTEN=...), read
    /// under flags and the environment.
    #[arg(long, env = "SCRM_CONFIG", global = true)]
    pub config: Option<std::path::PathBuf>,

    /// Log format on stderr.
    #[arg(long, env = "SCRM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the database schema (PostgreSQL or the embedded SQLite file).
    Migrate,
    /// Run the server: migrations, projections (rebuilt if their code changed), the
    /// background projector, /healthz, /readyz and /metrics.
    Serve(ServeArgs),
    /// The demo: the embedded database (unless DATABASE_URL is set), the `demo` tenant
    /// seeded once, the server with GraphiQL, and ready-made tokens printed.
    Demo {
        /// Address to listen on.
        #[arg(long, env = "SCRM_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Data scale to seed (tests use `tiny`).
        #[arg(long, default_value = "demo", hide = true)]
        scale: String,
    },
    /// Mint a development token signed with the configured secret.
    Token(TokenArgs),
    /// Create an API key for an integration (the key is shown once).
    ApiKey {
        #[arg(long)]
        tenant: String,
        /// A name for the integration (it becomes the key's subject).
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = Role::Operations)]
        role: Role,
        /// Extra scopes, e.g. `pii`.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// Print the GraphQL schema (SDL), as committed in schema.graphql.
    Schema,
    /// Generate a deterministic retail tenant and load it (migrates first).
    Seed(SeedArgs),
    /// Rebuild read models from the whole log (blue/green: readers keep the old tables
    /// until the swap). Migrates first.
    Rebuild {
        /// A projection by name (see `scrm rebuild --all` for every one).
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        projection: Option<String>,
        /// Every projection.
        #[arg(long)]
        all: bool,
    },
    /// Benchmarks that print figures next to a ceiling measured in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The WeCom callback endpoint's per-tenant settings.
    #[command(subcommand)]
    Wecom(WecomCommand),
    /// Register, disable or enable a tenant: only registered, active tenants are served.
    #[command(subcommand)]
    Tenant(TenantCommand),
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register a tenant (migrates first). Nothing changes if it exists.
    Create {
        #[arg(long)]
        tenant: String,
        /// The name people read, e.g. the chain's.
        #[arg(long)]
        name: String,
        /// The IANA zone its calendar days (daily WeCom limits) are counted in.
        #[arg(long, default_value = "Asia/Shanghai")]
        time_zone: chrono_tz::Tz,
        /// Members a customer group holds (WeCom's default 500; up to 2,000).
        #[arg(long, default_value_t = engine::tenants::DEFAULT_GROUP_CAPACITY,
              value_parser = clap::value_parser!(u32).range(1..=2000))]
        group_capacity: u32,
    },
    /// Stop serving a tenant: its tokens and keys are refused, its data stays.
    Disable {
        #[arg(long)]
        tenant: String,
    },
    /// Serve a disabled tenant again.
    Enable {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WecomCommand {
    /// Save (or replace) a tenant's callback: the token and EncodingAESKey from WeCom's
    /// callback page, the corp id, and the secret that lets the engine read WeCom's API
    /// for notices that do not carry the new state. Migrates first. Nothing secret is
    /// printed.
    Configure(WecomConfigureArgs),
    /// Put a tenant's unhandled or failed notices back in the queue (the `wecomNotices`
    /// query lists them with the reason): after configuring API credentials, or fixing
    /// what a domain rule refused. A running server applies them on its next tick.
    Retry(WecomRetryArgs),
}

#[derive(Debug, Args)]
pub struct WecomRetryArgs {
    #[arg(long)]
    pub tenant: String,
    /// Which notices: `unhandled` or `failed`.
    #[arg(long, value_parser = ["unhandled", "failed"])]
    pub status: String,
}

#[derive(Debug, Args)]
pub struct WecomConfigureArgs {
    #[arg(long)]
    pub tenant: String,
    /// The callback Token from WeCom's console.
    #[arg(long, env = "SCRM_WECOM_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The callback EncodingAESKey (43 characters).
    #[arg(long, env = "SCRM_WECOM_ENCODING_AES_KEY", hide_env_values = true)]
    pub encoding_aes_key: String,
    /// The tenant's corp id: checked against every notice's ToUserName/AuthCorpId and
    /// used to read the API.
    #[arg(long)]
    pub corp_id: String,
    /// A third-party app's suite id, when the ciphertexts end with it instead of the
    /// corp id.
    #[arg(long)]
    pub suite_id: Option<String>,
    /// A file holding the secret of an app that may read customer contacts (only its
    /// first line is used). Without it (or SCRM_WECOM_CORP_SECRET), notices that need
    /// an API read stay unhandled.
    #[arg(long, conflicts_with = "corp_secret")]
    pub corp_secret_file: Option<std::path::PathBuf>,
    /// The secret itself, from the environment only: a flag would show in `ps` and in
    /// shell history.
    #[arg(long = "corp-secret-from-env", env = "SCRM_WECOM_CORP_SECRET", hide = true,
          hide_env_values = true, value_parser = parse_secret)]
    pub corp_secret: Option<wecom::client::Secret>,
    /// Where WeCom's API is (default https://qyapi.weixin.qq.com), e.g. an egress proxy.
    #[arg(long)]
    pub api_base_url: Option<String>,
}

fn parse_secret(s: &str) -> Result<wecom::client::Secret, std::convert::Infallible> {
    Ok(wecom::client::Secret::new(s))
}

impl WecomConfigureArgs {
    /// The setup to store; reads the secret file.
    pub fn setup(&self) -> anyhow::Result<wecom::inbox::Setup> {
        use wecom::client::Secret;
        let secret = match (&self.corp_secret_file, &self.corp_secret) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("cannot read the corp secret file {}: {e}", path.display())
                })?;
                Some(Secret::new(text.lines().next().unwrap_or_default().trim()))
            }
            (None, secret) => secret.clone(),
        };
        Ok(wecom::inbox::Setup {
            token: self.token.clone(),
            encoding_aes_key: self.encoding_aes_key.clone(),
            receive_id: self
                .suite_id
                .clone()
                .unwrap_or_else(|| self.corp_id.clone()),
            corp_id: Some(self.corp_id.clone()),
            corp_secret: secret.filter(|s| !s.expose().is_empty()),
            api_base_url: self.api_base_url.clone(),
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// `scrm seed` into a fresh PostgreSQL database versus a raw COPY of the same rows.
    Seed {
        #[command(flatten)]
        seed: SeedArgs,
        /// Rows in the raw COPY ceiling measurement.
        #[arg(long, default_value_t = 2_000_000)]
        raw_rows: usize,
        /// Rounds (the median is reported).
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// `scrm rebuild --all` on a seeded log versus the raw read rate, and versus cqrs-es's
    /// QueryReplay + GenericQuery on a subset, all in one run.
    Rebuild {
        #[command(flatten)]
        seed: SeedArgs,
        /// Customers in the subset both rebuild paths run on.
        #[arg(long, default_value_t = 2_000)]
        subset_customers: u64,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SCRM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Serve the GraphiQL page at /graphiql (off by default in production).
    #[arg(long, env = "SCRM_GRAPHIQL")]
    pub graphiql: bool,
    /// Browser origins allowed by CORS, comma separated (none by default).
    #[arg(long, env = "SCRM_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Requests per second per authenticated caller (burst: twice as many).
    #[arg(long, env = "SCRM_RATE_PER_CALLER", default_value_t = 50.0)]
    pub rate_per_caller: f64,
    /// Complexity points per second per tenant (burst: twice as many).
    #[arg(long, env = "SCRM_RATE_TENANT_POINTS", default_value_t = 200_000.0)]
    pub rate_tenant_points: f64,
    /// Requests one caller may have running at once (default: a fifth of the pool).
    #[arg(long, env = "SCRM_IN_FLIGHT_PER_CALLER")]
    pub in_flight_per_caller: Option<usize>,
    /// Requests one tenant may have running at once (default: half of the pool).
    #[arg(long, env = "SCRM_IN_FLIGHT_PER_TENANT")]
    pub in_flight_per_tenant: Option<usize>,
    /// Complete handovers nobody answered within 24 hours, as WeCom does (`false` when
    /// another process, e.g. the WeCom integration, reports them instead).
    #[arg(long, env = "SCRM_AUTO_ACCEPT_HANDOVERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_accept_handovers: bool,
    /// Seconds between the job runner's periodic steps (waiting jobs, auto-accept).
    #[arg(long, env = "SCRM_TICK_SECONDS", default_value_t = 30)]
    pub tick_seconds: u64,
}

impl ServeArgs {
    /// The requests-at-once limits, from the pool size where not given.
    pub fn in_flight(&self, pool: u32) -> graphql::in_flight::InFlightLimits {
        let derived = graphql::in_flight::InFlightLimits::for_pool(pool);
        graphql::in_flight::InFlightLimits {
            per_caller: self
                .in_flight_per_caller
                .unwrap_or(derived.per_caller)
                .max(1),
            per_tenant: self
                .in_flight_per_tenant
                .unwrap_or(derived.per_tenant)
                .max(1),
            ..derived
        }
    }

    pub fn rate_limits(&self) -> graphql::rate_limit::RateLimits {
        use graphql::rate_limit::{Rate, RateLimits};
        RateLimits {
            per_caller: Rate::new(self.rate_per_caller, 2.0 * self.rate_per_caller),
            tenant_points: Rate::new(self.rate_tenant_points, 2.0 * self.rate_tenant_points),
            ..RateLimits::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// tiny (tests), demo (~20,000 customers) or bench (~1,000,000 customers).
    #[arg(long, default_value = "demo")]
    pub scale: String,
    /// Tenant to create (a lower-case slug).
    #[arg(long, default_value = "demo")]
    pub tenant: String,
    /// Same seed, same events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Add this seed's data to a tenant that already holds data.
    #[arg(long)]
    pub append: bool,
    /// Override the scale's number of customers (e.g. 9000000 for a Chow Tai Fook-sized tenant).
    #[arg(long)]
    pub customers: Option<u64>,
    /// Override the scale's number of stores.
    #[arg(long)]
    pub stores: Option<u32>,
    /// Override the scale's staff per store.
    #[arg(long)]
    pub staff_per_store: Option<u32>,
}

impl SeedArgs {
    /// The same arguments as `scrm seed` takes them.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--scale".to_string(),
            self.scale.clone(),
            "--tenant".into(),
            self.tenant.clone(),
            "--seed".into(),
            self.seed.to_string(),
        ];
        for (flag, value) in [
            ("--customers", self.customers.map(|n| n.to_string())),
            ("--stores", self.stores.map(|n| n.to_string())),
            (
                "--staff-per-store",
                self.staff_per_store.map(|n| n.to_string()),
            ),
        ] {
            if let Some(v) = value {
                args.extend([flag.to_string(), v]);
            }
        }
        args
    }

    pub fn params(&self) -> anyhow::Result<Params> {
        let scale = Scale::parse(&self.scale).ok_or_else(|| {
            anyhow::anyhow!("unknown scale {:?}: use tiny, demo or bench", self.scale)
        })?;
        let tenant = TenantId::parse_slug(&self.tenant)?;
        let mut params = Params::for_scale(scale, tenant, self.seed);
        if let Some(n) = self.customers {
            params.customers = n;
        }
        if let Some(n) = self.stores.filter(|n| *n > 0) {
            params.stores = n;
        }
        if let Some(n) = self.staff_per_store.filter(|n| *n > 0) {
            params.staff_per_store = n;
        }
        Ok(params)
    }
}

/// Runs the parsed command line; errors are reported by `main` as one line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let backend = Backend::from_url(cli.database.database_url.as_deref())?;
            let db = Database::connect_to(&backend, cli.database.max_connections).await?;
            db.migrate().await?;
            tracing::info!(target = %backend.describe(), "schema is up to date");
            db.close().await;
            Ok(())
        }
        Command::Bench(BenchCommand::Seed {
            seed,
            raw_rows,
            rounds,
        }) => {
            let url = cli.database.database_url.clone().unwrap_or_default();
            bench::seed_benchmark(
                &url,
                &seed.params()?,
                &seed.to_args(),
                raw_rows,
                rounds.max(1),
            )
            .await?;
            Ok(())
        }
        Command::Serve(args) => {
            let backend = Backend::from_url(cli.database.database_url.as_deref())?;
            let db = Database::connect_to(&backend, cli.database.max_connections).await?;
            let engine = engine::app::Engine::start(db).await?;
            let mut settings = crate::serve::ServerSettings::new(args.listen, cli.auth.jwt()?);
            settings.graphiql = args.graphiql;
            settings.rate_limits = args.rate_limits();
            if args.in_flight_per_caller.is_some() || args.in_flight_per_tenant.is_some() {
                settings.in_flight = Some(args.in_flight(cli.database.max_connections));
            }
            settings.cors_origins = args.cors_origins;
            settings.auto_accept_handovers = args.auto_accept_handovers;
            settings.tick_every = std::time::Duration::from_secs(args.tick_seconds.max(1));
            let app = crate::serve::App::build(engine, settings).await?;
            tracing::info!(addr = %app.local_addr(), store = %backend.describe(), "serving");
            app.run_until_stopped(crate::serve::shutdown_signal())
                .await?;
            Ok(())
        }
        Command::Demo { listen, scale } => {
            let scale = Scale::parse(&scale).ok_or_else(|| {
                anyhow::anyhow!("unknown scale {scale:?}: use tiny, demo or bench")
            })?;
            crate::demo::run(&cli.database, &cli.auth, listen, scale).await
        }
        Command::Token(args) => {
            println!("{}", args.mint(&cli.auth.jwt()?)?);
            Ok(())
        }
        Command::ApiKey {
            tenant,
            name,
            role,
            scopes,
        } => {
            let tenant = TenantId::parse_slug(&tenant)?;
            let backend = Backend::from_url(cli.database.database_url.as_deref())?;
            let db = Database::connect_to(&backend, cli.database.max_connections).await?;
            db.migrate().await?;
            if engine::tenants::status(&db, &tenant).await? != TenantStatus::Active {
                db.close().await;
                anyhow::bail!(
                    "tenant {tenant} is not registered or is disabled; \
                     `scrm tenant create --tenant {tenant} --name ...` registers it"
                );
            }
            let key = ApiKeys::new(&db)
                .create(&tenant, &name, role, &scopes)
                .await?;
            println!("{}", key.token);
            eprintln!("key id {} (shown once; store it now)", key.key_id);
            db.close().await;
            Ok(())
        }
        Command::Tenant(command) => tenant_command(&cli.database, command).await,
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Bench(BenchCommand::Rebuild {
            seed,
            subset_customers,
        }) => {
            let url = cli.database.database_url.clone().unwrap_or_default();
            bench::rebuild_benchmark(&url, &seed.to_args(), subset_customers).await?;
            Ok(())
        }
        Command::Rebuild { projection, all } => {
            let backend = Backend::from_url(cli.database.database_url.as_deref())?;
            let db = Database::connect_to(&backend, cli.database.max_connections).await?;
            db.migrate().await?;
            projector::prepare(&db).await?;
            let reports = match (all, projection) {
                (true, _) => rebuild::rebuild_all(&db, true).await?,
                (false, Some(name)) => {
                    let p =
                        registry::find(&name).ok_or(ProjectionError::UnknownProjection(name))?;
                    vec![rebuild::rebuild(&db, p, true).await?]
                }
                (false, None) => unreachable!("clap requires --projection or --all"),
            };
            for report in &reports {
                println!("rebuilt {}: {} rows", report.name, report.rows);
            }
            if let Some(r) = reports.first() {
                println!(
                    "{} events in {:.1}s ({:.0} events/s; read+fold {:.1}s, write {:.1}s)",
                    r.events,
                    r.total.as_secs_f64(),
                    r.events_per_second(),
                    r.read_and_fold.as_secs_f64(),
                    r.write.as_secs_f64(),
                );
            }
            db.close().await;
            Ok(())
        }
        Command::Wecom(WecomCommand::Configure(args)) => {
            let tenant = TenantId::parse_slug(&args.tenant)?;
            let setup = args.setup()?;
            let backend = Backend::from_url(cli.database.database_url.as_deref())?;
            let db = Database::connect_to(&backend, cli.database.max_connections).await?;
            db.migrate().await?;
            wecom::inbox::configure_all(&db, &tenant, &setup).await?;
            println!(
                "configured WeCom callbacks for tenant {tenant}: URL /wecom/callback/{tenant}, \
                 corp id {}, receive id {}, API reads {}",
                args.corp_id,
                setup.receive_id,
                if setup.corp_secret.is_some() {
                    "on (secret stored, not shown)"
                } else {
                    "off (no corp secret)"
                }
            );
            db.close().await;
            Ok(())
        }
        Command::Wecom(WecomCommand::Retry(args)) => {
            use wecom::inbox::{self, Status};
            let tenant = TenantId::parse_slug(&args.tenant)?;
            let status = if args.status == "failed" {
                Status::Failed
            } else {
                Status::Unhandled
            };
            let backend = Backend::from_url(cli.database.database_url.as_deref())?;
            let db = Database::connect_to(&backend, cli.database.max_connections).await?;
            db.migrate().await?;
            let n = inbox::retry(&db, &tenant, status).await?;
            println!(
                "{n} {} WeCom notices of tenant {tenant} queued again",
                args.status
            );
            db.close().await;
            Ok(())
        }
        Command::Seed(args) => {
            let params = args.params()?;
            let backend = Backend::from_url(cli.database.database_url.as_deref())?;
            let db = Database::connect_to(&backend, cli.database.max_connections).await?;
            db.migrate().await?;
            let report = seed::seed(&db, params.clone(), args.append, Progress::Auto).await?;
            println!(
                "seeded tenant {} (scale {}, seed {}) into {}: {} events from {} customers in {:.1}s, {:.0} events/s",
                params.tenant,
                args.scale,
                params.seed,
                backend.describe(),
                report.rows,
                report.summary.customers,
                report.elapsed.as_secs_f64(),
                report.events_per_second(),
            );
            db.close().await;
            Ok(())
        }
    }
}

async fn tenant_command(settings: &DatabaseSettings, command: TenantCommand) -> anyhow::Result<()> {
    let backend = Backend::from_url(settings.database_url.as_deref())?;
    let db = Database::connect_to(&backend, settings.max_connections).await?;
    db.migrate().await?;
    let outcome = match command {
        TenantCommand::Create {
            tenant,
            name,
            time_zone,
            group_capacity,
        } => {
            let tenant = TenantId::parse_slug(&tenant)?;
            let new = NewTenant {
                tenant: tenant.clone(),
                name,
                time_zone,
                group_capacity,
            };
            if engine::tenants::create(&db, &new).await? {
                println!("registered tenant {tenant}");
            } else {
                println!("tenant {tenant} exists; left as it was");
            }
            Ok(())
        }
        TenantCommand::Disable { tenant } => {
            let tenant = TenantId::parse_slug(&tenant)?;
            switch(&db, &tenant, Some(chrono::Utc::now())).await
        }
        TenantCommand::Enable { tenant } => {
            let tenant = TenantId::parse_slug(&tenant)?;
            switch(&db, &tenant, None).await
        }
    };
    db.close().await;
    outcome
}

async fn switch(
    db: &Database,
    tenant: &TenantId,
    disabled_at: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<()> {
    if !engine::tenants::set_disabled(db, tenant, disabled_at).await? {
        anyhow::bail!("no tenant {tenant}");
    }
    let state = if disabled_at.is_some() {
        "disabled"
    } else {
        "enabled"
    };
    println!("tenant {tenant} {state}");
    Ok(())
}
