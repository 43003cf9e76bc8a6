//! API keys for integrations: `sk.<tenant>.<key id>.<secret>`. Only a SHA-256 of the
//! secret is stored; it is compared in constant time. A key belongs to one tenant and
//! carries one role and its scopes; revoking it takes effect on the next request.

use chrono::{DateTime, Utc};
use domain::values::TenantId;
use projections::on_pool;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, Caller, Credential, Role};
use crate::db::Database;

pub const PREFIX: &str = "sk.";

#[derive(Debug, Clone)]
pub struct ApiKeys {
    db: Database,
}

/// A key as shown once, at creation.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key_id: String,
    pub token: String,
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

impl ApiKeys {
    pub fn new(db: &Database) -> Self {
        Self { db: db.clone() }
    }

    pub(super) fn db(&self) -> &Database {
        &self.db
    }

    pub async fn create(
        &self,
        tenant: &TenantId,
        name: &str,
        role: Role,
        scopes: &[String],
    ) -> Result<NewApiKey, AuthError> {
        let key_id = random_hex(6);
        let secret = random_hex(32);
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (tenant_id, key_id, name, secret_sha256, role, scopes) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tenant.as_str())
            .bind(&key_id)
            .bind(name)
            .bind(digest(&secret))
            .bind(role.as_str())
            .bind(scopes.join(" "))
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(NewApiKey {
            token: format!("{PREFIX}{tenant}.{key_id}.{secret}"),
            key_id,
        })
    }

    pub async fn revoke(
        &self,
        tenant: &TenantId,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let done = on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $3 \
                 WHERE tenant_id = $1 AND key_id = $2 AND revoked_at IS NULL",
            )
            .bind(tenant.as_str())
            .bind(key_id)
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let rest = token.strip_prefix(PREFIX).ok_or(AuthError::ApiKey)?;
        let mut parts = rest.splitn(3, '.');
        let (Some(tenant), Some(key_id), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::ApiKey);
        };
        let tenant = TenantId::parse_slug(tenant).map_err(|_| AuthError::ApiKey)?;
        let row: Option<(String, String, String, String)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT name, secret_sha256, role, scopes FROM api_keys \
                 WHERE tenant_id = $1 AND key_id = $2 AND revoked_at IS NULL",
            )
            .bind(tenant.as_str())
            .bind(key_id)
            .fetch_optional(pool)
            .await
        })?;
        let (name, stored, role, scopes) = row.ok_or(AuthError::ApiKey)?;
        if !bool::from(digest(secret).as_bytes().ct_eq(stored.as_bytes())) {
            return Err(AuthError::ApiKey);
        }
        Ok(Caller {
            tenant,
            subject: name,
            role: Role::parse(&role).ok_or(AuthError::ApiKey)?,
            stores: Vec::new(),
            scopes: scopes.split_whitespace().map(str::to_string).collect(),
            credential: Credential::ApiKey {
                key_id: key_id.to_string(),
            },
        })
    }
}
