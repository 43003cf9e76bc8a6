//! Benchmark: a one-click handover of a large book, from the `startHandover` mutation
//! (over HTTP, on a live server with its projector running) to every customer's
//! handover request recorded, against PostgreSQL. Prints figures; not a test.
//!
//! In the same run it measures a ceiling: the very events the job appended, written
//! again into an empty copy of the event table in the same batches of 100 with the
//! same statement, with nothing decided and no job bookkeeping.
//!
//! ```text
//! cargo run --release -p scrm-tests --example handover_bench -- [customers] [rounds] [sealing]
//! ```
//! Defaults: 20,000 customers, 350 groups, 3 rounds; medians are printed.
//!
//! `sealing` = `both`: every customer also has a name and phone (personal data), and
//! each round runs the handover twice on fresh databases, once with that data sealed
//! with each customer's key (as the engine writes it, so every stream the job loads
//! costs a key lookup and AES-GCM) and once in the clear (as written before sealing):
//! the cost of crypto-shredding on the job (docs/adr/0024-crypto-shredding.md).

use std::time::{Duration, Instant};

use harness::departure::{
    handover_input, mark_departed, start, world_with, world_with_profiles, T,
};
use harness::TestDb;
use projections::on_pool;
use serde_json::Value;
use server::seed::Sealing;

const GROUPS: u32 = 350;

struct Round {
    planned: Duration,
    requested: Duration,
    day_done: Duration,
    ceiling: Duration,
    events: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Whether the job planned and no customer of it is left to request: one probe of the
/// job's to-do index, cheap enough to poll without slowing the job down.
async fn planned(db: &engine::db::Database) -> bool {
    let total: Option<i64> = on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT progress_total FROM jobs WHERE tenant_id = $1 AND kind = 'handover'",
        )
        .bind(T)
        .fetch_optional(pool)
        .await
    })
    .unwrap();
    total.is_some_and(|t| t > 0)
}

async fn all_requested(db: &engine::db::Database) -> bool {
    let planned: Option<(String, bool)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT j.job_id, EXISTS (SELECT 1 FROM handover_items i WHERE i.tenant_id = $1 \
               AND i.job_id = j.job_id AND i.code = 'PLANNED' AND i.kind = 'customer') \
             FROM jobs j WHERE j.tenant_id = $1 AND j.kind = 'handover' \
               AND j.progress_total > 0",
        )
        .bind(T)
        .fetch_optional(pool)
        .await
    })
    .unwrap();
    matches!(planned, Some((_, false)))
}

async fn job_waiting_or_done(db: &engine::db::Database) -> bool {
    let row: Option<(String, bool)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT status, next_run_at IS NOT NULL FROM jobs \
             WHERE tenant_id = $1 AND kind = 'handover'",
        )
        .bind(T)
        .fetch_optional(pool)
        .await
    })
    .unwrap();
    matches!(row, Some((s, waiting)) if s == "succeeded" || s == "failed" || waiting)
}

/// A stored event: stream, sequence, type, version, payload, metadata.
type EventRow = (String, i64, String, String, String, String);

/// Writes the job's HandoverRequested events again, into an empty copy of `events`, in
/// batches of 100 with the batch executor's statement.
async fn ceiling(db: &engine::db::Database) -> (Duration, usize) {
    let engine::db::Database::Postgres(pool) = db else {
        panic!("PostgreSQL only")
    };
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT aggregate_id, sequence, event_type, event_version, payload::text, \
         metadata::text FROM events WHERE tenant_id = $1 AND event_type = 'HandoverRequested'",
    )
    .bind(T)
    .fetch_all(pool)
    .await
    .unwrap();
    sqlx::query("CREATE TABLE events_ceiling (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await
        .unwrap();
    let started = Instant::now();
    for chunk in rows.chunks(100) {
        let col = |f: fn(&EventRow) -> String| chunk.iter().map(f).collect::<Vec<_>>();
        let sequences: Vec<i64> = chunk.iter().map(|r| r.1).collect();
        sqlx::query(
            "INSERT INTO events_ceiling (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) \
             SELECT 'Customer', i, s, t, v, p::json, m::json \
             FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
             $6::text[]) AS u(i, s, t, v, p, m)",
        )
        .bind(col(|r| r.0.clone()))
        .bind(&sequences)
        .bind(col(|r| r.2.clone()))
        .bind(col(|r| r.3.clone()))
        .bind(col(|r| r.4.clone()))
        .bind(col(|r| r.5.clone()))
        .execute(pool)
        .await
        .unwrap();
    }
    (started.elapsed(), rows.len())
}

async fn round(customers: u64, profiles: Option<Sealing>) -> Round {
    // The server as `scrm serve` runs by default: a 30-second tick.
    let tick = |s: &mut server::serve::ServerSettings| s.tick_every = Duration::from_secs(30);
    let db = TestDb::postgres().await;
    let (db, api) = match profiles {
        None => world_with(db, customers, GROUPS, tick).await,
        Some(sealing) => world_with_profiles(db, customers, GROUPS, sealing, tick).await,
    };
    mark_departed(&api).await;
    api.settle().await;
    let clicked = Instant::now();
    let started: Value = start(&api, handover_input(&uuid::Uuid::new_v4().to_string())).await;
    assert_eq!(started["userErrors"], serde_json::json!([]), "{started}");
    let mut planned_at = None;
    let requested = loop {
        if planned_at.is_none() && planned(&db.db).await {
            planned_at = Some(clicked.elapsed());
        }
        if all_requested(&db.db).await {
            break clicked.elapsed();
        }
        assert!(clicked.elapsed() < Duration::from_secs(600), "stuck");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    while !job_waiting_or_done(&db.db).await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let day_done = clicked.elapsed();
    api.stop().await;
    let (ceiling, events) = ceiling(&db.db).await;
    Round {
        planned: planned_at.unwrap_or(requested),
        requested,
        day_done,
        ceiling,
        events,
    }
}

fn report(label: &str, customers: u64, results: &[Round]) -> f64 {
    let rounds = results.len();
    let requested = median(results.iter().map(|r| r.requested.as_secs_f64()).collect());
    let planned = median(results.iter().map(|r| r.planned.as_secs_f64()).collect());
    let day = median(results.iter().map(|r| r.day_done.as_secs_f64()).collect());
    let ceiling = median(results.iter().map(|r| r.ceiling.as_secs_f64()).collect());
    println!(
        "{label}median of {rounds}: mutation -> planned {planned:.2} s -> {customers} requests recorded {requested:.2} s \
         ({:.0}/s); -> day's {} groups moved {day:.2} s; append ceiling {ceiling:.2} s \
         ({:.0}/s); job / ceiling = {:.1}x",
        customers as f64 / requested,
        GROUPS.min(300),
        customers as f64 / ceiling,
        requested / ceiling,
    );
    requested
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let customers: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let sides: Vec<(&str, Option<Sealing>)> = match args.next().as_deref() {
        None => vec![("", None)],
        Some("both") => vec![
            ("sealed ", Some(Sealing::Sealed)),
            ("in the clear ", Some(Sealing::Plaintext)),
        ],
        Some(other) => panic!("sealing: `both` or nothing, not {other}"),
    };
    let mut results: Vec<Vec<Round>> = sides.iter().map(|_| Vec::new()).collect();
    for n in 1..=rounds {
        // The sides alternate within a round, so both see the same machine.
        for ((label, profiles), results) in sides.iter().zip(&mut results) {
            let r = round(customers, *profiles).await;
            println!(
                "{label}round {n}: planned at {:.2} s; {} requests recorded {:.2} s after the \
                 mutation ({:.0}/s); day's groups moved at {:.2} s; ceiling: same {} events \
                 appended in {:.2} s",
                r.planned.as_secs_f64(),
                customers,
                r.requested.as_secs_f64(),
                customers as f64 / r.requested.as_secs_f64(),
                r.day_done.as_secs_f64(),
                r.events,
                r.ceiling.as_secs_f64(),
            );
            results.push(r);
        }
    }
    let medians: Vec<f64> = sides
        .iter()
        .zip(&results)
        .map(|((label, _), r)| report(label, customers, r))
        .collect();
    if let [sealed, clear] = medians[..] {
        println!(
            "requests recorded, sealed / in the clear: {sealed:.2} s / {clear:.2} s = {:.2}x the time \
             ({:.2} of the rate)",
            sealed / clear,
            clear / sealed
        );
    }
}
