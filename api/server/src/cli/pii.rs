//! `scrm pii`: personal data in the log (docs/adr/0024-crypto-shredding.md).

use clap::Subcommand;

use crate::config::DatabaseSettings;

#[derive(Debug, Subcommand)]
pub enum PiiCommand {
    /// Seal the personal data of events written before sealing existed, in chunks, each
    /// committed with the place it reached: a stopped run resumes there, and a finished
    /// one finds nothing left to do. Migrates first.
    Seal {
        /// Events read per chunk (one transaction each).
        #[arg(long, default_value_t = 5_000)]
        chunk: i64,
    },
}

pub async fn run(settings: &DatabaseSettings, command: PiiCommand) -> anyhow::Result<()> {
    match command {
        PiiCommand::Seal { chunk } => {
            let (db, backend) = settings.open_migrated().await?;
            let started = std::time::Instant::now();
            let done = projections::pii::migrate::seal_plaintext(&db, chunk.max(1), None).await?;
            println!(
                "sealed the personal data of {} events ({} customer events read in {} chunks) \
                 in {} in {:.1}s",
                done.rewritten,
                done.scanned,
                done.chunks,
                backend.describe(),
                started.elapsed().as_secs_f64()
            );
            db.close().await;
            Ok(())
        }
    }
}
