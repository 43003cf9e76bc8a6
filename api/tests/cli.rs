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
