//! `scrm bench`: benchmarks that print figures (not timed tests). Each compares the
//! engine with a ceiling measured on the same machine in the same run, because single
//! figures on these shared 2-core machines swing with the disk and the neighbours.

use std::time::Instant;

use fixtures::{Options, Params};

use crate::config::with_database;
use crate::db::{create_database, drop_database, Database, DbError};
use crate::seed::{copy_in, copy_text_row, SeedError, COPY_CHUNK_ROWS};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(
        "benchmarks need a PostgreSQL DATABASE_URL (scratch databases are created on that server)"
    )]
    NeedsPostgres,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("running `scrm seed`: {0}")]
    Child(String),
}

/// Runs `scrm seed ARGS` against `url` and reads its summary line: (events/s, events).
fn seed_in_child(url: &str, args: &[String]) -> Result<(f64, u64), BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::Child(e.to_string()))?;
    let out = std::process::Command::new(exe)
        .arg("seed")
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .map_err(|e| BenchError::Child(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(BenchError::Child(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    // "... : N events from C customers in S s, R events/s"
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let number = |before: &str| {
        words
            .windows(2)
            .find(|w| w[1].trim_end_matches(',') == before)
            .and_then(|w| w[0].parse::<f64>().ok())
    };
    match (number("events/s"), number("events")) {
        (Some(rate), Some(events)) => Ok((rate, events as u64)),
        _ => Err(BenchError::Child(format!("unexpected output: {stdout}"))),
    }
}

/// One round's figures.
#[derive(Debug, Clone, Copy)]
pub struct SeedRound {
    pub raw_copy_rows_per_s: f64,
    pub seed_events_per_s: f64,
    pub seed_events: u64,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Seeding `params` into a fresh database versus the raw COPY of the same rows,
/// pre-encoded in memory, into another fresh database with the same schema and
/// indexes: the ceiling for any loader. Rounds alternate the two to share the noise.
pub async fn seed_benchmark(
    server_url: &str,
    params: &Params,
    seed_args: &[String],
    raw_rows: usize,
    rounds: usize,
) -> Result<Vec<SeedRound>, BenchError> {
    if !server_url.starts_with("postgres") {
        return Err(BenchError::NeedsPostgres);
    }
    // The ceiling's input: the first `raw_rows` rows of the same stream, as COPY text.
    let mut chunks: Vec<Vec<u8>> = vec![Vec::new()];
    let mut in_chunk = 0;
    let mut taken = 0;
    fixtures::generate(
        &Params {
            customers: params.customers.min(raw_rows as u64 / 8 + 1),
            ..params.clone()
        },
        Options::default(),
        &mut |e| {
            for row in e.rows(&params.tenant) {
                if taken == raw_rows {
                    return;
                }
                if in_chunk == COPY_CHUNK_ROWS {
                    chunks.push(Vec::new());
                    in_chunk = 0;
                }
                copy_text_row(chunks.last_mut().expect("a chunk"), &row);
                in_chunk += 1;
                taken += 1;
            }
        },
    );

    let mut results = Vec::new();
    for round in 0..rounds {
        let name = format!("scrm_bench_{}_{round}", std::process::id());

        create_database(server_url, &name).await?;
        let db = Database::connect_to(
            &crate::config::Backend::Postgres {
                url: with_database(server_url, &name),
            },
            4,
        )
        .await?;
        db.migrate().await?;
        let Database::Postgres(pool) = &db else {
            unreachable!("postgres url")
        };
        let started = Instant::now();
        for chunk in &chunks {
            copy_in(pool, chunk).await?;
        }
        let raw = taken as f64 / started.elapsed().as_secs_f64();
        db.close().await;
        drop_database(server_url, &name).await?;

        // The real command, as a user runs it: its own process, migrations included.
        create_database(server_url, &name).await?;
        let seeded = seed_in_child(&with_database(server_url, &name), seed_args)?;
        drop_database(server_url, &name).await?;

        let r = SeedRound {
            raw_copy_rows_per_s: raw,
            seed_events_per_s: seeded.0,
            seed_events: seeded.1,
        };
        println!(
            "round {}: raw COPY {:>9.0} rows/s   scrm seed {:>9.0} events/s ({} events)   ratio {:.2}",
            round + 1,
            r.raw_copy_rows_per_s,
            r.seed_events_per_s,
            r.seed_events,
            r.seed_events_per_s / r.raw_copy_rows_per_s
        );
        results.push(r);
    }
    let raw = median(results.iter().map(|r| r.raw_copy_rows_per_s).collect());
    let ours = median(results.iter().map(|r| r.seed_events_per_s).collect());
    let ratios = median(
        results
            .iter()
            .map(|r| r.seed_events_per_s / r.raw_copy_rows_per_s)
            .collect(),
    );
    println!(
        "median of {rounds}: raw COPY {raw:.0} rows/s, scrm seed {ours:.0} events/s, ratio {ratios:.2} \
         ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(results)
}
