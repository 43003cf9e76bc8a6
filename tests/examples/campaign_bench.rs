//! The campaign benchmark (issue 18): a corp of `--staff` guides and `--customers`
//! customers imported from a fake WeCom into a fresh PostgreSQL database, then
//! `--rounds` mass messages to the whole tenant (one a day, the clock moved a day
//! between them), each planned, sent guide by guide to the fake, confirmed there and
//! recorded. Prints, per round and as medians: the mutation to every customer in a task
//! WeCom holds, the confirmation to every outcome recorded, and the append ceiling in
//! the same run: the very events the campaign appended, written again into an empty
//! copy of `events` in batches of 100 with the batch executor's statement.
//!
//! ```sh
//! cargo run --release -p scrm-tests --example campaign_bench -- \
//!     --staff 1000 --customers 100000 --rounds 3
//! ```

use std::time::{Duration, Instant};

use harness::fake_wecom::{Corp, FakeWecom};
use harness::live::TestApi;
use harness::wecom_import::{configure, finished, ops, start, CORP, T};
use harness::TestDb;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.replace('_', "").parse().expect("a number"))
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The process's peak resident memory (`VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn scalar(pool: &PgPool, sql: &str, job: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(T)
        .bind(job)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Every customer has left `PLANNED`: WeCom holds their task, or said why not.
async fn all_in_tasks(pool: &PgPool, job: &str) -> bool {
    let planned = "SELECT count(*) FROM campaigns WHERE tenant_id = $1 AND job_id = $2 \
                   AND held_at IS NOT NULL";
    scalar(pool, planned, job).await == 1
        && scalar(
            pool,
            "SELECT count(*) FROM campaign_items WHERE tenant_id = $1 AND job_id = $2 \
             AND outcome = 'PLANNED'",
            job,
        )
        .await
            == 0
}

async fn succeeded(pool: &PgPool, job: &str) -> bool {
    let sql = "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND job_id = $2 \
               AND status = 'succeeded'";
    scalar(pool, sql, job).await == 1
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "never {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A stored event: stream, sequence, type, version, payload, metadata.
type EventRow = (String, i64, String, String, String, String);

/// The campaign's events written again into an empty copy of `events`.
async fn ceiling(pool: &PgPool, job: &str) -> (Duration, usize) {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT aggregate_id, sequence, event_type, event_version, payload::text, \
         metadata::text FROM events WHERE tenant_id = $1 \
         AND event_type IN ('MassMessageDelivered', 'CampaignHeldOut') \
         AND payload::text LIKE '%' || $2 || '%'",
    )
    .bind(T)
    .bind(job)
    .fetch_all(pool)
    .await
    .unwrap();
    sqlx::query("DROP TABLE IF EXISTS events_ceiling")
        .execute(pool)
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // RUST_LOG=engine::campaign=info,wecom::campaign=info shows the job's steps.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let corp = Corp {
        staff: arg("--staff", 1_000),
        customers: arg("--customers", 100_000),
        shared_every: arg("--shared-every", 10),
        groups: arg("--groups", 10),
        members_per_group: arg("--members-per-group", 5),
    };
    let rounds = arg("--rounds", 3);
    let customers = corp.customers;
    println!("corp: {} staff, {customers} customers", corp.staff);
    let db = TestDb::postgres().await;
    let engine::db::Database::Postgres(pool) = db.db.clone() else {
        panic!("PostgreSQL only")
    };
    let fake = FakeWecom::start(CORP).await;
    fake.set_corp(corp);
    let api = TestApi::start_with(&db, |s| {
        s.tick_every = Duration::from_millis(100);
        s.outbound.poll_every = chrono::Duration::seconds(1);
    })
    .await;
    configure(&api, &fake).await;
    let imported = Instant::now();
    let id = start(&api).await;
    finished(
        &api,
        &id,
        Duration::from_secs(3600),
        Duration::from_secs(1),
        |_| {},
    )
    .await;
    api.settle().await;
    println!("imported in {:.1} s", imported.elapsed().as_secs_f64());

    let (mut sent, mut recorded, mut ceilings) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Campaigns are a day apart: the read models have long applied the last one's
        // events when the next is started, so that is not part of its time.
        api.settle().await;
        api.clock.advance(chrono::Duration::days(1));
        fake.new_day();
        let clicked = Instant::now();
        let body = api
            .gql(
                Some(&ops()),
                "mutation($i: StartCampaignInput!) { startCampaign(input: $i) { \
                 userErrors { code message } job { id } } }",
                json!({ "i": { "kind": "MASS_MESSAGE", "text": format!("会员日 {round}"),
                    "holdoutPerMille": 100, "idempotencyKey": Uuid::new_v4().to_string() } }),
            )
            .await;
        let payload = &body["data"]["startCampaign"];
        assert_eq!(payload["userErrors"], json!([]), "{body}");
        let gid = payload["job"]["id"].as_str().unwrap();
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(gid)
            .unwrap();
        let job = String::from_utf8(raw)
            .unwrap()
            .trim_start_matches("Job:")
            .to_string();
        until("in tasks", || all_in_tasks(&pool, &job)).await;
        let to_tasks = clicked.elapsed();
        let confirmed = Instant::now();
        fake.confirm_all_mass_messages(api.clock.now().timestamp());
        until("recorded", || succeeded(&pool, &job)).await;
        let to_recorded = confirmed.elapsed();
        let delivered = scalar(
            &pool,
            "SELECT count(*) FROM campaign_items WHERE tenant_id = $1 AND job_id = $2 \
             AND outcome = 'DELIVERED'",
            &job,
        )
        .await;
        let (ceiling, events) = ceiling(&pool, &job).await;
        println!(
            "round {round}: {} tasks; mutation -> all in tasks {:.2} s; confirmed -> {delivered} \
             delivered, all recorded {:.2} s; total {:.2} s; ceiling: same {events} events in {:.2} s; \
             peak RSS {:.0} MiB",
            fake.mass_message_tasks().len(),
            to_tasks.as_secs_f64(),
            to_recorded.as_secs_f64(),
            (to_tasks + to_recorded).as_secs_f64(),
            ceiling.as_secs_f64(),
            peak_rss_mib(),
        );
        sent.push(to_tasks.as_secs_f64());
        recorded.push(to_recorded.as_secs_f64());
        ceilings.push(ceiling.as_secs_f64());
    }
    let (sent, recorded, ceiling) = (median(sent), median(recorded), median(ceilings));
    println!(
        "median of {rounds}: mutation -> in tasks {sent:.2} s; confirmed -> recorded \
         {recorded:.2} s; total {:.2} s ({:.0} customers/s); append ceiling {ceiling:.2} s; \
         campaign / ceiling = {:.1}x",
        sent + recorded,
        customers as f64 / (sent + recorded),
        (sent + recorded) / ceiling,
    );
    api.stop().await;
}
