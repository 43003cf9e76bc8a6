//! `POST /graphql` over HTTP, with what stock async-graphql + axum leave out: JSON only
//! (415 before anything runs), no batching, a body cap, a deadline, GraphQL-over-HTTP
//! content negotiation, authentication from the `Authorization` header only, error
//! masking and one log line per request without variable values.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use serde_json::json;
use tracing::Instrument;
use uuid::Uuid;

use crate::metrics::{Metrics, Outcome};
use engine::auth::{AuthError, Authenticator};
use graphql::gate::Gate;
use graphql::rate_limit::RateLimiter;
use graphql::{self, RequestId, RequestStats, ScrmSchema};

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub use graphql::MAX_QUERY_BYTES;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const JSON: &str = "application/json";
const GRAPHQL_JSON: &str = "application/graphql-response+json";

#[allow(missing_debug_implementations)]
pub struct GraphqlHttp {
    pub gate: Arc<Gate>,
    /// The socket's schema, behind the same gate (`graphql::gate`).
    pub schema: ScrmSchema,
    pub auth: Authenticator,
    pub metrics: Arc<Metrics>,
    pub timeout: Duration,
    pub limits: Arc<RateLimiter>,
}

fn internal() -> async_graphql::ServerError {
    let mut error = async_graphql::ServerError::new("Internal error", None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", "INTERNAL");
    error.extensions = Some(ext);
    error
}

/// 429 with the GraphQL error a client can act on and a `Retry-After` header.
fn too_many(wait: Duration, content_type: &'static str) -> Response {
    let error = graphql::rate_limited(wait);
    let body = json!({ "errors": [error] });
    let mut reply = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.to_string(),
    )
        .into_response();
    reply
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_after(wait));
    reply
}

fn retry_after(wait: Duration) -> HeaderValue {
    HeaderValue::from(wait.as_secs_f64().ceil().max(1.0) as u64)
}

fn refuse(status: StatusCode, message: &str, content_type: &'static str) -> Response {
    let body = json!({ "errors": [{ "message": message }] });
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.to_string(),
    )
        .into_response()
}

/// The media type to answer with, or `None` when the client accepts neither.
fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(JSON);
    };
    let types: Vec<String> = accept
        .split(',')
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    if types.iter().any(|t| t == GRAPHQL_JSON) {
        Some(GRAPHQL_JSON)
    } else if types
        .iter()
        .any(|t| t == JSON || t == "*/*" || t == "application/*" || t.is_empty())
    {
        Some(JSON)
    } else {
        None
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(JSON))
}

pub async fn handle(
    State(http): State<Arc<GraphqlHttp>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let request_id = Uuid::new_v4();
    let Some(answer_as) = negotiate(&headers) else {
        http.metrics.record(Outcome::Refused, started.elapsed());
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must allow application/json or application/graphql-response+json",
            JSON,
        );
    };
    if !is_json(&headers) {
        http.metrics.record(Outcome::Refused, started.elapsed());
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
            answer_as,
        );
    }
    // One operation per request: a JSON array (a batch) does not parse as a request.
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            http.metrics.record(Outcome::Refused, started.elapsed());
            return refuse(
                StatusCode::BAD_REQUEST,
                "The body must be one JSON object with a string `query`",
                answer_as,
            );
        }
    };
    if request.query.len() > MAX_QUERY_BYTES {
        http.metrics.record(Outcome::Refused, started.elapsed());
        return refuse(StatusCode::BAD_REQUEST, "The query is too long", answer_as);
    }
    let operation = request.operation_name.clone().unwrap_or_default();
    let request = request.data(RequestId(request_id));
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match http.auth.authenticate(authorization).await {
        Ok(caller) => Some(caller),
        Err(AuthError::Missing) => None,
        Err(error) => {
            tracing::warn!(%request_id, %error, "authentication failed");
            None
        }
    };
    // Callers are limited by who they are; requests without valid credentials by where
    // they come from, which slows token guessing without touching anyone else.
    let limited = match &caller {
        Some(c) => {
            http.limits
                .callers
                .check(&(c.tenant.to_string(), c.subject.clone()), 1.0, started)
        }
        None => http.limits.anonymous.check(&peer.ip(), 1.0, started),
    };
    if let Err(wait) = limited {
        http.metrics.record(Outcome::Refused, started.elapsed());
        tracing::warn!(%request_id, peer = %peer.ip(), "rate limited");
        return too_many(wait, answer_as);
    }
    let (tenant, subject, role) = caller
        .as_ref()
        .map_or((String::new(), String::new(), ""), |c| {
            (c.tenant.to_string(), c.subject.clone(), c.role.as_str())
        });
    let stats = RequestStats::default();
    // One span per request, so whatever a resolver logs carries the request id. Not
    // async-graphql's `Tracing` extension: its `parse` span renders the document with the
    // variables inlined (personal data in logs), and it costs a span per field.
    let span = tracing::info_span!("graphql", %request_id);
    // A panic inside async-graphql or a resolver (the fuzz target found one in
    // validation) is answered as an internal error instead of a dropped connection.
    // Its reads, introspection, budget and share of the pool follow from the caller
    // (`graphql::gate`), as for a socket's requests.
    let execution = std::panic::AssertUnwindSafe(
        http.gate
            .execute(request, caller.as_ref(), &http.limits, &stats)
            .instrument(span),
    )
    .catch_unwind();
    let executed = tokio::time::timeout(http.timeout, execution).await;
    let (mut response, outcome) = match executed {
        Ok(Ok(response)) if response.errors.is_empty() => (response, Outcome::Ok),
        Ok(Ok(response)) => (response, Outcome::Errors),
        Ok(Err(_)) => {
            tracing::error!(%request_id, "the request panicked");
            (
                async_graphql::Response::from_errors(vec![internal()]),
                Outcome::Errors,
            )
        }
        Err(_) => {
            let mut error = async_graphql::ServerError::new("The request took too long", None);
            let mut ext = async_graphql::ErrorExtensionValues::default();
            ext.set("code", "TIMEOUT");
            error.extensions = Some(ext);
            (
                async_graphql::Response::from_errors(vec![error]),
                Outcome::Timeout,
            )
        }
    };
    graphql::mask(&mut response, &request_id.to_string());
    let codes: Vec<String> = response
        .errors
        .iter()
        .filter_map(|e| e.extensions.as_ref()?.get("code").map(|c| c.to_string()))
        .collect();
    let took = started.elapsed();
    http.metrics.record(outcome, took);
    tracing::info!(
        %request_id,
        operation = %operation,
        tenant = %tenant,
        caller = %subject,
        role,
        complexity = stats.complexity.load(Ordering::Relaxed),
        duration_ms = took.as_secs_f64() * 1e3,
        errors = response.errors.len(),
        codes = ?codes,
        "graphql"
    );
    // A request error (nothing executed) is a 400 in the GraphQL-over-HTTP media type;
    // with plain JSON every well-formed request gets 200.
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let retry = response.errors.iter().find_map(|e| {
        let ext = e.extensions.as_ref()?;
        match ext.get("code")? {
            async_graphql::Value::String(code) if code == "RATE_LIMITED" => {
                match ext.get("retryAfterSeconds") {
                    Some(async_graphql::Value::Number(n)) => n.as_u64(),
                    _ => Some(1),
                }
            }
            _ => None,
        }
    });
    let status = if retry.is_some() {
        StatusCode::TOO_MANY_REQUESTS
    } else if answer_as == GRAPHQL_JSON && request_error && outcome != Outcome::Timeout {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = if request_error {
        // Nothing executed, so there is no `data` entry at all (GraphQL over HTTP).
        serde_json::to_vec(&json!({ "errors": response.errors }))
    } else {
        serde_json::to_vec(&response)
    }
    .unwrap_or_else(|_| b"{}".to_vec());
    let mut reply = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(answer_as))],
        body,
    )
        .into_response();
    if let Some(seconds) = retry {
        reply.headers_mut().insert(
            header::RETRY_AFTER,
            retry_after(Duration::from_secs(seconds)),
        );
    }
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        reply.headers_mut().insert("x-request-id", value);
    }
    reply
}
