//! `scrm bench`: benchmarks that print figures (not timed tests). Each compares the
//! engine with a ceiling measured on the same machine in the same run, because single
//! figures on these shared 2-core machines swing with the disk and the neighbours.

use std::time::Instant;

mod replay;

use fixtures::{Options, Params};

use crate::config::with_database;
use crate::seed::{copy_in, copy_text_row, SeedError, COPY_CHUNK_ROWS};
use engine::db::{create_database, drop_database, Database, DbError};

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
    #[error(transparent)]
    Projection(#[from] projections::ProjectionError),
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

/// Creates a scratch database and fills it with `scrm seed ARGS`. Returns its URL.
async fn seeded_database(
    server_url: &str,
    name: &str,
    args: &[String],
) -> Result<(String, u64), BenchError> {
    let _ = drop_database(server_url, name).await;
    create_database(server_url, name).await?;
    let url = with_database(server_url, name);
    let (_, events) = seed_in_child(&url, args)?;
    Ok((url, events))
}

async fn connect(url: &str) -> Result<Database, BenchError> {
    let db = Database::connect_to(
        &crate::config::Backend::Postgres {
            url: url.to_string(),
        },
        4,
    )
    .await?;
    db.migrate().await?;
    Ok(db)
}

/// Reads the whole log in global order, as the rebuild does, but parses nothing: the
/// ceiling for any rebuild that reads through this client.
async fn raw_read_rate(db: &Database) -> Result<f64, BenchError> {
    let Database::Postgres(pool) = db else {
        return Err(BenchError::NeedsPostgres);
    };
    let started = Instant::now();
    let (mut txid, mut position, mut rows) = (0_i64, 0_i64, 0_u64);
    loop {
        let page: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT e.txid::text::bigint, e.position, e.payload::text FROM events e \
             WHERE (e.txid, e.position) > ($1::bigint::text::xid8, $2) \
             ORDER BY e.txid, e.position LIMIT 20000",
        )
        .bind(txid)
        .bind(position)
        .fetch_all(pool)
        .await?;
        let Some(last) = page.last() else { break };
        (txid, position) = (last.0, last.1);
        rows += page.len() as u64;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// `scrm rebuild --all` on a seeded log, next to the raw read rate of the same log, and
/// next to cqrs-es's own rebuild path (QueryReplay + GenericQuery over a JSON view in
/// PostgreSQL) on a subset, where our rebuild runs too.
pub async fn rebuild_benchmark(
    server_url: &str,
    seed_args: &[String],
    subset: u64,
) -> Result<(), BenchError> {
    if !server_url.starts_with("postgres") {
        return Err(BenchError::NeedsPostgres);
    }
    let pid = std::process::id();
    let big = format!("scrm_bench_rebuild_{pid}");
    let (url, events) = seeded_database(server_url, &big, seed_args).await?;
    let db = connect(&url).await?;
    projections::projector::prepare(&db).await?;
    let raw = raw_read_rate(&db).await?;
    let cores = projections::rebuild::default_jobs();
    let mut ours = 0.0;
    // Each width on the same log, the parallel one first; the peak RSS of each is read
    // from /proc after its own reset, so the first does not hide the second.
    for jobs in [cores, 1] {
        reset_peak_rss();
        let options = projections::rebuild::Options {
            jobs,
            progress: true,
            ..Default::default()
        };
        let reports =
            projections::rebuild::rebuild_with(&db, &projections::rebuild::all(), &options).await?;
        let all = &reports[0];
        let rate = all.events_per_second();
        let rows: u64 = reports.iter().map(|r| r.rows).sum();
        println!(
            "full log ({events} events): raw read {raw:.0} rows/s; rebuild of all {} projections \
             with {} partition(s) {rate:.0} events/s (read+fold {:.1}s, keys and swap {:.1}s, \
             {rows} rows); ratio to raw read {:.2}; peak RSS {} MiB",
            reports.len(),
            all.partitions,
            all.read_and_fold.as_secs_f64(),
            all.write.as_secs_f64(),
            rate / raw,
            peak_rss_kib().map_or("?".to_string(), |k| (k / 1024).to_string()),
        );
        if jobs == cores {
            ours = rate;
        }
    }
    db.close().await;
    drop_database(server_url, &big).await?;

    // The same log with personal data in the clear, as before sealing existed: what
    // opening it costs the rebuild (docs/adr/0024-crypto-shredding.md).
    let plain = format!("scrm_bench_rebuild_plain_{pid}");
    let mut args = seed_args.to_vec();
    if !args.iter().any(|a| a == "--plaintext") {
        args.push("--plaintext".to_string());
    }
    let (url, _) = seeded_database(server_url, &plain, &args).await?;
    let db = connect(&url).await?;
    projections::projector::prepare(&db).await?;
    let options = projections::rebuild::Options {
        jobs: cores,
        progress: true,
        ..Default::default()
    };
    let reports =
        projections::rebuild::rebuild_with(&db, &projections::rebuild::all(), &options).await?;
    let plain_rate = reports[0].events_per_second();
    println!(
        "personal data sealed vs in the clear ({cores} partition(s)): {ours:.0} vs {plain_rate:.0} events/s; ratio {:.2}",
        ours / plain_rate
    );
    db.close().await;
    drop_database(server_url, &plain).await?;

    let small = format!("scrm_bench_replay_{pid}");
    // The subset's own size replaces any `--customers` of the full log's.
    let mut args: Vec<String> = Vec::new();
    let mut given = seed_args.iter();
    while let Some(arg) = given.next() {
        if arg == "--customers" {
            given.next();
        } else {
            args.push(arg.clone());
        }
    }
    args.extend(["--customers".to_string(), subset.to_string()]);
    let (url, subset_events) = seeded_database(server_url, &small, &args).await?;
    let db = connect(&url).await?;
    projections::projector::prepare(&db).await?;
    let ours_subset = projections::rebuild::rebuild(
        &db,
        projections::registry::of::<projections::portrait::fold::PortraitSet>(),
        false,
    )
    .await?;
    let (replayed, cqrs_rate) = replay::cqrs_es_replay(&db).await?;
    db.close().await;
    drop_database(server_url, &small).await?;
    println!(
        "subset ({subset} customers, {subset_events} events): our rebuild of all {:.0} events/s; \
         cqrs-es QueryReplay+GenericQuery {cqrs_rate:.0} events/s ({replayed} Customer events); \
         ratio {:.0}x",
        ours_subset.events_per_second(),
        ours_subset.events_per_second() / cqrs_rate
    );
    println!(
        "full-log rebuild vs cqrs-es path: {:.0}x ({} cores)",
        ours / cqrs_rate,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

/// Starts the kernel's peak-RSS count of this process afresh (Linux `clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident set since the last reset, from /proc (KiB).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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
