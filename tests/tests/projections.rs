//! The durable projector: incremental read models equal a rebuild, whatever the batch
//! boundaries, concurrent commit order or restarts.

use std::sync::Arc;
use std::time::Duration;

use api::db::Database;
use chrono::{TimeZone, Utc};
use domain::customer::{AddWay, CustomerEvent};
use domain::staff::StaffEvent;
use domain::values::{Money, OrderId, StaffId, StoreId};
use fixtures::{Options, Params, Scale};
use harness::ids::tenant;
use harness::{on_both_backends, read_models, TestDb};
use projections::projector::{self, catch_up, step};
use projections::rebuild::rebuild;
use projections::registry::PORTRAIT;
use rand::{Rng, SeedableRng};
use tokio::sync::{watch, Notify};

fn tiny(name: &str, seed: u64, customers: u64) -> Params {
    Params {
        customers,
        ..Params::for_scale(Scale::Tiny, tenant(name), seed)
    }
}

async fn assert_equal_to_rebuild(db: &Database, expected_events: u64) {
    let incremental = read_models(db, &PORTRAIT).await;
    assert!(
        incremental["rm_customer"].len() > 10,
        "the projection has rows"
    );
    let report = rebuild(db, &PORTRAIT, false).await.expect("rebuild");
    assert_eq!(
        report.events, expected_events,
        "the rebuild read every event once"
    );
    let rebuilt = read_models(db, &PORTRAIT).await;
    for (table, rows) in &incremental {
        assert_eq!(rows.len(), rebuilt[table].len(), "{table}: row count");
        for (a, b) in rows.iter().zip(&rebuilt[table]) {
            assert_eq!(a, b, "{table}");
        }
    }
}

async fn event_count(db: &Database) -> u64 {
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
                    step(&engine.db, &PORTRAIT, rng.random_range(1..400)).await.expect("step");
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
        let status = projector::status(&engine.db).await.expect("status");
        assert_eq!(status[0].events_behind, 0);
        let total = event_count(&engine.db).await;
        assert_eq!(status[0].events_applied as u64, total, "each event applied exactly once");
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

    // One guide for the customers to befriend.
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
    .execute(&pool)
    .await
    .unwrap();

    const WRITERS: usize = 8;
    const CUSTOMERS_PER_WRITER: usize = 50;
    const PURCHASES: usize = 49; // + 1 FriendAdded = 50 events per customer
    let (stop_tx, stop) = watch::channel(false);
    let projector_task = tokio::spawn(projector::run(
        engine.db.clone(),
        Arc::new(Notify::new()),
        stop,
    ));

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let pool = pool.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
            let mut expected = Vec::new();
            for c in 0..CUSTOMERS_PER_WRITER {
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
        }));
    }
    let mut expected = Vec::new();
    for w in writers {
        expected.extend(w.await.unwrap());
    }
    let total = event_count(&engine.db).await;
    assert!(total >= 20_000, "{total} events");

    stop_tx.send(true).unwrap();
    projector_task.await.unwrap().unwrap();
    catch_up(&engine.db).await.unwrap();

    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT customer_id, purchases, total_fen FROM rm_customer ORDER BY customer_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    expected.sort();
    assert_eq!(rows, expected, "every purchase counted exactly once");
    let status = projector::status(&engine.db).await.unwrap();
    assert_eq!(status[0].events_applied as u64, total);
    assert_equal_to_rebuild(&engine.db, total).await;
}
