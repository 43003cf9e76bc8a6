//! Top-level GraphQL errors: a short allow-list of codes clients may see. Anything else
//! (a database error, a bug) is logged with the request id and reaches the client as
//! "Internal error" with that id, never with its text.

use async_graphql::ErrorExtensions;

use crate::user_error::UserError;
use engine::reads::ReadError;

/// The `extensions.code` values that pass through to clients.
pub const PUBLIC_CODES: &[&str] = &[
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "TIMEOUT",
    "RATE_LIMITED",
    "INTERNAL",
    "WECOM_NOT_CONFIGURED",
    "WECOM_UNAVAILABLE",
];

/// A request-level failure of a resolver. Cloneable, as async-graphql wants of a
/// resolver's error type.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthenticated,
    #[error("not allowed for this caller")]
    Forbidden,
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Rate limit exceeded; retry in {} s", .0.as_secs_f64().ceil())]
    RateLimited(std::time::Duration),
    /// A read that asks WeCom, for a tenant with no WeCom API configured.
    #[error("the tenant has no WeCom API configured")]
    WecomNotConfigured,
    /// WeCom did not answer a read asked of it (busy, unreachable, an errcode).
    #[error("WeCom did not answer: {0}")]
    WecomUnavailable(String),
    /// A read ran past its deadline (PostgreSQL's statement timeout on the reader's
    /// connection), e.g. an analyst's funnel over a very large tenant.
    #[error("the read took longer than its deadline of {0} s: narrow it or retry later")]
    ReadTimeout(u64),
    /// A failure the client cannot correct; its cause is logged, never shown.
    #[error("Internal error")]
    Internal(#[source] Cause),
}

/// What a resolver answers: its value or a request-level failure. async-graphql turns
/// the error into a GraphQL error with its code.
pub type ApiResult<T> = Result<T, ApiError>;

/// What went wrong inside, kept with its own sources for the log.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

impl ApiError {
    /// An internal failure caused by `error`.
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(error.into().into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::BadInput(_) => "BAD_USER_INPUT",
            Self::NotFound(_) => "NOT_FOUND",
            Self::RateLimited(_) => "RATE_LIMITED",
            Self::WecomNotConfigured => "WECOM_NOT_CONFIGURED",
            Self::WecomUnavailable(_) => "WECOM_UNAVAILABLE",
            Self::ReadTimeout(_) => "TIMEOUT",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        if let ApiError::Internal(cause) = &error {
            tracing::error!(error = %chain(cause.as_ref()), "resolver failed");
        }
        let code = error.code();
        let retry = match &error {
            ApiError::RateLimited(wait) => Some(wait.as_secs_f64().ceil() as u64),
            _ => None,
        };
        async_graphql::Error::new(error.to_string()).extend_with(|_, e| {
            e.set("code", code);
            if let Some(seconds) = retry {
                e.set("retryAfterSeconds", seconds);
            }
        })
    }
}

/// An error and its sources, as one line for the log: `outer: inner: innermost`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(error: $t) -> Self {
                Self::internal(error)
            }
        }
    )*};
}
impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        // 57014: query_canceled, which is what statement_timeout raises.
        match &error {
            ReadError::Db(sqlx::Error::Database(e)) if e.code().as_deref() == Some("57014") => {
                Self::ReadTimeout(engine::reads::READ_DEADLINE_SECONDS)
            }
            _ => Self::internal(error),
        }
    }
}

internal_from!(sqlx::Error, serde_json::Error, projections::ProjectionError);

/// Why a resolver gave no answer of its own: a rejection the client can correct (it
/// becomes the payload's `userErrors`) or a request-level failure. Every fallible step
/// of a mutation `?`s into it.
#[derive(Debug)]
pub enum Refusal {
    User(UserError),
    Api(ApiError),
}

impl From<UserError> for Refusal {
    fn from(error: UserError) -> Self {
        Self::User(error)
    }
}

impl<E: Into<ApiError>> From<E> for Refusal {
    fn from(error: E) -> Self {
        Self::Api(error.into())
    }
}

/// Replaces every error whose code is not public by "Internal error" plus the request
/// id, logging what it hid.
pub fn mask(response: &mut async_graphql::Response, request_id: &str) {
    for error in &mut response.errors {
        let code = error
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .and_then(|v| match v {
                async_graphql::Value::String(s) => Some(s.clone()),
                async_graphql::Value::Enum(s) => Some(s.to_string()),
                _ => None,
            });
        if code.is_none() && (error.path.is_empty() || is_input_error(&error.message)) {
            // A document that did not parse or validate, or a value that did not fit its
            // argument's type: the client's mistake, said so.
            tracing::warn!(request_id, error = %error.message, "input refused");
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", "BAD_USER_INPUT");
            continue;
        }
        let public = code.as_deref().is_some_and(|c| PUBLIC_CODES.contains(&c));
        // Errors without a path come from parsing and validation: they describe the
        // client's document, not the server.
        if public || error.path.is_empty() {
            if code.as_deref() == Some("INTERNAL") {
                set_request_id(error, request_id);
            }
            continue;
        }
        tracing::error!(request_id, error = %error.message, "masked an internal error");
        error.message = "Internal error".to_string();
        error.extensions = None;
        set_request_id(error, request_id);
        if let Some(ext) = error.extensions.as_mut() {
            ext.set("code", "INTERNAL");
        }
    }
}

/// async-graphql's words for an argument or variable that did not coerce to its input
/// type (a bad DateTime, an Int past 2^31), or a required variable not sent. They reach the
/// resolver's path without a code, so they would otherwise be masked as internal.
fn is_input_error(message: &str) -> bool {
    message.starts_with("Failed to parse \"")
        || message.starts_with("Invalid value for argument")
        || message.starts_with("Expected input type \"")
        || message.contains("(occurred while parsing \"")
        || (message.starts_with("Variable ") && message.ends_with(" is not defined."))
}

fn set_request_id(error: &mut async_graphql::ServerError, request_id: &str) {
    let ext = error.extensions.get_or_insert_with(Default::default);
    ext.set("requestId", request_id);
}
