//! What WeCom itself holds for departed staff (`get_unassigned_list`), read live for
//! operations: the customers WeCom still keeps for guides who left and were not handed
//! over, each with the engine's portrait when the engine knows the customer.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object, ID};
use chrono::{DateTime, Utc};
use engine::auth::{customer_scope, Reach};

use crate::errors::{ApiError, ApiResult};
use crate::guard::caller;
use crate::ids::{self, page_size};
use crate::paging::Page;
use crate::types::Customer;
use crate::{reads, state};

/// A customer WeCom holds for a member of staff who left.
#[derive(Debug, Clone)]
pub struct UnassignedCustomer(pub ::wecom::client::unassigned::Unassigned);

#[Object]
impl UnassignedCustomer {
    /// The member of staff who left (their WeCom userid).
    async fn staff_id(&self) -> &str {
        &self.0.handover_userid
    }
    async fn customer_id(&self) -> ID {
        ids::encode("Customer", &self.0.external_userid)
    }
    /// When WeCom says they left.
    async fn departed_at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.0.dimission_time, 0)
    }
    /// The engine's portrait of the customer, if it knows them.
    async fn customer(&self, ctx: &Context<'_>) -> ApiResult<Option<Customer>> {
        let scope = customer_scope(caller(ctx)?, Reach::Mine);
        Ok(reads(ctx)?
            .customer(&scope, &self.0.external_userid)
            .await?
            .map(|record| Customer(record, None)))
    }
}

/// One page of WeCom's list; the cursor is WeCom's own.
pub async fn page(
    ctx: &Context<'_>,
    first: i32,
    after: Option<String>,
) -> ApiResult<Page<UnassignedCustomer>> {
    let limit = page_size(first)? as usize;
    let after = after.map(|a| ids::uncursor(&a, 1)).transpose()?;
    let caller = caller(ctx)?;
    let state = state(ctx)?;
    let config = ::wecom::inbox::config(&state.engine.db, &caller.tenant)
        .await
        .map_err(ApiError::internal)?;
    let Some(credentials) = config.and_then(|c| c.api) else {
        return Err(ApiError::WecomNotConfigured);
    };
    let wecom = state.wecom.for_tenant(caller.tenant.as_str(), &credentials);
    let cursor = after.as_ref().map(|a| a[0].as_str());
    let answer = wecom
        .unassigned(cursor, limit)
        .await
        .map_err(|e| ApiError::WecomUnavailable(e.to_string()))?;
    let mut page = Connection::new(cursor.is_some(), answer.next_cursor.is_some());
    let next = answer.next_cursor.unwrap_or_default();
    page.edges.extend(
        answer
            .customers
            .into_iter()
            .map(|c| Edge::new(ids::cursor(&[&next]), UnassignedCustomer(c))),
    );
    Ok(page)
}
