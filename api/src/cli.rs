//! The `scrm` command line: subcommands, settings and their dispatch.

use clap::{Args, Parser, Subcommand, ValueEnum};
use domain::values::TenantId;
use fixtures::{Params, Scale};

use crate::bench;
use crate::config::{Backend, DatabaseSettings};
use crate::db::Database;
use crate::seed::{self, Progress};
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
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SCRM_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
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
        Command::Serve { listen } => {
            let backend = Backend::from_url(cli.database.database_url.as_deref())?;
            let db = Database::connect_to(&backend, cli.database.max_connections).await?;
            let engine = crate::app::Engine::start(db).await?;
            let app = crate::server::App::build(engine, listen).await?;
            tracing::info!(addr = %app.local_addr(), store = %backend.describe(), "serving");
            app.run_until_stopped(crate::server::shutdown_signal())
                .await?;
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
