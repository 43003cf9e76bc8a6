//! Root queries of channel codes and welcome messages.

use async_graphql::{Context, Object};

use crate::errors::ApiResult;
use crate::guard::{RoleGuard, OPERATIONS, OPS_AND_ANALYSTS};
use crate::paging::{key_cursor, Page, Paging};
use crate::reads;
use crate::types::{ChannelCode, WelcomeMessage};

#[derive(Debug, Default)]
pub struct ChannelQuery;

#[Object]
impl ChannelQuery {
    /// The tenant's channel codes (「联系我」 QR codes), by state; disabled ones when
    /// asked for.
    #[graphql(
        guard = "RoleGuard(OPS_AND_ANALYSTS)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn channel_codes(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
        #[graphql(default = false)] include_disabled: bool,
    ) -> ApiResult<Page<ChannelCode>> {
        let (paging, after) = Paging::keyed(first, after.as_deref())?;
        let rows = reads(ctx)?
            .channel_codes(include_disabled, after, paging.fetch())
            .await?;
        Ok(paging.page(rows, ChannelCode, |c| key_cursor(&c.0.state)))
    }

    /// The tenant's own welcome message: what a customer who adds a guide other than
    /// through a channel code with its own welcome is sent. Null when there is none.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn welcome_message(&self, ctx: &Context<'_>) -> ApiResult<Option<WelcomeMessage>> {
        let found = reads(ctx)?.welcome_message(engine::welcome::TENANT).await?;
        Ok(found.map(WelcomeMessage))
    }
}
