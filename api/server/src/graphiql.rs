//! GraphiQL, served from inside the binary.
//!
//! The usual way to ship GraphiQL is an HTML page that pulls React and GraphiQL from a
//! public CDN. scrm runs on machines with no route to the internet, where such a page
//! stays blank, so the minified bundles are embedded with `include_bytes!` from
//! `api/assets/graphiql/` (see the README there for where they come from and how to
//! refresh them) and the page names nothing but this server. The Content-Security-Policy
//! on the page makes the browser hold to that too: a later edit that slips a CDN URL in
//! breaks on every machine at once, instead of working only where the CDN is reachable.
//!
//! The endpoint given to [`router`] must be on the same origin as the page (a path such
//! as `/graphql`), as the policy only lets the page talk to its own origin.

#![forbid(unsafe_code)]

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every asset URL carries a content hash, so a browser may keep the bytes for good: a
/// new build with other bundles produces other URLs.
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

/// The page itself must be revalidated, or a browser would keep asking for the hashed
/// URLs of a build that is gone.
const PAGE_CACHE: &str = "no-cache";

/// `'unsafe-inline'` for styles only: the page has a `<style>` of its own, and the
/// bundle's react-remove-scroll inserts `<style>` elements when a dialog opens. Scripts
/// stay limited to files of this origin.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Kept in a file of its own rather than inline in the page, so that the policy above can
/// forbid inline scripts. The endpoint comes from a `data-` attribute for the same reason.
const INIT_JS: &str = r##"(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var endpoint = root.getAttribute("data-endpoint");

  // A fetcher of our own instead of GraphiQL.createFetcher: that one is built around
  // websocket and multipart options this server has no use for, and on a non-JSON body
  // (a proxy's 502, a plain-text 401) it shows only a JSON parse error, not the body.
  function fetcher(params, opts) {
    // GraphiQL hands over what the user typed in the Headers editor; Headers() makes a
    // user's "content-type" and ours one header instead of two.
    var headers = new Headers((opts && opts.headers) || {});
    headers.set("Content-Type", "application/json");
    if (!headers.has("Accept")) {
      headers.set("Accept", "application/json");
    }
    return fetch(endpoint, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(params),
      credentials: "same-origin"
    }).then(function (res) {
      return res.text().then(function (text) {
        try {
          return JSON.parse(text);
        } catch (e) {
          return { errors: [{ message: "HTTP " + res.status + " " + res.statusText + ": " + text }] };
        }
      });
    });
  }

  var defaultQuery =
    "# Sent as JSON to " + endpoint + ".\n" +
    "# To authenticate, add in Headers below:\n" +
    "#   { \"Authorization\": \"Bearer <token>\" }\n" +
    "# Headers are not saved in this browser.\n" +
    "\n" +
    "{\n  __typename\n}\n";

  // GraphiQL 3 writes the headers of every run into its history and favourites in
  // localStorage whatever shouldPersistHeaders says, which would leave bearer tokens
  // behind on a shared machine. Blank them on the way in; a history entry picked later
  // then comes back without headers, and the user types the token again.
  var scrubbed = /^graphiql:(queries|favorites|tabState)$/;
  function scrubHeaders(value) {
    try {
      return JSON.stringify(JSON.parse(value), function (key, v) {
        return key === "headers" ? "" : v;
      });
    } catch (e) {
      return value;
    }
  }
  function ownKeys() {
    return Object.keys(localStorage).filter(function (k) {
      return k.indexOf("graphiql:") === 0;
    });
  }
  var storage = {
    getItem: function (key) {
      return localStorage.getItem(key);
    },
    setItem: function (key, value) {
      localStorage.setItem(key, scrubbed.test(key) ? scrubHeaders(value) : value);
    },
    removeItem: function (key) {
      localStorage.removeItem(key);
    },
    clear: function () {
      ownKeys().forEach(function (k) {
        localStorage.removeItem(k);
      });
    },
    get length() {
      return ownKeys().length;
    }
  };

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      storage: storage,
      defaultQuery: defaultQuery,
      isHeadersEditorEnabled: true,
      // Also hides GraphiQL's "persist headers" setting: a token in localStorage would
      // outlive the session and be readable by any script on this origin.
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: "headers"
    })
  );
})();
"##;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// Listed in the order the page must load them: GraphiQL's UMD bundle expects the
/// `React` and `ReactDOM` globals, and the init script all three.
const ASSETS: &[Asset] = &[
    Asset {
        name: "graphiql.min.css",
        content_type: CSS,
        bytes: include_bytes!("../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "init.js",
        content_type: JS,
        bytes: INIT_JS.as_bytes(),
    },
];

/// GraphiQL at `GET /graphiql`, its files under `GET /graphiql/assets/{file}`, talking
/// to `endpoint` (a same-origin path such as `/graphql`).
pub fn router(endpoint: &'static str) -> Router {
    let page = Bytes::from(page(endpoint));
    Router::new()
        .route(
            "/graphiql",
            get(move || {
                let page = page.clone();
                async move { page_response(page) }
            }),
        )
        .route("/graphiql/assets/{file}", get(asset))
}

fn page_response(page: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, PAGE_CACHE),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, ASSET_CACHE),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            a.bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn page(endpoint: &str) -> String {
    let mut styles = String::new();
    let mut scripts = String::new();
    for a in ASSETS {
        let url = format!("/graphiql/assets/{}?v={}", a.name, fingerprint(a.bytes));
        if a.content_type == CSS {
            styles.push_str(&format!("<link rel=\"stylesheet\" href=\"{url}\">\n"));
        } else {
            scripts.push_str(&format!("<script src=\"{url}\"></script>\n"));
        }
    }
    let endpoint = escape_attr(endpoint);
    // The empty data: icon keeps browsers from asking for a /favicon.ico nobody serves.
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL</title>
<link rel="icon" href="data:,">
{styles}<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql" data-endpoint="{endpoint}">Loading GraphiQL&hellip;</div>
<noscript>GraphiQL needs JavaScript.</noscript>
{scripts}</body>
</html>
"#
    )
}

/// FNV-1a: only a cache key, computed once per router, so speed and no dependency
/// matter more than collision resistance.
fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_names_no_other_host() {
        let html = page("/graphql");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{html}"
        );
        assert!(!INIT_JS.contains("http://") && !INIT_JS.contains("https://"));
        assert!(html.contains(r#"data-endpoint="/graphql""#));
    }

    #[test]
    fn page_links_only_served_assets() {
        let html = page("/graphql");
        let linked: Vec<&str> = html
            .split("/graphiql/assets/")
            .skip(1)
            .map(|rest| rest.split('?').next().unwrap())
            .collect();
        assert_eq!(linked.len(), ASSETS.len());
        for name in linked {
            assert!(ASSETS.iter().any(|a| a.name == name), "{name}");
        }
    }

    #[test]
    fn endpoint_is_escaped() {
        assert!(page("/q\"><script>").contains("/q&quot;&gt;&lt;script&gt;"));
    }

    #[tokio::test]
    async fn unknown_asset_is_404() {
        let res = asset(Path("LICENSE.react".to_owned())).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn asset_has_type_and_long_cache() {
        let res = asset(Path("graphiql.min.js".to_owned())).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], JS);
        assert_eq!(res.headers()[header::CACHE_CONTROL], ASSET_CACHE);
    }
}
