//! Helpers shared by the modules of this binary.

use std::path::{Path, PathBuf};

use wecom::CallbackKeys;

/// The callback token, EncodingAESKey and receive id the round trips and properties use.
pub const TOKEN: &str = "QDG6eK";
pub const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
pub const CORP: &str = "wx5823bf96d3bd56c7";

pub fn keys() -> CallbackKeys {
    CallbackKeys::new(TOKEN, KEY, CORP).unwrap()
}

/// The documentation's payloads and vectors, vendored from `../shared/wecom` into
/// `fixtures/wecom` so a clean clone tests them; `$WECOM_SHARED_DIR` points elsewhere.
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WECOM_SHARED_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/wecom")
}

/// This crate's own payloads: the event types the documentation's set lacks, JSON and
/// third-party envelopes, and broken bodies in `invalid/`. scrm-tests' `wecom` binary
/// sends them to the endpoint too.
pub fn payload_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("payloads")
}

/// Sorted file names (not paths) of the regular files in `dir`.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The text of `<tag>` in `xml`, CDATA unwrapped and trimmed, found by plain string search: an
/// oracle independent of the parser under test.
pub fn tag_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    let inner = xml[start..end].trim();
    let inner = inner
        .strip_prefix("<![CDATA[")
        .and_then(|s| s.strip_suffix("]]>"))
        .unwrap_or(inner);
    Some(inner.trim().to_owned())
}

/// The `<Item>` texts inside `<tag>`.
pub fn items(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let Some(start) = xml.find(&open) else {
        return Vec::new();
    };
    let start = start + open.len();
    let end = start + xml[start..].find(&close).unwrap();
    let mut out = Vec::new();
    let mut rest = &xml[start..end];
    while let Some(text) = tag_text(rest, "Item") {
        out.push(text);
        let next = rest.find("</Item>").unwrap() + "</Item>".len();
        rest = &rest[next..];
    }
    out
}
