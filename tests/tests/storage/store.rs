//! The event store and command service on both backends, against real storage.

use std::collections::BTreeSet;
use std::sync::Arc;

use domain::customer::{AddWay, Customer, CustomerCommand, CustomerError};
use domain::group::{GroupCommand, GroupError, Member};
use domain::stamp::{stream_id, Stamped};
use domain::values::TenantId;
use engine::app::Engine;
use engine::commands::CommandService;
use engine::commands::{Actor, CommandError, CommandMeta, RetryPolicy};
use harness::ids::{at, customer, group, staff, tenant};
use harness::{on_both_backends, TestDb};
use uuid::Uuid;

fn meta(t: &TenantId) -> CommandMeta {
    CommandMeta::new(t.clone(), Actor::system("test"), Uuid::new_v4())
}

fn add_friend(s: &str, minute: i64) -> Stamped<CustomerCommand> {
    Stamped::new(
        at(minute),
        CustomerCommand::AddFriend {
            staff: staff(s),
            add_way: AddWay::QR_CODE,
            channel_state: Some("store-7".into()),
        },
    )
}

async fn stored_events(db: &TestDb, stream: &str) -> Vec<(i64, String, serde_json::Value)> {
    let sql_pg = "SELECT sequence, event_type, metadata::text FROM events \
                  WHERE aggregate_id = $1 ORDER BY sequence";
    let rows: Vec<(i64, String, String)> = match &db.db {
        engine::db::Database::Postgres(p) => sqlx::query_as(sql_pg).bind(stream).fetch_all(p).await,
        engine::db::Database::Sqlite(p) => {
            sqlx::query_as(
                "SELECT sequence, event_type, metadata FROM events \
                 WHERE aggregate_id = ?1 ORDER BY sequence",
            )
            .bind(stream)
            .fetch_all(p)
            .await
        }
    }
    .expect("read events");
    rows.into_iter()
        .map(|(s, t, m)| (s, t, serde_json::from_str(&m).expect("metadata json")))
        .collect()
}

async fn positions(db: &TestDb) -> Vec<i64> {
    match &db.db {
        engine::db::Database::Postgres(p) => {
            sqlx::query_scalar("SELECT position FROM events ORDER BY position")
                .fetch_all(p)
                .await
        }
        engine::db::Database::Sqlite(p) => {
            sqlx::query_scalar("SELECT position FROM events ORDER BY position")
                .fetch_all(p)
                .await
        }
    }
    .expect("positions")
}

on_both_backends! {
    async fn appended_events_load_back_with_tenant_actor_time_and_request(db: TestDb) {
        let engine = db.engine().await;
        let t = tenant("acme");
        let stream = stream_id(&t, "wo-cust-1");
        let m = meta(&t);
        let first = engine.customers.execute(&stream, add_friend("guide-1", 0), &m).await.unwrap();
        assert_eq!((first.version, first.appended, first.replayed), (1, 1, false));
        let second = engine
            .customers
            .execute(&stream, Stamped::new(at(5), CustomerCommand::ChangeRemark {
                staff: staff("guide-1"),
                remark: "喜欢黄金手镯".into(),
                description: "VIP since 2019".into(),
            }), &m)
            .await
            .unwrap();
        assert_eq!(second.version, 2);
        assert!(second.position.unwrap() > first.position.unwrap());

        let (state, version) = engine.customers.load(&stream).await.unwrap();
        assert_eq!(version, 2);
        assert_eq!(state.relation(&staff("guide-1")).unwrap().remark, "喜欢黄金手镯");

        let events = stored_events(&db, &stream).await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].1, "FriendAdded");
        assert_eq!(events[1].1, "RemarkChanged");
        let md = &events[1].2;
        assert_eq!(md["tenant_id"], "acme");
        assert_eq!(md["actor"], "system:test");
        assert_eq!(md["request_id"], m.request_id.to_string());
        assert_eq!(md["occurred_at"], "2026-03-01T00:05:00Z");
    }
}

on_both_backends! {
    async fn concurrent_writers_on_one_customer_all_land_exactly_once(db: TestDb) {
        let engine = Arc::new(db.engine().await);
        let t = tenant("acme");
        let stream = stream_id(&t, "wo-busy");
        let writers = 8;
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (engine, stream, t) = (engine.clone(), stream.clone(), t.clone());
            tasks.push(tokio::spawn(async move {
                engine.customers.execute(&stream, add_friend(&format!("guide-{w}"), w), &meta(&t)).await
            }));
        }
        let mut attempts = 0;
        for task in tasks {
            attempts += task.await.unwrap().expect("every writer lands after retries").attempts;
        }
        let (state, version) = engine.customers.load(&stream).await.unwrap();
        assert_eq!(version, writers as usize);
        let friends: BTreeSet<_> = state.staff().cloned().collect();
        assert_eq!(friends.len(), writers as usize, "each add applied once");
        let events = stored_events(&db, &stream).await;
        let sequences: Vec<i64> = events.iter().map(|e| e.0).collect();
        assert_eq!(sequences, (1..=writers).collect::<Vec<_>>(), "no gap, no duplicate");
        assert!(attempts >= writers as u32);
    }
}

on_both_backends! {
    async fn without_retries_a_lost_race_is_a_clear_conflict_and_nothing_is_lost(db: TestDb) {
        let engine = db.engine().await;
        let no_retry = Arc::new(
            CommandService::<Customer>::new(&engine.db)
                .with_retry(RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }),
        );
        let t = tenant("acme");
        let stream = stream_id(&t, "wo-race");
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (svc, stream, t) = (no_retry.clone(), stream.clone(), t.clone());
            tasks.push(tokio::spawn(async move {
                (w, svc.execute(&stream, add_friend(&format!("guide-{w}"), w), &meta(&t)).await)
            }));
        }
        let mut landed = BTreeSet::new();
        for task in tasks {
            match task.await.unwrap() {
                (w, Ok(_)) => { landed.insert(staff(&format!("guide-{w}"))); }
                (_, Err(CommandError::Conflict { attempts: 1 })) => {}
                (_, Err(other)) => panic!("unexpected error: {other}"),
            }
        }
        let (state, version) = engine.customers.load(&stream).await.unwrap();
        assert_eq!(version, landed.len());
        assert_eq!(state.staff().cloned().collect::<BTreeSet<_>>(), landed);
    }
}

on_both_backends! {
    async fn two_appends_from_the_same_version_cannot_both_succeed(db: TestDb) {
        let engine = db.engine().await;
        let t = tenant("acme");
        let stream = stream_id(&t, "wo-stale");
        engine.customers.execute(&stream, add_friend("guide-1", 0), &meta(&t)).await.unwrap();
        let stale = meta(&t).expecting_version(1);
        engine.customers.execute(&stream, add_friend("guide-2", 1), &stale).await.unwrap();
        let err = engine.customers.execute(&stream, add_friend("guide-3", 2), &stale).await.unwrap_err();
        assert!(matches!(err, CommandError::VersionConflict { expected: 1, actual: 2 }), "{err}");
        assert_eq!(engine.customers.load(&stream).await.unwrap().1, 2);
    }
}

on_both_backends! {
    async fn a_repeated_idempotency_key_appends_nothing_new(db: TestDb) {
        let engine = Arc::new(db.engine().await);
        let t = tenant("acme");
        let stream = stream_id(&t, "wo-idem");
        let m = meta(&t).with_idempotency_key("req-42");
        let first = engine.customers.execute(&stream, add_friend("guide-1", 0), &m).await.unwrap();
        // The edge stamps a retry with a new instant: still the same request.
        let again = engine.customers.execute(&stream, add_friend("guide-1", 3), &m).await.unwrap();
        assert!(again.replayed);
        assert_eq!((again.version, again.position, again.appended), (first.version, first.position, 0));

        // Eight racing deliveries of one new request: one lands, the rest replay it.
        let racing = meta(&t).with_idempotency_key("req-43");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (engine, stream, m) = (engine.clone(), stream.clone(), racing.clone());
            tasks.push(tokio::spawn(async move {
                engine.customers.execute(&stream, add_friend("guide-2", 9), &m).await.unwrap()
            }));
        }
        let mut appended = 0;
        for task in tasks {
            appended += task.await.unwrap().appended;
        }
        assert_eq!(appended, 1);
        assert_eq!(stored_events(&db, &stream).await.len(), 2);
    }
}

on_both_backends! {
    async fn a_key_reused_for_a_different_command_is_refused(db: TestDb) {
        let engine = db.engine().await;
        let t = tenant("acme");
        let stream = stream_id(&t, "wo-reuse");
        let m = meta(&t).with_idempotency_key("req-1");
        engine.customers.execute(&stream, add_friend("guide-1", 0), &m).await.unwrap();
        let err = engine.customers.execute(&stream, add_friend("guide-2", 0), &m).await.unwrap_err();
        assert!(matches!(err, CommandError::IdempotencyKeyReused), "{err}");
        assert_eq!(stored_events(&db, &stream).await.len(), 1);
    }
}

on_both_backends! {
    async fn rejected_and_cross_tenant_commands_write_nothing(db: TestDb) {
        let engine = db.engine().await;
        let t = tenant("acme");
        let stream = stream_id(&t, "wo-rules");
        engine.customers.execute(&stream, add_friend("guide-1", 0), &meta(&t)).await.unwrap();
        let err = engine.customers.execute(&stream, add_friend("guide-1", 1), &meta(&t)).await.unwrap_err();
        assert!(matches!(err.rejection(), Some(CustomerError::AlreadyFriend(_))), "{err}");

        let other = tenant("rival");
        let err = engine.customers.execute(&stream, add_friend("guide-9", 2), &meta(&other)).await.unwrap_err();
        assert!(matches!(err, CommandError::WrongTenant { .. }), "{err}");
        assert_eq!(stored_events(&db, &stream).await.len(), 1);
    }
}

on_both_backends! {
    async fn positions_are_unique_and_increase_in_commit_order_per_writer(db: TestDb) {
        let engine = Arc::new(db.engine().await);
        let t = tenant("acme");
        let mut writers = Vec::new();
        for w in 0..4 {
            let (engine, t) = (engine.clone(), t.clone());
            writers.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                for i in 0..40 {
                    // Writers share customers, so they also race on streams.
                    let stream = stream_id(&t, &format!("wo-{}", i % 10));
                    let out = engine
                        .customers
                        .execute(&stream, add_friend(&format!("g{w}-{i}"), i), &meta(&t))
                        .await
                        .unwrap();
                    seen.push(out.position.expect("position"));
                }
                seen
            }));
        }
        for writer in writers {
            let seen = writer.await.unwrap();
            assert!(seen.windows(2).all(|p| p[0] < p[1]), "per writer increasing: {seen:?}");
        }
        let all = positions(&db).await;
        assert_eq!(all.len(), 160);
        let unique: BTreeSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "positions are unique");
    }
}

on_both_backends! {
    async fn group_capacity_holds_and_an_interrupted_join_is_repaired(db: TestDb) {
        let engine: Engine = db.engine().await;
        let t = tenant("acme");
        let g = group("wr-group-1");
        let group_stream = stream_id(&t, g.as_str());
        engine.groups.execute(&group_stream, Stamped::new(at(0), GroupCommand::Create {
            owner: staff("guide-1"), name: "VIP 群".into(), capacity: 3,
        }), &meta(&t)).await.unwrap();
        for c in ["wo-a", "wo-b", "wo-c"] {
            engine.customers.execute(&stream_id(&t, c), add_friend("guide-1", 1), &meta(&t)).await.unwrap();
        }
        let membership = engine.membership();
        membership.join(&t, &g, &customer("wo-a"), 1, at(2), &meta(&t)).await.unwrap();

        // A crash after the group admitted wo-b but before wo-b's stream recorded it.
        engine.groups.execute(&group_stream, Stamped::new(at(3), GroupCommand::Admit {
            member: Member::Customer(customer("wo-b")), join_scene: 1,
        }), &meta(&t)).await.unwrap();
        let (b, _) = engine.customers.load(&stream_id(&t, "wo-b")).await.unwrap();
        assert!(!b.groups().contains(&g));

        // Owner + 2 customers = capacity 3: the group is full.
        let err = membership.join(&t, &g, &customer("wo-c"), 1, at(4), &meta(&t)).await.unwrap_err();
        assert!(matches!(err, engine::commands::MembershipError::Group(CommandError::Rejected(GroupError::GroupFull { capacity: 3 }))), "{err}");

        let repaired = membership.reconcile(&t, &g, at(5), &meta(&t)).await.unwrap();
        assert_eq!(repaired, 1);
        let (b, _) = engine.customers.load(&stream_id(&t, "wo-b")).await.unwrap();
        assert!(b.groups().contains(&g));
        assert_eq!(membership.reconcile(&t, &g, at(6), &meta(&t)).await.unwrap(), 0, "repair is idempotent");

        // Leaving frees the seat, and both streams agree.
        membership.leave(&t, &g, &customer("wo-a"), 0, at(7), &meta(&t)).await.unwrap();
        membership.join(&t, &g, &customer("wo-c"), 1, at(8), &meta(&t)).await.unwrap();
        let (grp, _) = engine.groups.load(&group_stream).await.unwrap();
        assert_eq!(grp.members().len(), 3);
        let (a, _) = engine.customers.load(&stream_id(&t, "wo-a")).await.unwrap();
        assert!(!a.groups().contains(&g));
        let (c, _) = engine.customers.load(&stream_id(&t, "wo-c")).await.unwrap();
        assert!(c.groups().contains(&g));
    }
}

on_both_backends! {
    async fn migrating_again_is_harmless_and_a_newer_schema_is_refused(db: TestDb) {
        db.db.migrate().await.unwrap();
        db.db.migrate().await.unwrap();
        let future = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                      VALUES (99999, 'from the future', true, x'00', 1)";
        match &db.db {
            engine::db::Database::Postgres(p) => {
                sqlx::query(&future.replace("x'00'", "'\\x00'::bytea")).execute(p).await.unwrap();
            }
            engine::db::Database::Sqlite(p) => {
                sqlx::query(future).execute(p).await.unwrap();
            }
        }
        let err = db.db.migrate().await.unwrap_err();
        assert!(matches!(err, engine::db::DbError::SchemaTooNew { found: 99999, .. }), "{err}");
        assert!(err.to_string().contains("upgrade scrm"));
    }
}
