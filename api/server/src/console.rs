//! The operations console at `/console` (issue 21, docs/adr/0023-console-vanilla-js.md):
//! pages for departures and handovers, the funnel and coupon redemption, campaign
//! results, the WeCom inbox and the projections, written against the engine's own
//! GraphQL API.
//!
//! The page, its one script and its one stylesheet are plain files under
//! `api/server/assets/console/`, embedded with `include_bytes!`: no build step, no
//! package to install, nothing fetched from another host, so it works on a machine with
//! no route to the internet. The script signs in with a token or an API key the user
//! pastes (kept in `sessionStorage`, sent as `Authorization`, never in a URL) and
//! shows only the pages and buttons the caller's role may use; the API decides all the
//! same.
//!
//! The Content-Security-Policy allows scripts, styles and connections of this origin
//! only (`connect-src 'self'` covers the `ws:`/`wss:` socket of the same host under CSP
//! level 3), no inline script or style, no framing. No CORS header is added here: the
//! console is same-origin, and the `/graphql` routes keep their own (empty by default)
//! list of allowed origins.

#![forbid(unsafe_code)]

use std::hash::{DefaultHasher, Hasher};

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Where the page lives; its files are under `{PATH}/assets/`.
pub const PATH: &str = "/console";

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const HTML: &[u8] = include_bytes!("../assets/console/index.html");

/// A file the page loads, by the name the page's template refers to it with.
struct File {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: &[File] = &[
    File {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/console/console.js"),
    },
    File {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/console/console.css"),
    },
];

/// Headers every console response carries.
const COMMON: [(HeaderName, &str); 3] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

/// The console at `GET /console`, its files at `GET /console/assets/{file}`, talking to
/// `endpoint` over HTTP and `socket` over WebSocket (same-origin paths).
pub fn router(endpoint: &'static str, socket: &'static str) -> Router {
    let page = Bytes::from(page(endpoint, socket));
    Router::new()
        .route(
            PATH,
            get(move || {
                let page = page.clone();
                async move {
                    (
                        COMMON,
                        [
                            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                            // The page names the files by hash: it must be revalidated.
                            (header::CACHE_CONTROL, "no-cache"),
                            (header::CONTENT_SECURITY_POLICY, CSP),
                        ],
                        page,
                    )
                        .into_response()
                }
            }),
        )
        .route(&format!("{PATH}/assets/{{file}}"), get(file))
}

async fn file(Path(name): Path<String>) -> Response {
    let Some(f) = FILES.iter().find(|f| f.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        COMMON,
        [
            (header::CONTENT_TYPE, f.content_type),
            // Linked by content hash: a new build links new URLs.
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        f.bytes,
    )
        .into_response()
}

/// The page with its `{{name}}` placeholders filled: each file's URL with its content
/// hash, and the two endpoints (attribute-escaped).
fn page(endpoint: &str, socket: &str) -> String {
    let mut html = String::from_utf8_lossy(HTML).into_owned();
    for f in FILES {
        let mut h = DefaultHasher::new();
        h.write(f.bytes);
        let url = format!("{PATH}/assets/{}?v={:016x}", f.name, h.finish());
        html = html.replace(&format!("{{{{{}}}}}", f.name), &url);
    }
    html.replace("{{endpoint}}", &attr(endpoint))
        .replace("{{socket}}", &attr(socket))
}

fn attr(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_its_files_by_hash_and_names_no_other_host() {
        let html = page("/graphql", "/graphql/ws");
        assert!(!html.contains("{{"), "unfilled placeholder: {html}");
        for f in FILES {
            assert!(html.contains(&format!("/console/assets/{}?v=", f.name)));
            // The SVG namespace is a name, not an address anything is fetched from.
            let text = std::str::from_utf8(f.bytes)
                .unwrap()
                .replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{}",
                f.name
            );
        }
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(html.contains(r#"data-endpoint="/graphql""#));
    }

    #[test]
    fn page_has_no_inline_script_or_style() {
        let html = page("/graphql", "/graphql/ws");
        assert_eq!(html.matches("<script").count(), 1, "{html}");
        assert!(html.contains("<script src=\"/console/assets/console.js?v="));
        assert!(!html.contains("<style") && !html.contains("style="));
        for handler in ["onclick=", "onload=", "onsubmit=", "onerror="] {
            assert!(!html.contains(handler), "inline event handler {handler}");
        }
    }

    #[test]
    fn endpoints_are_escaped() {
        assert!(page("/q\"><x", "/ws").contains("/q&quot;&gt;&lt;x"));
    }

    #[tokio::test]
    async fn unknown_file_is_404_and_known_one_typed() {
        assert_eq!(
            file(Path("index.html".into())).await.status(),
            StatusCode::NOT_FOUND
        );
        let res = file(Path("console.js".into())).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
    }
}
