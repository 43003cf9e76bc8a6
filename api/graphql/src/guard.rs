//! Deny by default: every root field names the roles it admits.

use async_graphql::{Context, Guard};

use super::errors::ApiError;
use engine::auth::{Caller, Role};

pub const GUIDES: &[Role] = &[Role::Guide, Role::StoreManager];
pub const ANYONE: &[Role] = &[
    Role::Guide,
    Role::StoreManager,
    Role::Operations,
    Role::Analyst,
    Role::Admin,
];
pub const OPERATIONS: &[Role] = &[Role::Operations, Role::Admin];
pub const ADMINS: &[Role] = &[Role::Admin];
/// Who reaches customers with campaigns: operations, and store managers for their stores.
pub const CAMPAIGNERS: &[Role] = &[Role::StoreManager, Role::Operations, Role::Admin];
pub const ANALYSTS: &[Role] = &[Role::Analyst, Role::Admin];
pub const OPS_AND_ANALYSTS: &[Role] = &[Role::Operations, Role::Analyst, Role::Admin];

/// Admits authenticated callers whose role is in the list.
#[derive(Debug, Clone, Copy)]
pub struct RoleGuard(pub &'static [Role]);

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let caller = ctx.data_opt::<Caller>().ok_or(ApiError::Unauthenticated)?;
        if self.0.contains(&caller.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden.into())
        }
    }
}

/// Personal fields: only for callers that see personal data.
#[derive(Debug, Clone, Copy)]
pub struct PiiGuard;

impl Guard for PiiGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let caller = ctx.data_opt::<Caller>().ok_or(ApiError::Unauthenticated)?;
        if caller.sees_pii() {
            Ok(())
        } else {
            Err(ApiError::Forbidden.into())
        }
    }
}

/// Callers whose token carries `scope` itself (a role that sees personal data by
/// default is not enough: erasure is asked for explicitly).
#[derive(Debug, Clone, Copy)]
pub struct ScopeGuard(pub &'static str);

impl Guard for ScopeGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let caller = ctx.data_opt::<Caller>().ok_or(ApiError::Unauthenticated)?;
        if caller.has_scope(self.0) {
            Ok(())
        } else {
            Err(ApiError::Forbidden.into())
        }
    }
}

/// The caller of a guarded field.
pub fn caller<'a>(ctx: &'a Context<'_>) -> Result<&'a Caller, ApiError> {
    ctx.data_opt::<Caller>().ok_or(ApiError::Unauthenticated)
}
