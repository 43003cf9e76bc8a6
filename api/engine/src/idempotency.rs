//! Idempotency keys for API mutations, scoped to the caller who sent them: the first
//! answer given under a key is kept with a hash of the request, so a retry gets that
//! answer and a different request under the same key is refused. Another caller's key
//! is, for this caller, a new key: a guide resending a colleague's key and input gets
//! their own answer (or refusal), never the colleague's. The command service also records the key on the
//! events it appends, so two racing first attempts still append once
//! (docs/adr/0001-command-service.md).

use domain::values::TenantId;
use projections::on_pool;
use sha2::{Digest, Sha256};

use crate::db::Database;

/// What an earlier request under the same key left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Earlier {
    None,
    Same(String),
    Different,
}

/// The key stored and written on events for `key` sent by `principal` (see
/// [`crate::auth::Caller::principal`]): a UUID still, derived (v5) so that it is the same
/// for every retry of one caller and different for every other caller.
pub fn scoped_key(principal: &str, key: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c_54e2_0b7d_4c11_9a43_2d55_e0c8_a917);
    uuid::Uuid::new_v5(&NAMESPACE, format!("{principal}\n{key}").as_bytes())
        .hyphenated()
        .to_string()
}

/// A fingerprint of an operation and its input (without the key itself).
pub fn request_hash(operation: &str, input: &serde_json::Value) -> String {
    let mut input = input.clone();
    if let Some(map) = input.as_object_mut() {
        map.remove("idempotencyKey");
        map.remove("idempotency_key");
    }
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(input.to_string().as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

pub async fn lookup(
    db: &Database,
    tenant: &TenantId,
    key: &str,
    hash: &str,
) -> Result<Earlier, sqlx::Error> {
    let row: Option<(String, String)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT request_hash, response FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
        )
        .bind(tenant.as_str())
        .bind(key)
        .fetch_optional(pool)
        .await
    })?;
    Ok(match row {
        None => Earlier::None,
        Some((h, response)) if h == hash => Earlier::Same(response),
        Some(_) => Earlier::Different,
    })
}

/// Keeps `response` under the key unless another request stored one first.
pub async fn record(
    db: &Database,
    tenant: &TenantId,
    key: &str,
    operation: &str,
    hash: &str,
    response: &str,
) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key, operation, request_hash, response) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, key) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(key)
        .bind(operation)
        .bind(hash)
        .bind(response)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}
