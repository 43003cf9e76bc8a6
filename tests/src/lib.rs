//! # scrm-tests: shared harness for the end-to-end and storage tests
//!
//! Every test gets storage of its own: a freshly created PostgreSQL database (dropped
//! when the test ends) or a SQLite file in a fresh temporary directory. Nothing is
//! mocked. The PostgreSQL server is found at `SCRM_TEST_PG_URL`, else at a postgres://
//! `DATABASE_URL`, else at postgres://postgres@127.0.0.1:5432/postgres.
//!
//! Depends on every crate of the workspace; nothing depends on it.

pub mod departure;
pub mod fake_wecom;
pub mod ids;
pub mod live;
pub mod wecom_import;
pub mod world;
pub mod ws;

use std::path::PathBuf;

use engine::app::Engine;
use engine::db::Database;
use server::config::{with_database, Backend};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The key for personal data every test process and every `scrm` it starts share.
pub const TEST_PII_KEY: &str = "test-only-pii-key-7c1f0e9a2b4d6c8e0f1a3b5c7d9e1f2a";

/// Installs [`TEST_PII_KEY`] in this process (as `scrm` does from its configuration).
pub fn install_pii_key() {
    projections::pii::install(TEST_PII_KEY).expect("the test key for personal data");
}

fn admin_url() -> String {
    std::env::var("SCRM_TEST_PG_URL")
        .ok()
        .or_else(|| {
            std::env::var("DATABASE_URL")
                .ok()
                .filter(|u| u.starts_with("postgres"))
        })
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string())
}

enum Cleanup {
    Postgres {
        admin_url: String,
        name: String,
    },
    /// The same database on every node of the Citus cluster.
    Citus {
        node_urls: Vec<String>,
        name: String,
    },
    Sqlite {
        dir: PathBuf,
    },
}

/// Storage that exists for one test only.
pub struct TestDb {
    pub db: Database,
    pub backend: Backend,
    cleanup: Cleanup,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("backend", &self.backend)
            .finish()
    }
}

impl TestDb {
    /// A new, empty PostgreSQL database (not migrated).
    pub async fn postgres() -> Self {
        let admin = admin_url();
        let name = format!("scrm_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("tests need PostgreSQL at {admin}: {e}"));
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        conn.close().await.ok();
        let backend = Backend::Postgres {
            url: with_database(&admin, &name),
        };
        install_pii_key();
        let db = Database::connect_to(&backend, 16)
            .await
            .expect("connect to test database");
        Self {
            db,
            backend,
            cleanup: Cleanup::Postgres {
                admin_url: admin,
                name,
            },
        }
    }

    /// A new, empty database on the local Citus cluster (not migrated): created on the
    /// coordinator and each worker, with the extension, and the workers registered. The
    /// cluster is found at `SCRM_TEST_CITUS_URL`, else started by `.ci/citus.sh`.
    pub async fn citus() -> Self {
        // Registering nodes of two new databases at once fails on the workers' side
        // ("failure on connection marked as essential"): one at a time.
        static SETTING_UP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = SETTING_UP.lock().await;
        let admin = citus_admin_url();
        let name = format!("scrm_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("Citus tests need the cluster at {admin}: {e}"));
        let workers: Vec<(String, i32)> = sqlx::query_as(
            "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 ORDER BY groupid",
        )
        .fetch_all(&mut conn)
        .await
        .expect("the admin database knows the workers (cluster.sh registers them)");
        assert!(!workers.is_empty(), "the Citus cluster has no workers");
        let mut node_urls = vec![admin.clone()];
        for (host, port) in &workers {
            node_urls.push(node_url(&admin, host, *port));
        }
        for url in &node_urls {
            let mut node = PgConnection::connect(url).await.expect("connect to node");
            node.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
            node.close().await.ok();
            let mut node = PgConnection::connect(&with_database(url, &name))
                .await
                .expect("connect to node");
            node.execute("CREATE EXTENSION citus").await.expect("citus");
            node.close().await.ok();
        }
        conn.close().await.ok();
        let url = with_database(&admin, &name);
        let mut coordinator = PgConnection::connect(&url).await.expect("coordinator");
        let (host, port) = host_port(&admin);
        sqlx::query("SELECT citus_set_coordinator_host($1, $2)")
            .bind(&host)
            .bind(port)
            .execute(&mut coordinator)
            .await
            .expect("register the coordinator");
        for (host, port) in &workers {
            sqlx::query("SELECT citus_add_node($1, $2)")
                .bind(host)
                .bind(port)
                .execute(&mut coordinator)
                .await
                .expect("register a worker");
        }
        coordinator.close().await.ok();
        let backend = Backend::Postgres { url };
        install_pii_key();
        let db = Database::connect_to(&backend, 16)
            .await
            .expect("connect to test database");
        Self {
            db,
            backend,
            cleanup: Cleanup::Citus { node_urls, name },
        }
    }

    /// A new SQLite file in a fresh temporary directory (not migrated).
    pub async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!("scrm-test-{}", Uuid::new_v4().simple()));
        let backend = Backend::Sqlite {
            path: dir.join("scrm.db"),
        };
        install_pii_key();
        let db = Database::connect_to(&backend, 1)
            .await
            .expect("open test SQLite file");
        Self {
            db,
            backend,
            cleanup: Cleanup::Sqlite { dir },
        }
    }

    /// Another fresh, empty store of the same backend.
    pub async fn another(&self) -> Self {
        match self.backend {
            Backend::Postgres { .. } => Self::postgres().await,
            Backend::Sqlite { .. } => Self::sqlite().await,
        }
    }

    /// A second, independent pool on the same storage (as another process would have).
    pub async fn another_connection(&self) -> Database {
        Database::connect_to(&self.backend, 4)
            .await
            .expect("connect")
    }

    /// Migrates and loads a tiny generated tenant for each `(tenant, fixture seed)`.
    pub async fn seed_tiny(&self, tenants: &[(&str, u64)]) {
        self.db.migrate().await.expect("migrate");
        for (t, seed) in tenants {
            server::seed::seed(
                &self.db,
                fixtures::Params::for_scale(fixtures::Scale::Tiny, ids::tenant(t), *seed),
                false,
                server::seed::Progress::Silent,
            )
            .await
            .expect("seed");
        }
    }

    /// The engine on this storage, migrated.
    pub async fn engine(&self) -> Engine {
        Engine::start(self.db.clone()).await.expect("migrate")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Citus { node_urls, name } => {
                // The coordinator first: it holds connections to the workers' copies.
                for url in node_urls {
                    drop_database(url.clone(), name.clone());
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                drop_database(admin_url.clone(), name.clone());
            }
        }
    }
}

fn drop_database(admin_url: String, name: String) {
    // Drop runs inside the test's runtime; a thread of its own with its own runtime can
    // still wait for the database to go. The pool is not closed first: that would wait on
    // the test's runtime, which is blocked here; `WITH (FORCE)` ends its sessions instead.
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            // A two-phase commit cut off mid-way (a server stopped by its test) leaves a
            // prepared transaction that would block the drop and hold back every other
            // test's reader on that node: it is rolled back, from inside its database.
            if let Ok(mut conn) = PgConnection::connect(&with_database(&admin_url, &name)).await {
                let gids: Vec<String> = sqlx::query_scalar(
                    "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
                for gid in gids {
                    let sql = format!("ROLLBACK PREPARED '{}'", gid.replace('\'', "''"));
                    let _ = conn.execute(sql.as_str()).await;
                }
                let _ = conn.close().await;
            }
            if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = conn.execute(sql.as_str()).await;
            }
        });
    })
    .join();
}

/// The admin URL of the local Citus cluster, starting it when no URL is given.
fn citus_admin_url() -> String {
    if let Ok(url) = std::env::var("SCRM_TEST_CITUS_URL") {
        return url;
    }
    static STARTED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STARTED
        .get_or_init(|| {
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/citus.sh");
            let out = std::process::Command::new("bash")
                .arg(&script)
                .output()
                .expect("run .ci/citus.sh");
            assert!(
                out.status.success(),
                "starting the Citus cluster failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .expect("citus.sh prints the URL")
                .to_string()
        })
        .clone()
}

/// `url` with another host and port.
fn node_url(url: &str, host: &str, port: i32) -> String {
    let (old_host, old_port) = host_port(url);
    url.replacen(
        &format!("{old_host}:{old_port}"),
        &format!("{host}:{port}"),
        1,
    )
}

fn host_port(url: &str) -> (String, i32) {
    let after_at = url.split_once('@').map_or(url, |(_, r)| r);
    let authority = after_at.split('/').next().unwrap_or_default();
    let (host, port) = authority.split_once(':').unwrap_or((authority, "5432"));
    (host.to_string(), port.parse().expect("port"))
}

/// The pool of a store the test made on PostgreSQL.
pub fn pg(db: &Database) -> &sqlx::PgPool {
    match db {
        Database::Postgres(pool) => pool,
        Database::Sqlite(_) => unreachable!("PostgreSQL only"),
    }
}

/// Runs one async test body against both backends, as two `#[tokio::test]`s; with
/// `citus;` first, against a Citus cluster too (a third, `citus`).
#[macro_export]
macro_rules! on_both_backends {
    (citus; $(#[$attr:meta])* async fn $name:ident($db:ident: TestDb) $body:block) => {
        $crate::on_both_backends! { @module $name, $db, $body,
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn citus() {
                body($crate::TestDb::citus().await).await;
            }
        }
    };
    ($(#[$attr:meta])* async fn $name:ident($db:ident: TestDb) $body:block) => {
        $crate::on_both_backends! { @module $name, $db, $body, }
    };
    (@module $name:ident, $db:ident, $body:block, $($more:item)*) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: $crate::TestDb) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                body($crate::TestDb::postgres().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body($crate::TestDb::sqlite().await).await;
            }

            $($more)*
        }
    };
}

/// Every row of every read-model table of `projection`, as text, in key order: what a
/// caught-up projection and a rebuild must agree on.
pub async fn read_models(
    db: &Database,
    projection: &projections::registry::Projection,
) -> std::collections::BTreeMap<&'static str, Vec<Vec<Option<String>>>> {
    use sqlx::Row;
    let mut out = std::collections::BTreeMap::new();
    for (table, _) in projection.tables {
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("CAST({} AS TEXT)", c.0))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            cols.join(", "),
            table.name,
            table.key.join(", ")
        );
        let rows: Vec<Vec<Option<String>>> = match db {
            Database::Postgres(pool) => sqlx::query(&sql)
                .fetch_all(pool)
                .await
                .expect("read model")
                .iter()
                .map(|r| {
                    (0..cols.len())
                        .map(|i| r.get::<Option<String>, _>(i))
                        .collect()
                })
                .collect(),
            Database::Sqlite(pool) => sqlx::query(&sql)
                .fetch_all(pool)
                .await
                .expect("read model")
                .iter()
                .map(|r| {
                    (0..cols.len())
                        .map(|i| r.get::<Option<String>, _>(i))
                        .collect()
                })
                .collect(),
        };
        out.insert(table.name, rows);
    }
    out
}

/// Replays one generated command through the engine's command service, as a live
/// request would arrive, and checks the store decided what the generator decided.
pub async fn replay(engine: &Engine, tenant: &domain::values::TenantId, e: fixtures::Emitted) {
    use engine::commands::{Actor, CommandMeta};
    use fixtures::AnyCommand;
    let meta = CommandMeta::new(
        tenant.clone(),
        Actor::from_stored(e.actor.clone()),
        e.request_id,
    );
    let id = e.aggregate_id.as_str();
    let outcome = match e.command.clone() {
        AnyCommand::Customer(c) => engine
            .customers
            .execute(id, c, &meta)
            .await
            .map_err(|x| x.to_string()),
        AnyCommand::Group(c) => engine
            .groups
            .execute(id, c, &meta)
            .await
            .map_err(|x| x.to_string()),
        AnyCommand::Staff(c) => engine
            .staff
            .execute(id, c, &meta)
            .await
            .map_err(|x| x.to_string()),
        AnyCommand::TagLibrary(c) => engine
            .tags
            .execute(id, c, &meta)
            .await
            .map_err(|x| x.to_string()),
    }
    .unwrap_or_else(|err| panic!("{id}: the store refused what the generator accepted: {err}"));
    assert_eq!(outcome.appended, e.event_count(), "{id}");
    assert_eq!(
        outcome.version,
        e.first_sequence + e.event_count() - 1,
        "{id}"
    );
}
