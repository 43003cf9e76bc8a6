//! `GET|POST /wecom/callback/{tenant}`: WeCom's callback endpoint.
//!
//! Not behind the API's authentication: WeCom signs every request with the tenant's
//! token (`msg_signature`), and that signature is the authentication the protocol
//! defines. A POST is checked (signature, then decryption and receive id, then parse),
//! stored in the inbox, and only then answered `success`; the commands it maps to run
//! after the reply ([`wecom::process`]). Anything rejected is logged and writes nothing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use domain::values::TenantId;
use tower_http::limit::RequestBodyLimitLayer;

use engine::app::Engine;
use engine::clock::Clock;

use wecom::client::WecomApi;
use wecom::crypto::{outer_encrypt, percent_decode, CryptoError};
use wecom::inbox::{self, CallbackConfig, InboxError, Status};
use wecom::intake::Intake;
use wecom::notice::ParseError;
use wecom::process::process_pending;

/// WeCom's notices are a few hundred bytes; a generous cap still keeps an
/// unauthenticated sender from making the server buffer much before the signature check.
pub const MAX_CALLBACK_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct Callbacks {
    engine: Arc<Engine>,
    api: WecomApi,
    clock: Clock,
}

/// The endpoint's routes, to merge into the server's router.
pub fn router(engine: Arc<Engine>, api: WecomApi, clock: Clock) -> Router {
    Router::new()
        .route("/wecom/callback/{tenant}", get(verify_url).post(receive))
        .with_state(Callbacks { engine, api, clock })
        .layer(DefaultBodyLimit::max(MAX_CALLBACK_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_CALLBACK_BODY_BYTES))
}

/// Why a callback request was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("no callback is configured for this tenant")]
    UnknownTenant,
    #[error("query parameter `{0}` is missing or malformed")]
    Query(&'static str),
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// Signed with the tenant's token, but addressed to another corp: the token and key
    /// are shared with (or leaked to) another corp's setup.
    #[error("the notice is addressed to corp `{got}`, not to this tenant's")]
    WrongCorp { got: String },
    #[error("{0}")]
    Store(#[from] InboxError),
}

impl CallbackError {
    fn status(&self) -> StatusCode {
        match self {
            Self::UnknownTenant => StatusCode::NOT_FOUND,
            Self::Crypto(CryptoError::BadSignature) => StatusCode::UNAUTHORIZED,
            Self::Query(_) | Self::Crypto(_) | Self::Parse(_) | Self::WrongCorp { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for CallbackError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "wecom callback failed");
        }
        // The reason stays in the log: a forger learns nothing from the body.
        (status, status.canonical_reason().unwrap_or_default()).into_response()
    }
}

/// The signed query WeCom adds to every request.
struct Signed {
    msg_signature: String,
    timestamp: String,
    nonce: String,
    echostr: Option<String>,
}

/// Parses the raw query decoding `%XX` only: `echostr` is base64, and a form decoder
/// would turn its `+` into a space and break the signature.
fn signed_query(raw: Option<&str>) -> Result<Signed, CallbackError> {
    let (mut sig, mut ts, mut nonce, mut echostr) = (None, None, None, None);
    for pair in raw.unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "msg_signature" => &mut sig,
            "timestamp" => &mut ts,
            "nonce" => &mut nonce,
            "echostr" => &mut echostr,
            _ => continue,
        };
        let name: &'static str = match name {
            "msg_signature" => "msg_signature",
            "timestamp" => "timestamp",
            "nonce" => "nonce",
            _ => "echostr",
        };
        if slot.is_some() {
            return Err(CallbackError::Query(name));
        }
        *slot = Some(percent_decode(value).ok_or(CallbackError::Query(name))?);
    }
    Ok(Signed {
        msg_signature: sig.ok_or(CallbackError::Query("msg_signature"))?,
        timestamp: ts.ok_or(CallbackError::Query("timestamp"))?,
        nonce: nonce.ok_or(CallbackError::Query("nonce"))?,
        echostr,
    })
}

async fn tenant_config(
    engine: &Engine,
    tenant: &str,
) -> Result<(TenantId, CallbackConfig), CallbackError> {
    let tenant = TenantId::parse_slug(tenant).map_err(|_| CallbackError::UnknownTenant)?;
    let config = inbox::config(&engine.db, &tenant)
        .await?
        .ok_or(CallbackError::UnknownTenant)?;
    Ok((tenant, config))
}

/// The envelope's corp id (`ToUserName`, `AuthCorpId`) must be the tenant's, when the
/// tenant configured one. Suite-level notices name no corp and pass (they map to no
/// command). Pure.
fn check_corp(config: &CallbackConfig, named: Option<&str>) -> Result<(), CallbackError> {
    match (config.corp_id.as_deref(), named) {
        (Some(want), Some(got)) if want != got.trim() => Err(CallbackError::WrongCorp {
            got: got.to_owned(),
        }),
        _ => Ok(()),
    }
}

fn plain(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn refused(tenant: &str, what: &str, error: CallbackError) -> CallbackError {
    if !error.status().is_server_error() {
        tracing::warn!(tenant, %error, "wecom {what} refused");
    }
    error
}

/// GET: URL verification, sent when the callback URL is saved on WeCom's console.
async fn verify_url(
    State(cb): State<Callbacks>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, CallbackError> {
    let answer = async {
        let (_, config) = tenant_config(&cb.engine, &tenant).await?;
        let q = signed_query(query.as_deref())?;
        let echostr = q.echostr.ok_or(CallbackError::Query("echostr"))?;
        Ok(config
            .keys
            .verify_url(&q.msg_signature, &q.timestamp, &q.nonce, &echostr)?)
    };
    match answer.await {
        Ok(plaintext) => Ok(plain(plaintext)),
        Err(e) => Err(refused(&tenant, "URL verification", e)),
    }
}

/// POST: one notice.
async fn receive(
    State(cb): State<Callbacks>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, CallbackError> {
    let stored = async {
        let (tenant, config) = tenant_config(&cb.engine, &tenant).await?;
        let q = signed_query(query.as_deref())?;
        let encrypted = outer_encrypt(&body)?;
        let plaintext = config
            .keys
            .open(&q.msg_signature, &q.timestamp, &q.nonce, &encrypted)?;
        let intake = Intake::read(&plaintext)?;
        check_corp(&config, intake.corp_id.as_deref())?;
        let new = inbox::store(&cb.engine.db, &tenant, &intake, cb.clock.now()).await?;
        tracing::info!(%tenant, kind = %intake.kind, dedup_key = %intake.dedup_key, new,
            status = intake.status.as_str(), reason = intake.reason.as_deref(),
            "wecom notice stored");
        Ok::<_, CallbackError>(new && intake.status == Status::Pending)
    };
    match stored.await {
        Ok(queued) => {
            if queued {
                let (engine, api, clock) = (cb.engine.clone(), cb.api.clone(), cb.clock.clone());
                tokio::spawn(async move {
                    if let Err(error) = process_pending(&engine, &api, clock.now()).await {
                        tracing::error!(%error, "processing wecom notices failed");
                    }
                });
            }
            Ok(plain("success".to_owned()))
        }
        Err(e) => Err(refused(&tenant, "notice", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decodes_percent_escapes_but_keeps_plus() {
        let q = signed_query(Some(
            "msg_signature=ab&timestamp=1&nonce=n&echostr=a%2Fb+c%3D%3D",
        ))
        .unwrap();
        assert_eq!(q.echostr.as_deref(), Some("a/b+c=="));
        assert_eq!(q.msg_signature, "ab");
    }

    #[test]
    fn a_notice_for_another_corp_is_refused_when_the_tenant_named_its_corp() {
        use wecom::crypto::CallbackKeys;
        let mut config = CallbackConfig {
            keys: CallbackKeys::new("t", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "ww1")
                .unwrap(),
            corp_id: Some("ww1".into()),
            api: None,
        };
        assert!(check_corp(&config, Some("ww1")).is_ok());
        assert!(check_corp(&config, None).is_ok());
        assert!(matches!(
            check_corp(&config, Some("ww2")),
            Err(CallbackError::WrongCorp { .. })
        ));
        config.corp_id = None;
        assert!(check_corp(&config, Some("ww2")).is_ok());
    }

    #[test]
    fn query_without_a_parameter_or_with_one_twice_is_refused() {
        assert!(matches!(
            signed_query(Some("timestamp=1&nonce=n")),
            Err(CallbackError::Query("msg_signature"))
        ));
        assert!(matches!(
            signed_query(Some("msg_signature=a&msg_signature=b&timestamp=1&nonce=n")),
            Err(CallbackError::Query("msg_signature"))
        ));
        assert!(matches!(
            signed_query(Some("msg_signature=a&timestamp=1&nonce=%zz")),
            Err(CallbackError::Query("nonce"))
        ));
    }
}
