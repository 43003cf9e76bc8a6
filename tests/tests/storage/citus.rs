//! The log on Citus (docs/adr/0018-citus.md), on a real local cluster of one coordinator
//! and two workers started by `.ci/citus.sh`: a fresh database per test.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use engine::db::Database;
use harness::TestDb;
use projections::projector;
use tokio::sync::{watch, Notify};

/// Eight writers commit 20,000 purchases while the projector runs; half of their
/// transactions write two customers at once, so they span workers and commit in two
/// phases, visible on each worker at its own time. Every purchase is counted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_on_citus_are_projected_once_per_event() {
    let test_db = TestDb::citus().await;
    let engine = test_db.engine().await;
    let Database::Postgres(pool) = engine.db.clone() else {
        unreachable!()
    };
    let distributed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'events'::regclass",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(distributed, 1, "migrate distributes the log");
    // A row trigger would notify on the workers, where no server listens: servers on
    // Citus ask the log about departures (docs/adr/0026-staff-presence.md).
    let departure_triggers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger WHERE tgname = 'events_staff_departed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        departure_triggers, 0,
        "the coordinator keeps no departure trigger"
    );
    let (stop_tx, stop) = watch::channel(false);
    let projector_task = tokio::spawn(projector::run(
        engine.db.clone(),
        Arc::new(Notify::new()),
        stop,
    ));
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut expected = Vec::new();
                for pair in 0..25 {
                    let streams = [
                        format!("acme:cw-{w}-{pair}-a"),
                        format!("acme:cw-{w}-{pair}-b"),
                    ];
                    for s in &streams {
                        let added = domain::customer::CustomerEvent::FriendAdded {
                            staff: domain::values::StaffId::parse("guide-1").unwrap(),
                            add_way: domain::customer::AddWay::QR_CODE,
                            channel_state: None,
                            at: t0,
                        };
                        insert(&pool, s, 1, "FriendAdded", &added).await;
                    }
                    // 49 purchases each, in transactions of both streams at once.
                    let mut total = 0;
                    for seq in 2..=50i64 {
                        let fen = 100 + (w as i64 * 7 + pair as i64 * 13 + seq) % 900;
                        total += fen;
                        let mut tx = pool.begin().await.unwrap();
                        for s in &streams {
                            let e = domain::customer::CustomerEvent::PurchaseRecorded {
                                order: domain::values::OrderId::parse(format!(
                                    "o-{}-{seq}",
                                    &s[5..]
                                ))
                                .unwrap(),
                                amount: domain::values::Money::from_fen(fen).unwrap(),
                                store: domain::values::StoreId::parse("store-1").unwrap(),
                                staff: None,
                                at: t0 + chrono::Duration::minutes(seq),
                            };
                            insert_in(&mut tx, s, seq, "PurchaseRecorded", &e).await;
                        }
                        tx.commit().await.unwrap();
                    }
                    for s in &streams {
                        expected.push((s.trim_start_matches("acme:").to_string(), 49i64, total));
                    }
                }
                expected
            })
        })
        .collect();
    let mut expected = Vec::new();
    for w in writers {
        expected.extend(w.await.unwrap());
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, 8 * 25 * 2 * 50);
    projector::catch_up(&engine.db).await.expect("catch up");
    stop_tx.send(true).unwrap();
    projector_task.await.unwrap().unwrap();

    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT customer_id, purchases, total_fen FROM rm_customer ORDER BY customer_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    expected.sort();
    assert_eq!(rows, expected, "every purchase counted exactly once");
    for status in projector::status(&engine.db).await.unwrap() {
        assert_eq!(status.events_applied, total, "{}", status.name);
        assert_eq!(status.events_behind, 0, "{}", status.name);
    }
    let lanes: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT lane) FROM projection_lane_checkpoints")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(lanes, 2, "one order per worker");
}

/// Row-level security reaches the workers: a read scoped to one tenant sees that
/// tenant's events and no other's (with `set_config` it saw none, without an error).
#[tokio::test]
async fn a_tenant_scoped_read_on_citus_sees_its_own_events_only() {
    let test_db = TestDb::citus().await;
    let engine = test_db.engine().await;
    let Database::Postgres(pool) = engine.db.clone() else {
        unreachable!()
    };
    for (tenant, n) in [("acme", 30), ("beta", 20)] {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT 'Customer', $1 || ':c' || i, 1, 'Probe', '1.0', '{}', '{}' FROM generate_series(1, $2) i",
        )
        .bind(tenant)
        .bind(n)
        .execute(&pool)
        .await
        .unwrap();
    }
    for (tenant, n) in [("acme", 30i64), ("beta", 20)] {
        let mut conn = pool.acquire().await.unwrap();
        let scope = engine::reads::scope_sql(&domain::values::TenantId::parse(tenant).unwrap());
        sqlx::raw_sql(&scope).execute(&mut *conn).await.unwrap();
        let seen: Vec<(String, i64)> =
            sqlx::query_as("SELECT tenant_id, count(*) FROM events GROUP BY 1")
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.unwrap();
        assert_eq!(seen, vec![(tenant.to_string(), n)]);
    }
}

/// A rebuild on Citus reads every worker under its own snapshot, one partition per
/// shard, and gives the very rows the projector built incrementally from the same log:
/// two tenants' staff, customers, groups and tags, from the fixtures, through the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_on_citus_equals_the_incremental_read_models() {
    use super::projections::{assert_equal_to_partitioned_rebuilds, event_count};
    let test_db = TestDb::citus().await;
    let engine = test_db.engine().await;
    for (name, seed) in [("north", 7), ("south", 11)] {
        let params = fixtures::Params {
            customers: 60,
            ..fixtures::Params::for_scale(fixtures::Scale::Tiny, harness::ids::tenant(name), seed)
        };
        let mut commands = Vec::new();
        fixtures::generate(&params, fixtures::Options::default(), &mut |e| {
            commands.push(e)
        });
        for e in commands {
            harness::replay(&engine, &params.tenant, e).await;
        }
    }
    projector::catch_up(&engine.db).await.expect("catch up");
    let total = event_count(&engine.db).await;
    assert_equal_to_partitioned_rebuilds(&engine.db, total).await;
    // The rebuild's marks are the projector's: nothing is behind, and it goes on.
    for status in projector::status(&engine.db).await.unwrap() {
        assert_eq!(status.events_behind, 0, "{}", status.name);
        assert_eq!(status.events_applied as u64, total, "{}", status.name);
    }
}

/// Eight writers commit purchases while the projector runs and three rebuilds replace
/// the read models under them: each rebuild's per-worker marks let the projector go on
/// exactly where each worker's snapshot ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_committing_during_a_rebuild_on_citus_are_neither_missed_nor_doubled() {
    let all = projections::rebuild::Scope::All;
    super::projections::writers_during_rebuilds(TestDb::citus().await, all).await;
}

/// The same with the writers' tenant rebuilt in place: the rows the projector applied
/// after each worker's snapshot are applied again on top, lane by lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_committing_during_a_tenants_rebuild_on_citus_are_neither_missed_nor_doubled() {
    let acme = projections::rebuild::Scope::Tenant("acme".into());
    super::projections::writers_during_rebuilds(TestDb::citus().await, acme).await;
}

/// One tenant's rebuild on Citus mends that tenant's rows and leaves the other's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_rebuild_on_citus_replaces_that_tenants_rows_only() {
    super::projections::tenants_rebuild(TestDb::citus().await).await;
}

async fn insert(
    pool: &sqlx::PgPool,
    stream: &str,
    seq: i64,
    kind: &str,
    e: &domain::customer::CustomerEvent,
) {
    let mut tx = pool.begin().await.unwrap();
    insert_in(&mut tx, stream, seq, kind, e).await;
    tx.commit().await.unwrap();
}

async fn insert_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    stream: &str,
    seq: i64,
    kind: &str,
    e: &domain::customer::CustomerEvent,
) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('Customer', $1, $2, $3, '1.0', $4::json, '{}')",
    )
    .bind(stream)
    .bind(seq)
    .bind(kind)
    .bind(serde_json::to_string(e).unwrap())
    .execute(&mut **tx)
    .await
    .unwrap();
}
