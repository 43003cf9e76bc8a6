//! Staff, departed staff in the reassignment view, and their handovers.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, Object, ID};
use chrono::{DateTime, Utc};
use engine::reads::{DepartureRecord, HandoverRecord, StaffRecord};

use super::int;
use crate::errors::ApiResult;
use crate::ids::{self, page_size};
use crate::paging::Page;
use crate::reads;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum StaffStatus {
    Active,
    Departed,
}

/// A store's name, or its id when the directory names it nowhere: a list shows one or
/// the other, never a blank.
async fn store_name(ctx: &Context<'_>, store_id: &str) -> ApiResult<String> {
    let name = reads(ctx)?.store_name(store_id).await?;
    Ok(name.unwrap_or_else(|| store_id.to_string()))
}

#[derive(Debug, Clone)]
pub struct Staff(pub StaffRecord);

#[Object]
impl Staff {
    async fn id(&self) -> ID {
        ids::encode("Staff", &self.0.staff_id)
    }
    /// WeCom `userid`.
    async fn staff_id(&self) -> &str {
        &self.0.staff_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn store_id(&self) -> &str {
        &self.0.store_id
    }
    /// The store's name from the WeCom directory (its department's), else its id.
    async fn store_name(&self, ctx: &Context<'_>) -> ApiResult<String> {
        store_name(ctx, &self.0.store_id).await
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn customer_limit(&self) -> i32 {
        int(self.0.customer_limit)
    }
    async fn customer_count(&self) -> i32 {
        int(self.0.customers)
    }
    async fn status(&self) -> StaffStatus {
        if self.0.departed_at.is_some() {
            StaffStatus::Departed
        } else {
            StaffStatus::Active
        }
    }
    async fn departed_at(&self) -> Option<DateTime<Utc>> {
        self.0.departed_at
    }
}

/// A departed member of staff in the reassignment view.
#[derive(Debug, Clone)]
pub struct Departure(pub DepartureRecord);

#[Object]
impl Departure {
    async fn staff_id(&self) -> &str {
        &self.0.staff_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn store_id(&self) -> &str {
        &self.0.store_id
    }
    /// The store's name from the WeCom directory (its department's), else its id.
    async fn store_name(&self, ctx: &Context<'_>) -> ApiResult<String> {
        store_name(ctx, &self.0.store_id).await
    }
    async fn departed_at(&self) -> Option<DateTime<Utc>> {
        self.0.departed_at
    }
    /// Customers still served by them: the ones a handover has to move.
    async fn customers_remaining(&self) -> i32 {
        int(self.0.customers)
    }
    /// Customer groups they still own.
    async fn groups_remaining(&self) -> i32 {
        int(self.0.groups)
    }
    async fn handovers_waiting(&self) -> i32 {
        int(self.0.handovers_waiting)
    }
    async fn handovers_accepted(&self) -> i32 {
        int(self.0.handovers_accepted)
    }
    async fn handovers_refused(&self) -> i32 {
        int(self.0.handovers_refused)
    }

    /// Their handovers, by customer.
    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn handovers(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> ApiResult<Page<Handover>> {
        let limit = page_size(first)?;
        let after = after.map(|a| ids::uncursor(&a, 1)).transpose()?;
        let mut rows = reads(ctx)?
            .handovers_from(&self.0.staff_id, after.map(|mut a| a.remove(0)), limit + 1)
            .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let mut page = Connection::new(false, more);
        for row in rows {
            let key = format!("{}/{}", row.customer_id, row.handover_id);
            page.edges
                .push(Edge::new(ids::cursor(&[&key]), Handover(row)));
        }
        Ok(page)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum HandoverStatus {
    Waiting,
    Accepted,
    Refused,
}

#[derive(Debug, Clone)]
pub struct Handover(pub HandoverRecord);

#[Object]
impl Handover {
    async fn customer_id(&self) -> ID {
        ids::encode("Customer", &self.0.customer_id)
    }
    async fn from_staff_id(&self) -> &str {
        &self.0.from_staff_id
    }
    async fn to_staff_id(&self) -> &str {
        &self.0.to_staff_id
    }
    /// `resigned` or `on_job`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn status(&self) -> HandoverStatus {
        match self.0.status.as_str() {
            "accepted" => HandoverStatus::Accepted,
            "waiting" => HandoverStatus::Waiting,
            _ => HandoverStatus::Refused,
        }
    }
    async fn requested_at(&self) -> DateTime<Utc> {
        self.0.requested_at
    }
    async fn auto_accept_at(&self) -> DateTime<Utc> {
        self.0.auto_accept_at
    }
    async fn concluded_at(&self) -> Option<DateTime<Utc>> {
        self.0.concluded_at
    }
}
