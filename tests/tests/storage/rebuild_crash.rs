//! A rebuild killed part way (SIGKILL, issue 17): the readers' tables stay whole, and
//! the next rebuild starts over and ends with the same rows.

use std::process::{Command, Stdio};

use harness::ids::tenant;
use harness::{read_models, TestDb};
use projections::registry::ALL;
use rand::{Rng, SeedableRng};
use server::config::Backend;

use super::handover_crash::scrm_binary;

async fn next_tables(db: &engine::db::Database) -> i64 {
    let engine::db::Database::Postgres(pool) = db else {
        unreachable!()
    };
    sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_next'")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_killed_part_way_leaves_the_old_tables_and_the_next_one_finishes() {
    let db = TestDb::postgres().await;
    db.db.migrate().await.unwrap();
    let params = fixtures::Params {
        customers: 10_000,
        ..fixtures::Params::for_scale(fixtures::Scale::Tiny, tenant("acme"), 5)
    };
    server::seed::seed(&db.db, params, false, server::seed::Progress::Silent)
        .await
        .unwrap();
    let engine = db.engine().await;
    projections::projector::prepare(&engine.db).await.unwrap();
    projections::projector::catch_up(&engine.db).await.unwrap();
    let mut before = Vec::new();
    for p in ALL {
        before.push(read_models(&engine.db, p).await);
    }
    let Backend::Postgres { url } = &db.backend else {
        unreachable!()
    };
    let seed: u64 = rand::random();
    eprintln!("random seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let scrm = scrm_binary();
    let rebuild = || {
        Command::new(&scrm)
            .args(["rebuild", "--all", "--jobs", "2"])
            .env("DATABASE_URL", url)
            .env("SCRM_PII_KEY", harness::TEST_PII_KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole one takes here, to kill the others within it.
    let timed = std::time::Instant::now();
    assert!(rebuild().wait().unwrap().success());
    let whole = timed.elapsed();
    let mut killed_mid_way = 0;
    for _ in 0..3 {
        let mut child = rebuild();
        tokio::time::sleep(whole.mul_f64(rng.random_range(0.05..0.9))).await;
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        // std's kill is SIGKILL on Unix: nothing of the rebuild's own cleanup runs.
        let _ = child.kill();
        child.wait().unwrap();
        // Whatever the moment, readers see whole tables, as before.
        for (p, was) in ALL.iter().zip(&before) {
            assert_eq!(&read_models(&engine.db, p).await, was, "{}", p.name);
        }
    }
    assert!(
        killed_mid_way > 0,
        "no rebuild was killed before it finished"
    );

    // Started again, it finishes, with the same rows and nothing left over.
    let reports = projections::rebuild::rebuild_all(&engine.db, false)
        .await
        .unwrap();
    let engine::db::Database::Postgres(pool) = &engine.db else {
        unreachable!()
    };
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(total > 50_000, "{total} events");
    assert_eq!(reports[0].events as i64, total);
    for (p, was) in ALL.iter().zip(&before) {
        assert_eq!(&read_models(&engine.db, p).await, was, "{}", p.name);
    }
    assert_eq!(next_tables(&engine.db).await, 0);
}
