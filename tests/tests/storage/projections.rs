//! The durable projector: incremental read models equal a rebuild, whatever the batch
//! boundaries, concurrent commit order or restarts.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use domain::customer::{AddWay, CustomerEvent};
use domain::staff::StaffEvent;
use domain::values::{Money, OrderId, StaffId, StoreId};
use engine::db::Database;
use fixtures::{Options, Params, Scale};
use harness::ids::tenant;
use harness::{on_both_backends, read_models, TestDb};
use projections::projector::{self, catch_up, step};
use projections::rebuild::{self, rebuild};
use projections::registry::ALL;
use rand::{Rng, SeedableRng};
use tokio::sync::{watch, Notify};

fn tiny(name: &str, seed: u64, customers: u64) -> Params {
    Params {
        customers,
        ..Params::for_scale(Scale::Tiny, tenant(name), seed)
    }
}

/// Every projection, caught up incrementally, equals its own full rebuild row for row.
pub(super) async fn assert_equal_to_rebuild(db: &Database, expected_events: u64) {
    for p in ALL {
        let incremental = read_models(db, p).await;
        assert!(
            incremental.values().any(|rows| rows.len() > 10),
            "{} has rows",
            p.name
        );
        let report = rebuild(db, p, false).await.expect("rebuild");
        assert_eq!(
            report.events, expected_events,
            "the rebuild read every event once"
        );
        let rebuilt = read_models(db, p).await;
        for (table, rows) in &incremental {
            assert_eq!(rows.len(), rebuilt[table].len(), "{table}: row count");
            for (a, b) in rows.iter().zip(&rebuilt[table]) {
                assert_eq!(a, b, "{table}");
            }
        }
    }
}

/// One pass over the log for every projection, split into 1, 2 and 7 partitions, gives
/// the same tables as the caught-up projections, row for row.
pub(super) async fn assert_equal_to_partitioned_rebuilds(db: &Database, expected_events: u64) {
    let mut before = Vec::new();
    for p in ALL {
        before.push(read_models(db, p).await);
    }
    for jobs in [1, 2, 7] {
        let options = rebuild::Options {
            jobs,
            ..Default::default()
        };
        let reports = rebuild::rebuild_with(db, &rebuild::all(), &options)
            .await
            .expect("rebuild all");
        assert_eq!(reports.len(), ALL.len());
        let partitions = match db {
            // On Citus: one partition per shard, whatever the jobs.
            Database::Postgres(pool) if projections::citus::is_citus(pool).await.unwrap() => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'events'::regclass",
                )
                .fetch_one(pool)
                .await
                .unwrap() as usize
            }
            Database::Postgres(_) => jobs,
            Database::Sqlite(_) => 1,
        };
        for (p, (report, incremental)) in ALL.iter().zip(reports.iter().zip(&before)) {
            assert_eq!(report.name, p.name);
            assert_eq!(report.partitions, partitions, "{jobs} jobs");
            assert_eq!(report.events, expected_events);
            assert_eq!(
                &read_models(db, p).await,
                incremental,
                "{} with {jobs} jobs",
                p.name
            );
        }
    }
}

pub(super) async fn event_count(db: &Database) -> u64 {
    let n: i64 = projections::on_pool!(db, |pool| {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await
    })
    .expect("count");
    n as u64
}

on_both_backends! {
    async fn incrementally_maintained_read_models_equal_a_full_rebuild(db: TestDb) {
        let engine = db.engine().await;
        let seed: u64 = rand::random();
        eprintln!("random seed {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Two tenants with random fixture seeds: random command sequences that obey the
        // rules, interleaved with catch-up steps of random size.
        for (i, name) in ["north", "south"].into_iter().enumerate() {
            let params = tiny(name, rng.random_range(0..10_000) + i as u64, 120);
            let mut commands = Vec::new();
            fixtures::generate(&params, Options::default(), &mut |e| commands.push(e));
            for e in commands {
                harness::replay(&engine, &params.tenant, e).await;
                if rng.random_bool(0.05) {
                    for p in ALL {
                        step(&engine.db, p, rng.random_range(1..400)).await.expect("step");
                    }
                }
            }
        }
        catch_up(&engine.db).await.expect("catch up");
        let total = event_count(&engine.db).await;
        assert_equal_to_rebuild(&engine.db, total).await;

        // After a rebuild the projector carries on from the swapped-in checkpoint.
        let params = tiny("east", seed % 1_000, 40);
        let mut commands = Vec::new();
        fixtures::generate(&params, Options::default(), &mut |e| commands.push(e));
        for e in commands {
            harness::replay(&engine, &params.tenant, e).await;
        }
        catch_up(&engine.db).await.expect("catch up");
        let total = event_count(&engine.db).await;
        assert_equal_to_rebuild(&engine.db, total).await;
        assert_equal_to_partitioned_rebuilds(&engine.db, total).await;
    }
}

on_both_backends! {
    async fn a_projector_killed_mid_batch_and_restarted_ends_in_the_same_state(db: TestDb) {
        let engine = Arc::new(db.engine().await);
        let params = tiny("acme", 7, 200);
        let mut commands = Vec::new();
        fixtures::generate(&params, Options::default(), &mut |e| commands.push(e));
        let writer = {
            let (engine, tenant) = (engine.clone(), params.tenant.clone());
            tokio::spawn(async move {
                for e in commands {
                    harness::replay(&engine, &tenant, e).await;
                }
            })
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(rand::random());
        for _ in 0..6 {
            let (_stop, stopped) = watch::channel(false);
            let runner = tokio::spawn(projector::run(engine.db.clone(), Arc::new(Notify::new()), stopped));
            tokio::time::sleep(Duration::from_millis(rng.random_range(5..120))).await;
            // Dropped wherever it is, mid-transaction included: nothing it did not commit stays.
            runner.abort();
            let _ = runner.await;
        }
        writer.await.expect("writer");
        catch_up(&engine.db).await.expect("catch up");
        let total = event_count(&engine.db).await;
        for status in projector::status(&engine.db).await.expect("status") {
            assert_eq!(status.events_behind, 0, "{}", status.name);
            assert_eq!(status.events_applied as u64, total, "{}: each event applied exactly once", status.name);
        }
        assert_equal_to_rebuild(&engine.db, total).await;
    }
}

/// Eight writers append straight to the store, several events per transaction, and
/// hold each transaction open for a random time before committing, so commits land out
/// of position order. A projector catches up all the while.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_committing_out_of_order_are_neither_missed_nor_doubled() {
    let test_db = TestDb::postgres().await;
    let engine = test_db.engine().await;
    let Database::Postgres(pool) = engine.db.clone() else {
        unreachable!()
    };
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();

    register_guide(&pool, t0).await;
    let (stop_tx, stop) = watch::channel(false);
    let projector_task = tokio::spawn(projector::run(
        engine.db.clone(),
        Arc::new(Notify::new()),
        stop,
    ));
    let writers = spawn_writers(&pool, 8, 50, t0);
    let mut expected = Vec::new();
    for w in writers {
        expected.extend(w.await.unwrap());
    }
    let total = event_count(&engine.db).await;
    assert!(total >= 20_000, "{total} events");

    stop_tx.send(true).unwrap();
    projector_task.await.unwrap().unwrap();
    catch_up(&engine.db).await.unwrap();

    assert_counted_once(&engine.db, expected, total).await;
    assert_equal_to_rebuild(&engine.db, total).await;
}

/// Writers appending purchases straight to the store, several events per transaction,
/// each transaction held open a random time: commits land out of position order. Each
/// returns (customer, purchases, total) of what it wrote.
fn spawn_writers(
    pool: &sqlx::PgPool,
    writers: usize,
    customers_per_writer: usize,
    t0: chrono::DateTime<Utc>,
) -> Vec<tokio::task::JoinHandle<Vec<(String, i64, i64)>>> {
    const PURCHASES: usize = 49; // + 1 FriendAdded = 50 events per customer
    (0..writers)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
                let mut expected = Vec::new();
                for c in 0..customers_per_writer {
                    let stream = format!("acme:wm-{w}-{c}");
                    let mut events = vec![CustomerEvent::FriendAdded {
                        staff: StaffId::parse("guide-1").unwrap(),
                        add_way: AddWay::QR_CODE,
                        channel_state: None,
                        at: t0,
                    }];
                    let mut total = 0;
                    for p in 0..PURCHASES {
                        let fen = rng.random_range(100..100_000);
                        total += fen;
                        events.push(CustomerEvent::PurchaseRecorded {
                            order: OrderId::parse(format!("o{w}-{c}-{p}")).unwrap(),
                            amount: Money::from_fen(fen).unwrap(),
                            store: StoreId::parse("store-1").unwrap(),
                            staff: None,
                            at: t0 + chrono::Duration::minutes(p as i64),
                        });
                    }
                    let mut seq = 1;
                    for chunk in events.chunks(rng.random_range(1..8)) {
                        let mut tx = pool.begin().await.unwrap();
                        for e in chunk {
                            sqlx::query(
                                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                                 VALUES ('Customer', $1, $2, $3, '1.0', $4::json, '{}')",
                            )
                            .bind(&stream)
                            .bind(seq)
                            .bind(e.name())
                            .bind(serde_json::to_string(e).unwrap())
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                            seq += 1;
                        }
                        let delay = rng.random_range(0.0..0.006);
                        sqlx::query("SELECT pg_sleep($1)").bind(delay).execute(&mut *tx).await.unwrap();
                        tx.commit().await.unwrap();
                    }
                    expected.push((format!("wm-{w}-{c}"), PURCHASES as i64, total));
                }
                expected
            })
        })
        .collect()
}

/// Each writer's customer holds exactly its purchases, and every projection applied
/// every event once.
async fn assert_counted_once(db: &Database, mut expected: Vec<(String, i64, i64)>, total: u64) {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT customer_id, purchases, total_fen FROM rm_customer ORDER BY customer_id",
    )
    .fetch_all(harness::pg(db))
    .await
    .unwrap();
    expected.sort();
    assert_eq!(rows, expected, "every purchase counted exactly once");
    for status in projector::status(db).await.unwrap() {
        assert_eq!(status.events_applied as u64, total, "{}", status.name);
    }
}

/// Registers the guide the writers' customers befriend.
async fn register_guide(pool: &sqlx::PgPool, t0: chrono::DateTime<Utc>) {
    let registered = StaffEvent::StaffRegistered {
        name: "导购".into(),
        store: StoreId::parse("store-1").unwrap(),
        title: "导购".into(),
        customer_limit: 5_000,
        at: t0,
    };
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('Staff', 'acme:guide-1', 1, 'StaffRegistered', '1.0', $1::json, '{}')",
    )
    .bind(serde_json::to_string(&registered).unwrap())
    .execute(pool)
    .await
    .unwrap();
}

/// A rebuild runs while eight writers commit out of order and the projector runs: the
/// rebuild reads one snapshot, the projector goes on from the rebuild's checkpoint
/// after the swap, and every purchase is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_committing_during_a_partitioned_rebuild_are_neither_missed_nor_doubled() {
    writers_during_rebuilds(TestDb::postgres().await, rebuild::Scope::All).await;
}

/// The same with the writers' tenant rebuilt: the tenant's rows are replaced in place,
/// and what the projector applied after the rebuild's snapshot is applied again on top.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_committing_during_a_tenants_rebuild_are_neither_missed_nor_doubled() {
    let acme = rebuild::Scope::Tenant("acme".into());
    writers_during_rebuilds(TestDb::postgres().await, acme).await;
}

/// Eight writers, the projector and three rebuilds of `scope` at once on `test_db`.
pub(super) async fn writers_during_rebuilds(test_db: TestDb, scope: rebuild::Scope) {
    let engine = test_db.engine().await;
    let Database::Postgres(pool) = engine.db.clone() else {
        unreachable!()
    };
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    register_guide(&pool, t0).await;
    let (stop_tx, stop) = watch::channel(false);
    let projector_task = tokio::spawn(projector::run(
        engine.db.clone(),
        Arc::new(Notify::new()),
        stop,
    ));
    let writers = spawn_writers(&pool, 8, 50, t0);
    // Rebuilds while the writers write, each reading a different part of the log.
    let mut rebuilt_at = Vec::new();
    for jobs in [2, 3, 2] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let options = rebuild::Options {
            jobs,
            scope: scope.clone(),
            ..Default::default()
        };
        let reports = rebuild::rebuild_with(&engine.db, &rebuild::all(), &options)
            .await
            .expect("rebuild during writes");
        rebuilt_at.push(reports[0].events);
    }
    let mut expected = Vec::new();
    for w in writers {
        expected.extend(w.await.unwrap());
    }
    let total = event_count(&engine.db).await;
    assert!(
        rebuilt_at.iter().any(|n| *n > 1 && *n < total),
        "a rebuild ran while the writers wrote: {rebuilt_at:?} of {total}"
    );
    stop_tx.send(true).unwrap();
    projector_task.await.unwrap().unwrap();
    catch_up(&engine.db).await.unwrap();
    assert_counted_once(&engine.db, expected, total).await;
    assert_equal_to_partitioned_rebuilds(&engine.db, total).await;
}

async fn scalar(db: &Database, sql: &str) -> i64 {
    projections::on_pool!(db, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await)
    .expect(sql)
}

on_both_backends! {
    async fn the_read_models_agree_with_the_log_and_with_each_other(db: TestDb) {
        use projections::funnel::{coupon_redemption, report, Dimension};
        let engine = db.engine().await;
        let params = tiny("acme", 3, 300);
        let mut commands = Vec::new();
        let summary = fixtures::generate(&params, Options::default(), &mut |e| commands.push(e));
        for e in commands {
            harness::replay(&engine, &params.tenant, e).await;
        }
        catch_up(&engine.db).await.unwrap();
        let count = |kind: &str| summary.events_by_type.get(kind).copied().unwrap_or(0) as i64;
        let db = &engine.db;

        // Funnel, cut two ways, against the portrait's purchase counts.
        for by in [Dimension::CohortMonth, Dimension::Store, Dimension::Channel, Dimension::Staff] {
            let lines = report(db, "acme", by).await.unwrap();
            let sum = |f: fn(&projections::funnel::FunnelLine) -> i64| lines.iter().map(f).sum::<i64>();
            assert_eq!(sum(|l| l.friends), scalar(db, "SELECT count(*) FROM rm_customer WHERE first_added_at IS NOT NULL").await);
            assert_eq!(sum(|l| l.first_purchase), scalar(db, "SELECT count(*) FROM rm_customer WHERE purchases >= 1").await);
            assert_eq!(sum(|l| l.repurchase), scalar(db, "SELECT count(*) FROM rm_customer WHERE purchases >= 2").await);
            assert_eq!(sum(|l| l.loyal), scalar(db, "SELECT count(*) FROM rm_customer WHERE purchases >= 5").await);
            assert!(lines.iter().all(|l| (0.0..=1.0).contains(&l.first_purchase_rate())));
        }
        assert_eq!(scalar(db, "SELECT CAST(sum(orders) AS BIGINT) FROM rm_funnel_customer").await, count("PurchaseRecorded"));

        // Coupons by campaign against the events the generator made.
        let campaigns = coupon_redemption(db, "acme").await.unwrap();
        assert_eq!(campaigns.iter().map(|c| c.1).sum::<i64>(), count("CouponIssued"));
        assert_eq!(campaigns.iter().map(|c| c.2).sum::<i64>(), count("CouponRedeemed"));
        assert_eq!(campaigns.iter().map(|c| c.3).sum::<i64>(), count("CouponExpired"));

        // Handovers and group transfers in the departure view.
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_handover").await, count("HandoverRequested"));
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_handover WHERE status = 'accepted'").await, count("HandoverAccepted"));
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_handover WHERE status LIKE 'refused%'").await, count("HandoverRefused"));
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_group_owner WHERE previous_owner_id IS NOT NULL").await, count("OwnershipTransferred"));
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_departure_staff WHERE departed_at IS NOT NULL").await, count("StaffDeparted"));
        // A departed guide's customers are either still theirs, in flight, or moved on.
        assert!(scalar(db, "SELECT count(*) FROM rm_staff_customer s JOIN rm_departure_staff d \
                            ON d.tenant_id = s.tenant_id AND d.staff_id = s.staff_id \
                            WHERE d.departed_at IS NOT NULL").await > 0);

        // Every relation carries its customer's stage and last activity (a guide's list
        // is sorted on the relation), including after handover requests, which change the
        // customer's row alone and mend the relations in place.
        assert!(count("HandoverRequested") > 0);
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_customer_staff r JOIN rm_customer c \
                            ON c.tenant_id = r.tenant_id AND c.customer_id = r.customer_id \
                            WHERE r.stage <> c.stage OR r.last_activity_at <> c.last_activity_at").await, 0);
        assert!(scalar(db, "SELECT count(*) FROM rm_customer_staff").await > 0);

        // The tag library's rename and deletion show through the join.
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_tag WHERE name = '新中式'").await, 1);
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_tag WHERE deleted").await, count("TagDeleted"));
    }
}

/// The reader walks the (txid, position) index in order; a plan that sorts would read the
/// whole log for every batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_order_reader_walks_its_index_without_sorting() {
    let db = TestDb::postgres().await;
    let engine = db.engine().await;
    let Database::Postgres(pool) = &engine.db else {
        unreachable!()
    };
    let mut conn = pool.acquire().await.unwrap();
    // Whatever an empty table's statistics suggest: can the reader walk the index in
    // order? A query ordered by anything else would still need its Sort.
    for setting in ["enable_seqscan", "enable_bitmapscan", "enable_sort"] {
        sqlx::query(&format!("SET {setting} = off"))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let sql = format!("EXPLAIN {}", projections::log::READ_SQL_POSTGRES);
    let plan: Vec<String> = sqlx::query_scalar(&sql)
        .bind(0_i64)
        .bind(0_i64)
        .bind(1000_i64)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index Scan using events_global_order"),
        "{plan}"
    );
    assert!(!plan.contains("Sort"), "{plan}");
}

on_both_backends! {
    async fn a_projection_built_by_other_code_is_rebuilt_at_start_not_mixed(db: TestDb) {
        let engine = db.engine().await;
        let params = tiny("acme", 5, 60);
        let mut commands = Vec::new();
        fixtures::generate(&params, Options::default(), &mut |e| commands.push(e));
        for e in commands {
            harness::replay(&engine, &params.tenant, e).await;
        }
        catch_up(&engine.db).await.unwrap();
        let good = read_models(&engine.db, &ALL[0]).await;

        // As if an older build had made these rows: another version, and a row it got wrong.
        for sql in [
            "UPDATE projection_checkpoints SET version = version + 100 WHERE name = 'customer_portrait'",
            "UPDATE rm_customer SET purchases = purchases + 1000",
        ] {
            projections::on_pool!(&engine.db, |pool| {
                sqlx::query(sql).execute(pool).await.map(|_| ())
            })
            .unwrap();
        }
        let stale = step(&engine.db, &ALL[0], 100).await.unwrap_err();
        assert!(matches!(stale, projections::ProjectionError::NeedsRebuild(_)), "{stale}");

        // Starting the engine again rebuilds it before anything is fed to it.
        let restarted = engine::app::Engine::start(engine.db.clone()).await.unwrap();
        assert_eq!(read_models(&restarted.db, &ALL[0]).await, good);
        let status = projector::status(&restarted.db).await.unwrap();
        assert_eq!(status[0].stored_version, Some(status[0].code_version));
        assert_eq!(status[0].events_behind, 0);
    }
}

async fn exec(db: &Database, sql: &str) {
    projections::on_pool!(db, |pool| sqlx::query(sql).execute(pool).await.map(drop)).expect(sql);
}

on_both_backends! {
    async fn a_projection_that_cannot_go_on_stops_alone_says_why_and_resumes(db: TestDb) {
        use projections::failures;
        use projections::departures::Departures;
        use projections::funnel::Funnel;
        use projections::portrait::fold::PortraitSet;
        use projections::registry;
        let portrait = registry::of::<PortraitSet>();
        let (departures, funnel) = (registry::of::<Departures>(), registry::of::<Funnel>());
        db.seed_tiny(&[("acme", 1)]).await;
        let engine = db.engine().await;
        let db = &engine.db;
        catch_up(db).await.unwrap();
        // An event of the tag library no code can read, then a friend-add after it.
        exec(db, "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                  event_version, payload, metadata) VALUES ('TagLibrary', 'acme:library-x', 1, \
                  'Nonsense', '1.0', '{\"Nonsense\": {}}', '{}')").await;
        exec(db, "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                  event_version, payload, metadata) SELECT aggregate_type, 'acme:woAFTER', 1, \
                  event_type, event_version, payload, metadata FROM events \
                  WHERE aggregate_type = 'Customer' AND event_type = 'FriendAdded' LIMIT 1").await;
        let poison = scalar(db, "SELECT position FROM events WHERE aggregate_id = 'acme:library-x'").await;

        // The portrait reads the tag library, so it stops there; the funnel and the
        // departure view do not, and take the friend-add.
        let error = catch_up(db).await.unwrap_err();
        assert!(matches!(error, projections::ProjectionError::BadEvent { .. }), "{error}");
        let stopped = failures::of(db, portrait.name).await.unwrap().expect("portrait stopped");
        assert_eq!((stopped.kind.as_str(), stopped.at.position), ("BAD_EVENT", poison));
        assert!(stopped.error.contains("Nonsense"), "{}", stopped.error);
        for p in [departures, funnel] {
            assert_eq!(failures::of(db, p.name).await.unwrap(), None, "{}", p.name);
        }
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_funnel_customer WHERE customer_id = 'woAFTER'").await, 1);
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_customer WHERE customer_id = 'woAFTER'").await, 0);
        // Trying again counts the attempt and moves nothing.
        assert!(catch_up(db).await.is_err());
        assert_eq!(failures::of(db, portrait.name).await.unwrap().unwrap().attempts, 2);
        let statuses = projector::status(db).await.unwrap();
        let stuck: Vec<&str> = statuses.iter().filter(|s| s.failure.is_some()).map(|s| s.name).collect();
        assert_eq!(stuck, vec![portrait.name]);

        // Once the row is readable (here: an operator removes what no code can read), the
        // portrait goes on from where it stopped and its failure is gone.
        exec(db, "DELETE FROM events WHERE aggregate_id = 'acme:library-x'").await;
        catch_up(db).await.unwrap();
        assert_eq!(failures::of(db, portrait.name).await.unwrap(), None);
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_customer WHERE customer_id = 'woAFTER'").await, 1);

        // A projection built by another code version stops alone too, and a rebuild
        // resumes it.
        exec(db, "UPDATE projection_checkpoints SET version = version - 1 WHERE name = 'repurchase_funnel'").await;
        exec(db, "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                  event_version, payload, metadata) SELECT aggregate_type, 'acme:woLATER', 1, \
                  event_type, event_version, payload, metadata FROM events \
                  WHERE aggregate_type = 'Customer' AND event_type = 'FriendAdded' LIMIT 1").await;
        assert!(catch_up(db).await.is_err());
        assert_eq!(failures::of(db, funnel.name).await.unwrap().unwrap().kind, "NEEDS_REBUILD");
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_customer WHERE customer_id = 'woLATER'").await, 1);
        rebuild(db, funnel, false).await.unwrap();
        assert_eq!(failures::of(db, funnel.name).await.unwrap(), None);
        catch_up(db).await.unwrap();
        assert_eq!(scalar(db, "SELECT count(*) FROM rm_funnel_customer WHERE customer_id = 'woLATER'").await, 1);
    }
}

/// The rows of `tenant` in each table of a projection's read models.
fn of_tenant(
    models: &std::collections::BTreeMap<&'static str, Vec<Vec<Option<String>>>>,
    tenant: &str,
) -> std::collections::BTreeMap<&'static str, Vec<Vec<Option<String>>>> {
    models
        .iter()
        .map(|(table, rows)| {
            let mine = rows
                .iter()
                .filter(|r| r[0].as_deref() == Some(tenant))
                .cloned()
                .collect();
            (*table, mine)
        })
        .collect()
}

on_both_backends! {
    async fn a_tenants_rebuild_replaces_that_tenants_rows_and_leaves_the_others_alone(db: TestDb) {
        tenants_rebuild(db).await;
    }
}

/// Two tenants' rows damaged; one tenant's rebuild mends its rows and no other's.
pub(super) async fn tenants_rebuild(db: TestDb) {
    let engine = db.engine().await;
    for (seed, name) in [(3, "north"), (4, "south")] {
        let params = tiny(name, seed, 80);
        let mut commands = Vec::new();
        fixtures::generate(&params, Options::default(), &mut |e| commands.push(e));
        for e in commands {
            harness::replay(&engine, &params.tenant, e).await;
        }
    }
    catch_up(&engine.db).await.expect("catch up");
    let db = &engine.db;
    let mut before = Vec::new();
    for p in ALL {
        before.push(read_models(db, p).await);
    }
    let north_events = scalar(db, "SELECT count(*) FROM events WHERE tenant_id = 'north'").await;

    // Given both tenants' rows damaged, as a fold with a bug would leave them
    exec(db, "UPDATE rm_customer SET purchases = purchases + 1000").await;
    exec(db, "DELETE FROM rm_funnel_customer").await;
    exec(db, "DELETE FROM rm_tag").await;
    // when north's analyst rebuilds north
    let options = rebuild::Options {
        jobs: 2,
        scope: rebuild::Scope::Tenant("north".into()),
        progress: false,
    };
    let reports = rebuild::rebuild_with(db, &rebuild::all(), &options)
        .await
        .expect("tenant rebuild");
    assert_eq!(
        reports[0].events as i64, north_events,
        "read north's events only"
    );

    // then north's rows are whole again
    for (p, was) in ALL.iter().zip(&before) {
        let now = read_models(db, p).await;
        assert_eq!(
            of_tenant(&now, "north"),
            of_tenant(was, "north"),
            "{}",
            p.name
        );
    }
    // and south's are exactly as the damage left them.
    assert_eq!(
        scalar(
            db,
            "SELECT count(*) FROM rm_customer WHERE tenant_id = 'south' AND purchases < 1000"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            db,
            "SELECT count(*) FROM rm_funnel_customer WHERE tenant_id = 'south'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(db, "SELECT count(*) FROM rm_tag WHERE tenant_id = 'south'").await,
        0
    );
    // North's own figures still count each of its events once.
    for status in projector::tenant_status(db, "north").await.expect("status") {
        assert_eq!(status.events_applied, north_events, "{}", status.name);
    }
    // The projector goes on as before, and a deployment rebuild mends south.
    catch_up(db).await.expect("catch up");
    rebuild::rebuild_all(db, false).await.expect("rebuild all");
    for (p, was) in ALL.iter().zip(&before) {
        assert_eq!(&read_models(db, p).await, was, "{}", p.name);
    }
}

on_both_backends! {
    /// A guide's registration and move recorded after customers it won (a directory
    /// synced late; on Citus, the guide's worker behind the customers'): the customers
    /// already projected are placed by the time they were won, and a rebuild agrees.
    async fn a_guide_recorded_after_its_customers_places_them_by_time(db: TestDb) {
        use domain::customer::CustomerCommand;
        use domain::stamp::{stream_id, Stamped};
        use domain::staff::StaffCommand;
        use engine::commands::{Actor, CommandMeta};
        use harness::ids::at;
        let engine = db.engine().await;
        let t = tenant("acme");
        let meta = || CommandMeta::new(t.clone(), Actor::system("test"), uuid::Uuid::new_v4());
        let add = |c: &'static str, minute| {
            let engine = &engine;
            let t = &t;
            async move {
                let add = CustomerCommand::AddFriend {
                    staff: StaffId::parse("guide-late").unwrap(),
                    add_way: AddWay::QR_CODE,
                    channel_state: None,
                };
                let stream = stream_id(t, c);
                engine.customers.execute(&stream, Stamped::new(at(minute), add), &meta()).await.unwrap();
                catch_up(&engine.db).await.unwrap();
            }
        };
        let guide = |minute, command| {
            let engine = &engine;
            let stream = stream_id(&t, "guide-late");
            async move {
                engine.staff.execute(&stream, Stamped::new(at(minute), command), &meta()).await.unwrap();
                catch_up(&engine.db).await.unwrap();
            }
        };
        let stores = || async {
            let rows: Vec<(String, Option<String>)> = projections::on_pool!(&engine.db, |pool| {
                sqlx::query_as("SELECT customer_id, store_id FROM rm_funnel_customer ORDER BY customer_id")
                    .fetch_all(pool)
                    .await
            })
            .unwrap();
            rows.into_iter().map(|(c, s)| (c, s.unwrap_or_default())).collect::<Vec<_>>()
        };
        let row = |c: &str, s: &str| (c.to_string(), s.to_string());
        // Given two customers won at minutes 0 and 10 by a guide not yet recorded
        add("wo-1", 0).await;
        add("wo-2", 10).await;
        assert_eq!(stores().await, vec![row("wo-1", ""), row("wo-2", "")]);
        // when the guide's registration at store-7 (minute 5) is recorded
        let store = |s: &str| StoreId::parse(s).unwrap();
        let register = StaffCommand::Register { name: "王芳".into(), store: store("store-7"), title: "导购".into() };
        guide(5, register).await;
        // then both are placed there (minute 0 is before any record: the first known)
        assert_eq!(stores().await, vec![row("wo-1", "store-7"), row("wo-2", "store-7")]);
        // and a move to store-8 at minute 20, recorded after a customer won at minute 30,
        // places that customer in store-8 and leaves the earlier two in store-7.
        add("wo-3", 30).await;
        assert_eq!(stores().await[2], row("wo-3", "store-7"));
        guide(20, StaffCommand::MoveToStore { store: store("store-8") }).await;
        let expected = vec![row("wo-1", "store-7"), row("wo-2", "store-7"), row("wo-3", "store-8")];
        assert_eq!(stores().await, expected);
        let funnel = ALL.iter().find(|p| p.name == "repurchase_funnel").unwrap();
        let incremental = read_models(&engine.db, funnel).await;
        rebuild(&engine.db, funnel, false).await.unwrap();
        assert_eq!(read_models(&engine.db, funnel).await, incremental);
        assert_eq!(stores().await, expected);
    }
}
