//! `scrm seed`'s bulk path writes exactly what the command path writes.

use engine::db::Database;
use fixtures::{Options, Params, Scale};
use harness::ids::tenant;
use harness::on_both_backends;
use server::seed::{seed, Progress, SeedError};

type Row = (String, String, i64, String, String, String, String, i64);

/// Every stored event in position order. On PostgreSQL the JSON columns are compared as
/// values (`jsonb`): a live append binds jsonb, COPY sends text, and `json` keeps text
/// as given. On SQLite both paths store the same text, byte for byte.
async fn all_events(db: &Database) -> Vec<Row> {
    match db {
        Database::Postgres(pool) => {
            sqlx::query_as(
                "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, \
                    payload::jsonb::text, metadata::jsonb::text, position \
               FROM events ORDER BY position",
            )
            .fetch_all(pool)
            .await
        }
        Database::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, \
                    payload, metadata, position \
               FROM events ORDER BY position",
            )
            .fetch_all(pool)
            .await
        }
    }
    .expect("read events")
}

/// The rows with every payload parsed, customers' sealed personal data opened, and
/// checked sealed: nothing personal is stored in the clear by either path.
async fn opened(db: &Database, rows: Vec<Row>) -> Vec<(Row, serde_json::Value)> {
    use domain::customer::CustomerEvent;
    use domain::pii::Personal;
    let streams: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    let keys = projections::pii::keys::fetch(db, &streams).await.unwrap();
    let mut out = Vec::new();
    for mut row in rows {
        let payload = if row.0 == "Customer" {
            let mut event: CustomerEvent = serde_json::from_str(&row.5).unwrap();
            for f in event.personal_fields() {
                let value = f.value().unwrap_or("pii1:");
                assert!(
                    projections::pii::is_sealed(value),
                    "in the clear: {}",
                    row.5
                );
            }
            keys.open(&row.1, &mut event).unwrap();
            serde_json::to_value(&event).unwrap()
        } else {
            serde_json::from_str(&row.5).unwrap()
        };
        row.5 = String::new();
        out.push((row, payload));
    }
    out
}

on_both_backends! {
    async fn the_bulk_path_stores_what_the_command_path_stores(db: TestDb) {
        let params = Params::for_scale(Scale::Tiny, tenant("acme"), 1);
        db.db.migrate().await.unwrap();
        let report = seed(&db.db, params.clone(), false, Progress::Silent).await.unwrap();
        assert_eq!(report.rows, report.summary.events);

        let live = db.another().await;
        let engine = live.engine().await;
        let mut commands = Vec::new();
        fixtures::generate(&params, Options::default(), &mut |e| commands.push(e));
        for e in commands {
            harness::replay(&engine, &params.tenant, e).await;
        }

        // Each path seals with keys and nonces of its own: compare what they open to.
        let seeded = opened(&db.db, all_events(&db.db).await).await;
        let replayed = opened(&live.db, all_events(&live.db).await).await;
        assert_eq!(seeded.len() as u64, report.rows);
        assert_eq!(seeded.len(), replayed.len());
        for (s, r) in seeded.iter().zip(&replayed) {
            assert_eq!(s, r);
        }
    }
}

on_both_backends! {
    async fn a_tenant_is_seeded_once_unless_appending_with_another_seed(db: TestDb) {
        db.db.migrate().await.unwrap();
        let first = Params::for_scale(Scale::Tiny, tenant("acme"), 1);
        seed(&db.db, first.clone(), false, Progress::Silent).await.unwrap();

        let again = seed(&db.db, first.clone(), false, Progress::Silent).await.unwrap_err();
        assert!(matches!(again, SeedError::TenantExists(_)), "{again}");
        assert!(again.to_string().contains("--append"));

        let second = Params::for_scale(Scale::Tiny, tenant("acme"), 2);
        let added = seed(&db.db, second.clone(), true, Progress::Silent).await.unwrap();
        assert!(added.rows > 1_000);
        let twice = seed(&db.db, second, true, Progress::Silent).await.unwrap_err();
        assert!(matches!(twice, SeedError::SeedAlreadyLoaded { seed: 2, .. }), "{twice}");

        // Another tenant in the same database is independent.
        seed(&db.db, Params::for_scale(Scale::Tiny, tenant("rival"), 1), false, Progress::Silent)
            .await
            .unwrap();
        let rows = all_events(&db.db).await;
        let acme = rows.iter().filter(|r| r.1.starts_with("acme:")).count() as u64;
        assert_eq!(acme, (rows.len() as u64 - acme) + added.rows);
    }
}
