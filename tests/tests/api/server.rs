//! The server hosts the projector: commands show up in the read models without anyone
//! asking, and health, readiness and lag are reported over HTTP.

use std::time::{Duration, Instant};

use domain::customer::{AddWay, CustomerCommand};
use domain::stamp::{stream_id, Stamped};
use engine::commands::{Actor, CommandMeta};
use engine::db::Database;
use harness::ids::{at, staff, tenant};
use harness::{on_both_backends, TestDb};
use server::serve::{App, ServerSettings};
use uuid::Uuid;

async fn projected(db: &Database, customer: &str) -> bool {
    let n: i64 = projections::on_pool!(db, |pool| {
        sqlx::query_scalar("SELECT count(*) FROM rm_customer WHERE customer_id = $1")
            .bind(customer)
            .fetch_one(pool)
            .await
    })
    .expect("query");
    n == 1
}

/// How long until `customer` shows in the portrait (panics after 10 s).
async fn time_to_projection(db: &Database, customer: &str) -> Duration {
    let started = Instant::now();
    while !projected(db, customer).await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{customer} never projected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

on_both_backends! {
    async fn the_server_projects_in_the_background_and_reports_health_and_lag(db: TestDb) {
        let engine = db.engine().await;
        let settings = ServerSettings::new("127.0.0.1:0".parse().unwrap(), harness::live::jwt());
        let app = App::build(engine, settings).await.unwrap();
        let base = format!("http://{}", app.local_addr());
        let engine = app.engine();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::new();
        let health = http.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);

        // Let the projector settle into its wait, then write: it must wake, not poll.
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let t = tenant("acme");
        let meta = CommandMeta::new(t.clone(), Actor::system("test"), Uuid::new_v4());
        let command = Stamped::new(at(0), CustomerCommand::AddFriend {
            staff: staff("guide-1"),
            add_way: AddWay::QR_CODE,
            channel_state: None,
        });
        engine.customers.execute(&stream_id(&t, "wo-live"), command, &meta).await.unwrap();
        let took = time_to_projection(&engine.db, "wo-live").await;
        assert!(took < Duration::from_millis(900), "woken, not polled: took {took:?}");

        // Every projection reports itself caught up soon after.
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
            assert_eq!(ready.status(), 200);
            let body: serde_json::Value = ready.json().await.unwrap();
            let projections = body["projections"].as_array().unwrap().clone();
            assert_eq!(projections.len(), projections::registry::ALL.len());
            if projections.iter().all(|p| p["eventsBehind"] == 0) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never caught up: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("scrm_projection_events_behind{projection=\"customer_portrait\"} 0"), "{metrics}");
        assert!(metrics.contains("scrm_projection_events_applied_total{projection=\"repurchase_funnel\"} 1"), "{metrics}");

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}

/// Another process's writes reach this server's projector through NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_another_process_wake_the_projector_through_notify() {
    let db = TestDb::postgres().await;
    let engine = db.engine().await;
    let settings = ServerSettings::new("127.0.0.1:0".parse().unwrap(), harness::live::jwt());
    let app = App::build(engine, settings).await.unwrap();
    let engine = app.engine();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    // A second engine on its own pool: nothing in-process tells the server about it.
    let other = engine::app::Engine::new(db.another_connection().await);
    let t = tenant("acme");
    let meta = CommandMeta::new(t.clone(), Actor::system("other"), Uuid::new_v4());
    let command = Stamped::new(
        at(0),
        CustomerCommand::AddFriend {
            staff: staff("guide-1"),
            add_way: AddWay::QR_CODE,
            channel_state: None,
        },
    );
    other
        .customers
        .execute(&stream_id(&t, "wo-remote"), command, &meta)
        .await
        .unwrap();
    let took = time_to_projection(&engine.db, "wo-remote").await;
    assert!(
        took < Duration::from_millis(900),
        "woken by NOTIFY, not polled: took {took:?}"
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
