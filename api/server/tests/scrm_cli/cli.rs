//! The `scrm` binary as a person at a console meets it: clear one-line errors, no panics.

use std::process::{Command, Output};

fn scrm(args: &[&str], database_url: &str, cwd: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scrm"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "error")
        .current_dir(cwd)
        .output()
        .expect("run scrm")
}

fn stderr_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!text.contains("panicked"), "scrm panicked: {text}");
    assert_eq!(text.lines().count(), 1, "one line expected, got: {text}");
    text
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("scrm-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn migrate_without_a_database_url_creates_the_embedded_store() {
    let dir = temp_dir();
    let out = scrm(&["migrate"], "", &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join(".scrm/scrm.db").exists());
    // A second run finds nothing to do and still succeeds.
    assert!(scrm(&["migrate"], "", &dir).status.success());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn an_unknown_scheme_is_a_one_line_error() {
    let out = scrm(
        &["migrate"],
        "mysql://root:hunter2@localhost/scrm",
        &temp_dir(),
    );
    assert_eq!(out.status.code(), Some(1));
    let line = stderr_line(&out);
    assert!(line.starts_with("error: invalid DATABASE_URL"), "{line}");
    assert!(!line.contains("hunter2"), "password leaked: {line}");
}

#[test]
fn an_unreachable_server_is_a_one_line_error_without_the_password() {
    let out = scrm(
        &["migrate"],
        "postgres://scrm:hunter2@127.0.0.1:1/scrm",
        &temp_dir(),
    );
    assert_eq!(out.status.code(), Some(1));
    let line = stderr_line(&out);
    assert!(
        line.starts_with("error: cannot connect to postgres://scrm:***@127.0.0.1:1/scrm"),
        "{line}"
    );
    assert!(!line.contains("hunter2"));
}

#[test]
fn a_sqlite_path_that_cannot_be_created_is_a_one_line_error() {
    let out = scrm(&["migrate"], "sqlite:///proc/scrm/x.db", &temp_dir());
    assert_eq!(out.status.code(), Some(1));
    let line = stderr_line(&out);
    assert!(
        line.starts_with("error: cannot open the SQLite file /proc/scrm/x.db"),
        "{line}"
    );
}

#[test]
fn wecom_configure_stores_the_callback_and_never_prints_a_secret() {
    let dir = temp_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_scrm"))
        .args([
            "wecom",
            "configure",
            "--tenant",
            "acme",
            "--corp-id",
            "ww5823bf96d3bd56c7",
            "--api-base-url",
            "http://127.0.0.1:9",
        ])
        .env("DATABASE_URL", "")
        .env("RUST_LOG", "debug")
        .env("SCRM_WECOM_TOKEN", "QDG6eK")
        .env(
            "SCRM_WECOM_ENCODING_AES_KEY",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        )
        .env("SCRM_WECOM_CORP_SECRET", "s3cr3t-corp-secret-value")
        .current_dir(&dir)
        .output()
        .expect("run scrm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("API reads on"), "{stdout}");
    for secret in ["s3cr3t-corp-secret-value", "QDG6eK", "jWmYm7qr5nMoAUwZ"] {
        assert!(!stdout.contains(secret), "{secret} printed: {stdout}");
        assert!(!stderr.contains(secret), "{secret} logged: {stderr}");
    }
    let stored = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("sqlite://{}", dir.join(".scrm/scrm.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let row: (String, String, Option<String>, Option<String>) = sqlx::query_as(
            "SELECT receive_id, corp_id, corp_secret, api_base_url FROM wecom_callback_config \
             WHERE tenant_id = 'acme'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        row
    });
    assert_eq!(
        stored,
        (
            "ww5823bf96d3bd56c7".to_string(),
            "ww5823bf96d3bd56c7".to_string(),
            Some("s3cr3t-corp-secret-value".to_string()),
            Some("http://127.0.0.1:9".to_string())
        )
    );

    // A key that is not one is refused in one line, and nothing secret is echoed.
    let bad = Command::new(env!("CARGO_BIN_EXE_scrm"))
        .args(["wecom", "configure", "--tenant", "acme", "--corp-id", "ww1"])
        .env("DATABASE_URL", "")
        .env("RUST_LOG", "error")
        .env("SCRM_WECOM_TOKEN", "QDG6eK")
        .env("SCRM_WECOM_ENCODING_AES_KEY", "short")
        .env("SCRM_WECOM_CORP_SECRET", "s3cr3t-corp-secret-value")
        .current_dir(&dir)
        .output()
        .expect("run scrm");
    assert_eq!(bad.status.code(), Some(1));
    let line = stderr_line(&bad);
    assert!(!line.contains("s3cr3t"), "{line}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn only_a_registered_active_tenant_gets_an_api_key() {
    let dir = temp_dir();
    let stdout = |out: &Output| String::from_utf8_lossy(&out.stdout).trim().to_string();
    let key = |tenant: &str| scrm(&["api-key", "--tenant", tenant, "--name", "crm"], "", &dir);

    let refused = key("acme");
    assert!(!refused.status.success());
    assert!(stderr_line(&refused).contains("not registered"));

    let created = scrm(
        &["tenant", "create", "--tenant", "acme", "--name", "周大福"],
        "",
        &dir,
    );
    assert!(created.status.success(), "{}", stderr_line(&created));
    assert_eq!(stdout(&created), "registered tenant acme");
    let again = scrm(
        &["tenant", "create", "--tenant", "acme", "--name", "x"],
        "",
        &dir,
    );
    assert_eq!(stdout(&again), "tenant acme exists; left as it was");

    let issued = key("acme");
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    assert!(stdout(&issued).starts_with("sk."), "{}", stdout(&issued));

    let disabled = scrm(&["tenant", "disable", "--tenant", "acme"], "", &dir);
    assert_eq!(stdout(&disabled), "tenant acme disabled");
    assert!(!key("acme").status.success());
    let enabled = scrm(&["tenant", "enable", "--tenant", "acme"], "", &dir);
    assert_eq!(stdout(&enabled), "tenant acme enabled");
    assert!(key("acme").status.success());

    let ghost = scrm(&["tenant", "disable", "--tenant", "ghost"], "", &dir);
    assert!(!ghost.status.success());
    assert!(stderr_line(&ghost).contains("no tenant ghost"));
    std::fs::remove_dir_all(dir).ok();
}

/// Each tenant's stored language, read straight from the store at `url`.
fn stored_locales(url: &str) -> Vec<(String, String)> {
    const SQL: &str = "SELECT tenant_id, locale FROM tenants ORDER BY tenant_id";
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        if url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        } else {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    })
}

/// `scrm tenant create` with and without `--locale`, and with one the engine does not
/// speak, against the store at `url`.
fn tenant_create_stores_the_language(url: &str) {
    let dir = temp_dir();
    let create = |tenant: &str, locale: Option<&str>| {
        let mut args = vec!["tenant", "create", "--tenant", tenant, "--name", "周大福"];
        args.extend(locale.map(|l| ["--locale", l]).into_iter().flatten());
        scrm(&args, url, &dir)
    };
    let plain = create("acme", None);
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let english = create("globex", Some("en"));
    assert!(
        english.status.success(),
        "{}",
        String::from_utf8_lossy(&english.stderr)
    );
    let chinese = create("beta", Some("zh-CN"));
    assert!(
        chinese.status.success(),
        "{}",
        String::from_utf8_lossy(&chinese.stderr)
    );
    for refused in ["fr", "EN", "zh_CN"] {
        let out = create("other", Some(refused));
        assert_eq!(out.status.code(), Some(2), "--locale {refused:?}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!text.contains("panicked"), "{text}");
        assert!(
            text.starts_with(&format!("error: invalid value '{refused}' for '--locale")),
            "{text}"
        );
        assert!(text.contains("[possible values: zh-CN, en]"), "{text}");
    }
    let row = |t: &str, l: &str| (t.to_string(), l.to_string());
    assert_eq!(
        stored_locales(url),
        vec![
            row("acme", "zh-CN"),
            row("beta", "zh-CN"),
            row("globex", "en")
        ],
        "nothing registered for a refused language"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn tenant_create_sets_the_language_on_sqlite_and_refuses_others() {
    let dir = temp_dir();
    tenant_create_stores_the_language(&format!("sqlite://{}", dir.join("t.db").display()));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn tenant_create_sets_the_language_on_postgres_and_refuses_others() {
    let server = std::env::var("SCRM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let name = format!("scrm_cli_{}", uuid::Uuid::new_v4().simple());
    let (base, _) = server
        .rsplit_once('/')
        .expect("a database in SCRM_TEST_PG_URL");
    let url = format!("{base}/{name}");
    let admin = |sql: String| {
        let server = server.clone();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let pool = sqlx::PgPool::connect(&server).await.unwrap();
                sqlx::query(&sql).execute(&pool).await.unwrap();
                pool.close().await;
            });
    };
    admin(format!("CREATE DATABASE {name}"));
    tenant_create_stores_the_language(&url);
    admin(format!("DROP DATABASE {name} WITH (FORCE)"));
}
