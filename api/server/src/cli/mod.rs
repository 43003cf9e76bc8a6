//! The `scrm` command line: subcommands, settings and their dispatch.

mod pii;
mod tenant;
mod wecom;

pub use tenant::TenantCommand;
pub use wecom::{WecomCommand, WecomConfigureArgs, WecomRetryArgs};

use clap::{Args, Parser, Subcommand, ValueEnum};
use domain::values::TenantId;
use fixtures::{Params, Scale};

use crate::bench;
use crate::config::{AuthSettings, DatabaseSettings};
use crate::seed::{self, Progress};
use crate::token::TokenArgs;
use engine::auth::{ApiKeys, Role};
use engine::tenants::TenantStatus;
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
        /// Workers reading customer streams at once, each on its own connection
        /// (default: one per core; SQLite always reads with one).
        #[arg(long)]
        jobs: Option<usize>,
        /// Only this tenant's rows; every other tenant's stay as they are.
        #[arg(long)]
        tenant: Option<String>,
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
    /// Customers' personal data: seal what was written in the clear.
    #[command(subcommand)]
    Pii(pii::PiiCommand),
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
    /// MiB of today's portraits kept in memory on PostgreSQL (0: none); see
    /// docs/adr/0025-portrait-cache.md.
    #[arg(long, env = "SCRM_PORTRAIT_CACHE_MB", default_value_t = 64)]
    pub portrait_cache_mb: u64,
    /// Client connections kept open at once. Each costs the server about 25 KiB, more
    /// while its request runs; one past the limit waits for a place, then is answered
    /// 503 "busy".
    #[arg(long, env = "SCRM_MAX_CLIENT_CONNECTIONS", default_value_t = crate::connections::MAX_CONNECTIONS)]
    pub max_client_connections: usize,
    /// Seconds a connection may sit with no byte moving either way before it is closed.
    #[arg(long, env = "SCRM_IDLE_TIMEOUT_SECONDS", default_value_t = crate::connections::IDLE_TIMEOUT.as_secs())]
    pub idle_timeout_seconds: u64,
    /// Milliseconds a connection past the limit waits for a place before it is answered
    /// 503 with `Retry-After`.
    #[arg(long, env = "SCRM_ADMIT_WITHIN_MS", default_value_t = crate::connections::ADMIT_WITHIN.as_millis() as u64)]
    pub admit_within_ms: u64,
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
    /// Write personal data in the clear, as events were written before sealing existed
    /// (to measure what sealing costs, or to try `scrm pii seal`).
    #[arg(long)]
    pub plaintext: bool,
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
        if self.plaintext {
            args.push("--plaintext".into());
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
            let (db, backend) = cli.database.open_migrated().await?;
            tracing::info!(target = %backend.describe(), "schema is up to date");
            db.close().await;
            Ok(())
        }
        Command::Bench(BenchCommand::Seed {
            seed,
            raw_rows,
            rounds,
        }) => {
            cli.database.install_pii_key()?;
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
            let (db, backend) = cli.database.open().await?;
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
            settings.portrait_cache_bytes = args.portrait_cache_mb * 1024 * 1024;
            settings.connections = crate::connections::ConnectionLimits {
                max: args.max_client_connections.max(1),
                idle: std::time::Duration::from_secs(args.idle_timeout_seconds.max(1)),
                admit_within: std::time::Duration::from_millis(args.admit_within_ms),
            };
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
            let (db, _) = cli.database.open_migrated().await?;
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
        Command::Tenant(command) => tenant::run(&cli.database, command).await,
        Command::Pii(command) => pii::run(&cli.database, command).await,
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Bench(BenchCommand::Rebuild {
            seed,
            subset_customers,
        }) => {
            cli.database.install_pii_key()?;
            let url = cli.database.database_url.clone().unwrap_or_default();
            bench::rebuild_benchmark(&url, &seed.to_args(), subset_customers).await?;
            Ok(())
        }
        Command::Rebuild {
            projection,
            all,
            jobs,
            tenant,
        } => {
            let (db, _) = cli.database.open_migrated().await?;
            projector::prepare(&db).await?;
            let set = match (all, projection) {
                (true, _) => rebuild::all(),
                (false, Some(name)) => {
                    vec![registry::find(&name).ok_or(ProjectionError::UnknownProjection(name))?]
                }
                (false, None) => unreachable!("clap requires --projection or --all"),
            };
            let options = rebuild::Options {
                jobs: jobs.unwrap_or_else(rebuild::default_jobs),
                scope: tenant.map_or(rebuild::Scope::All, rebuild::Scope::Tenant),
                progress: true,
            };
            let reports = rebuild::rebuild_with(&db, &set, &options).await?;
            for report in &reports {
                println!("rebuilt {}: {} rows", report.name, report.rows);
            }
            if let Some(r) = reports.first() {
                println!(
                    "{} events in {:.1}s ({:.0} events/s, {} partitions; read+fold {:.1}s, \
                     keys and swap {:.1}s)",
                    r.events,
                    r.total.as_secs_f64(),
                    r.events_per_second(),
                    r.partitions,
                    r.read_and_fold.as_secs_f64(),
                    r.write.as_secs_f64(),
                );
            }
            db.close().await;
            Ok(())
        }
        Command::Wecom(command) => wecom::run(&cli.database, command).await,
        Command::Seed(args) => {
            let params = args.params()?;
            let (db, backend) = cli.database.open_migrated().await?;
            let sealing = if args.plaintext {
                seed::Sealing::Plaintext
            } else {
                seed::Sealing::Sealed
            };
            let report =
                seed::seed_as(&db, params.clone(), args.append, Progress::Auto, sealing).await?;
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// A serve flag named like a global one (`--max-connections`) compiled, and then
    /// panicked at the first start; clap's own check finds such clashes.
    #[test]
    fn given_every_command_when_clap_checks_them_then_no_two_arguments_clash() {
        super::Cli::command().debug_assert();
    }
}
