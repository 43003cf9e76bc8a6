//! HS256 JWTs with a pinned algorithm and every claim we rely on required.

use chrono::{DateTime, Duration, Utc};
use domain::values::{StoreId, TenantId};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{AuthError, Caller, Credential, Role};

/// Clock skew tolerated on `exp`.
const LEEWAY_SECONDS: u64 = 30;

#[derive(Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSettings")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The claims of our tokens. `tid` and `role` have no default: a token without them
/// does not deserialize, so it does not authenticate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub tid: String,
    pub role: Role,
    #[serde(default)]
    pub stores: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl JwtSettings {
    pub fn new(secret: &str, issuer: &str, audience: &str) -> Self {
        Self {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// Claims for a token issued at `now`, valid for `ttl`.
    #[allow(clippy::too_many_arguments)]
    pub fn claims(
        &self,
        tenant: &TenantId,
        subject: &str,
        role: Role,
        stores: &[StoreId],
        scopes: &[String],
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Claims {
        Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.to_string(),
            exp: (now + ttl).timestamp(),
            iat: now.timestamp(),
            tid: tenant.to_string(),
            role,
            stores: stores.iter().map(ToString::to_string).collect(),
            scopes: scopes.to_vec(),
        }
    }

    pub fn mint(&self, claims: &Claims) -> String {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of serializable claims cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = decode::<Claims>(token, &self.decoding, &validation)?;
        let claims = data.claims;
        let tenant =
            TenantId::parse_slug(claims.tid).map_err(|e| AuthError::Token(format!("tid: {e}")))?;
        let stores = claims
            .stores
            .into_iter()
            .map(StoreId::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AuthError::Token(format!("stores: {e}")))?;
        if claims.sub.is_empty() {
            return Err(AuthError::Token("empty sub".into()));
        }
        Ok(Caller {
            tenant,
            subject: claims.sub,
            role: claims.role,
            stores,
            scopes: claims.scopes,
            credential: Credential::Jwt,
        })
    }
}
