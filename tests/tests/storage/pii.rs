//! `scrm pii seal`: events written before sealing existed hold personal data in the
//! clear; the migration seals them in resumable chunks, completely, and the read models
//! rebuilt from the sealed log are what they were.

use engine::db::Database;
use fixtures::{Params, Scale};
use harness::ids::tenant;
use harness::on_both_backends;
use projections::on_pool;
use projections::pii::migrate::seal_plaintext;
use server::seed::{seed_as, Progress, Sealing};

/// How many events hold `needle` in their payload.
async fn events_holding(db: &Database, needle: &str) -> i64 {
    on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE CAST(payload AS TEXT) LIKE '%' || $1 || '%'",
        )
        .bind(needle)
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

async fn names(db: &Database) -> Vec<(String, Option<String>, Option<String>)> {
    on_pool!(db, |pool| {
        sqlx::query_as("SELECT customer_id, name, phone FROM rm_customer ORDER BY customer_id")
            .fetch_all(pool)
            .await
    })
    .unwrap()
}

on_both_backends! {
    async fn the_plaintext_of_old_events_is_sealed_in_resumable_chunks_and_completely(db: TestDb) {
        db.db.migrate().await.unwrap();
        let params = Params::for_scale(Scale::Tiny, tenant("acme"), 1);
        seed_as(&db.db, params, false, Progress::Silent, Sealing::Plaintext).await.unwrap();
        let engine = db.engine().await;
        projections::projector::catch_up(&engine.db).await.unwrap();
        let before = names(&db.db).await;
        // The seeded tenant's known names and phones, each in the clear in the log.
        let known: Vec<String> = before
            .iter()
            .flat_map(|(_, n, p)| [n.clone(), p.clone()])
            .flatten()
            .collect();
        assert!(known.len() > 20, "{known:?}");
        for k in known.iter().take(20) {
            assert!(events_holding(&db.db, k).await > 0, "{k} not in the clear to begin with");
        }

        // A run stopped after two chunks leaves the rest; the next resumes where it
        // stopped (it reads only what the first did not), and then nothing is left.
        let first = seal_plaintext(&db.db, 200, Some(2)).await.unwrap();
        assert_eq!(first.chunks, 2);
        assert!(first.rewritten > 0);
        let plain_left = |db: &Database| {
            let db = db.clone();
            async move {
                on_pool!(&db, |pool| {
                    sqlx::query_scalar::<_, i64>(
                        "SELECT count(*) FROM events WHERE aggregate_type = 'Customer' \
                         AND event_type IN ('ProfileUpdated', 'RemarkChanged') \
                         AND CAST(payload AS TEXT) NOT LIKE '%pii1:%'",
                    )
                    .fetch_one(pool)
                    .await
                })
                .unwrap()
            }
        };
        assert!(plain_left(&db.db).await > 0, "two chunks sealed everything: the test proves nothing");
        let rest = seal_plaintext(&db.db, 200, None).await.unwrap();
        let customer_events: i64 = on_pool!(&db.db, |pool| {
            sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Customer'")
                .fetch_one(pool)
                .await
        })
        .unwrap();
        assert_eq!(first.scanned + rest.scanned, customer_events as u64, "resumed, not restarted");
        assert_eq!(plain_left(&db.db).await, 0);
        for k in &known {
            assert_eq!(events_holding(&db.db, k).await, 0, "{k} still in the clear");
        }
        let again = seal_plaintext(&db.db, 200, None).await.unwrap();
        assert_eq!(again.rewritten, 0, "a finished migration has nothing left to do");

        // Read models rebuilt from the sealed log are what they were.
        projections::rebuild::rebuild_all(&db.db, false).await.unwrap();
        assert_eq!(names(&db.db).await, before);
    }
}
