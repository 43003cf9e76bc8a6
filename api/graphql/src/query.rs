//! Root queries. Each names the roles it admits; the tenant and the customer scope come
//! from the caller, never from an argument.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, InputObject, Object, ID};
use chrono::{DateTime, Utc};

use super::errors::ApiError;
use super::guard::{caller, RoleGuard, ANALYSTS, ANYONE, OPERATIONS, OPS_AND_ANALYSTS};
use super::ids::{self, page_size};
use super::types::*;
use super::wecom_inbox::{WecomNotice, WecomNoticeStatus};
use super::{reads, state};
use ::wecom::inbox::Status;
use engine::auth::{Caller, Role};
use engine::reads::{CustomerFilter as Filter, FunnelDimension, Scope, StaffFilter};

#[derive(Debug, Default)]
pub struct Query;

/// Which customers a list covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Default)]
pub enum CustomerScope {
    /// A guide's own customers (the default for guides); everyone the caller may see
    /// for other roles.
    #[default]
    Mine,
    /// Customers of the caller's stores (guides and store managers).
    Store,
}

#[derive(Debug, Clone, Default, InputObject)]
pub struct CustomerFilter {
    /// A tag id of the library.
    pub tag_id: Option<String>,
    /// A customer group (WeCom `chat_id`).
    pub group_id: Option<String>,
    pub stages: Option<Vec<Stage>>,
    /// Last activity at or after this instant.
    pub active_since: Option<DateTime<Utc>>,
    /// Last activity before this instant.
    pub inactive_since: Option<DateTime<Utc>>,
    pub has_unredeemed_coupon: Option<bool>,
    /// Served by this staff member (within the caller's scope).
    pub staff_id: Option<String>,
}

#[derive(Debug, Clone, Default, InputObject)]
pub struct StaffMemberFilter {
    pub store_id: Option<String>,
    pub departed: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum Dimension {
    Store,
    Staff,
    Channel,
    Cohort,
    Campaign,
}

impl From<Dimension> for FunnelDimension {
    fn from(d: Dimension) -> Self {
        match d {
            Dimension::Store => Self::Store,
            Dimension::Staff => Self::Staff,
            Dimension::Channel => Self::Channel,
            Dimension::Cohort => Self::Cohort,
            Dimension::Campaign => Self::Campaign,
        }
    }
}

/// The customers `caller` may see in `scope`.
pub fn customer_scope(caller: &Caller, wanted: CustomerScope) -> Scope {
    match (caller.role, wanted, caller.staff()) {
        (Role::Guide, CustomerScope::Mine, Some(staff)) => Scope::Staff(staff),
        (Role::Guide, CustomerScope::Mine, None) => Scope::Stores(Vec::new()),
        (Role::Guide | Role::StoreManager, _, _) => Scope::Stores(caller.stores.clone()),
        (Role::Operations | Role::Analyst | Role::Admin, _, _) => Scope::Tenant,
    }
}

fn rate(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn after_key(after: Option<String>) -> Result<Option<String>, ApiError> {
    Ok(after
        .map(|a| ids::uncursor(&a, 1))
        .transpose()?
        .map(|mut parts| parts.remove(0)))
}

fn keyed<T: async_graphql::OutputType>(
    rows: Vec<T>,
    limit: i64,
    had_after: bool,
    key: impl Fn(&T) -> String,
) -> Page<T> {
    let more = rows.len() as i64 > limit;
    let mut page = Connection::new(had_after, more);
    page.edges.extend(
        rows.into_iter()
            .take(limit as usize)
            .map(|row| Edge::new(ids::cursor(&[&key(&row)]), row)),
    );
    page
}

#[Object]
impl Query {
    /// Who the server thinks you are.
    #[graphql(guard = "RoleGuard(ANYONE)")]
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        let caller = caller(ctx)?;
        Ok(Viewer {
            subject: caller.subject.clone(),
            role: caller.role.as_str().to_string(),
            store_ids: caller.stores.iter().map(ToString::to_string).collect(),
            sees_personal_data: caller.sees_pii(),
        })
    }

    /// One customer's portrait, if the caller may see them (null otherwise, whether or
    /// not the customer exists).
    #[graphql(guard = "RoleGuard(ANYONE)")]
    async fn customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default)] scope: CustomerScope,
    ) -> async_graphql::Result<Option<Customer>> {
        let caller = caller(ctx)?;
        let local = ids::decode("Customer", &id)?;
        let scope = customer_scope(caller, scope);
        let wants = portrait_wants(ctx);
        Ok(reads(ctx)?
            .portrait(&scope, &local, wants)
            .await
            .map_err(ApiError::from)?
            .map(|(record, parts)| Customer(record, Some(Box::new(parts)))))
    }

    /// Customers the caller serves (guides), or may see, most recently active first.
    #[graphql(
        guard = "RoleGuard(ANYONE)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
        #[graphql(default)] scope: CustomerScope,
        filter: Option<CustomerFilter>,
    ) -> async_graphql::Result<Page<Customer>> {
        let caller = caller(ctx)?;
        let limit = page_size(first)?;
        let after = after.map(|a| ids::untime_cursor(&a)).transpose()?;
        let had_after = after.is_some();
        let filter = filter.unwrap_or_default();
        let filter = Filter {
            tag: filter.tag_id,
            group: filter.group_id,
            stages: filter
                .stages
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.as_str().to_string())
                .collect(),
            active_since: filter.active_since,
            inactive_since: filter.inactive_since,
            has_unredeemed_coupon: filter.has_unredeemed_coupon,
            served_by: filter.staff_id,
        };
        let now = state(ctx)?.clock.now();
        let rows = reads(ctx)?
            .customers(
                &customer_scope(caller, scope),
                &filter,
                after,
                limit + 1,
                now,
            )
            .await
            .map_err(ApiError::from)?;
        let more = rows.len() as i64 > limit;
        let mut page = Connection::new(had_after, more);
        page.edges
            .extend(rows.into_iter().take(limit as usize).map(|row| {
                Edge::new(
                    ids::time_cursor(row.last_activity_at, &row.customer_id),
                    Customer::new(row),
                )
            }));
        Ok(page)
    }

    /// Staff of the tenant, by staff id.
    #[graphql(
        guard = "RoleGuard(OPERATIONS)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn staff_members(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
        filter: Option<StaffMemberFilter>,
    ) -> async_graphql::Result<Page<Staff>> {
        let limit = page_size(first)?;
        let after = after_key(after)?;
        let had_after = after.is_some();
        let filter = filter.unwrap_or_default();
        let rows = reads(ctx)?
            .staff_members(
                &StaffFilter {
                    store: filter.store_id,
                    departed: filter.departed,
                },
                after,
                limit + 1,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(keyed(
            rows.into_iter().map(Staff).collect(),
            limit,
            had_after,
            |s| s.0.staff_id.clone(),
        ))
    }

    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn staff_member(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Staff>> {
        let local = ids::decode("Staff", &id)?;
        Ok(reads(ctx)?
            .staff_member(&local)
            .await
            .map_err(ApiError::from)?
            .map(Staff))
    }

    /// The reassignment view: departed staff and what they still hold.
    #[graphql(
        guard = "RoleGuard(OPERATIONS)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn departures(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Departure>> {
        let limit = page_size(first)?;
        let after = after_key(after)?;
        let had_after = after.is_some();
        let rows = reads(ctx)?
            .departures(after, limit + 1)
            .await
            .map_err(ApiError::from)?;
        Ok(keyed(
            rows.into_iter().map(Departure).collect(),
            limit,
            had_after,
            |d| d.0.staff_id.clone(),
        ))
    }

    /// The tag library.
    #[graphql(
        guard = "RoleGuard(ANYONE)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn tag_groups(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<TagGroup>> {
        let limit = page_size(first)?;
        let after = after_key(after)?;
        let had_after = after.is_some();
        let reads = reads(ctx)?;
        let groups = reads
            .tag_groups(after, limit + 1)
            .await
            .map_err(ApiError::from)?;
        let ids: Vec<String> = groups.iter().map(|g| g.group_id.clone()).collect();
        let tags = reads.library_tags(&ids).await.map_err(ApiError::from)?;
        let groups = groups
            .into_iter()
            .map(|g| TagGroup {
                tags: tags
                    .iter()
                    .filter(|t| t.group_id == g.group_id)
                    .map(|t| LibraryTag {
                        tag_id: t.tag_id.clone(),
                        name: t.name.clone(),
                        order: t.sort_order,
                    })
                    .collect(),
                group_id: g.group_id,
                name: g.name,
                order: g.sort_order,
            })
            .collect();
        Ok(keyed(groups, limit, had_after, |g| g.group_id.clone()))
    }

    /// The repurchase funnel: friends, first purchase, repurchase, loyal, by dimension.
    #[graphql(
        guard = "RoleGuard(ANALYSTS)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn funnel(
        &self,
        ctx: &Context<'_>,
        by: Dimension,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<FunnelLine>> {
        let limit = page_size(first)?;
        let after = after_key(after)?;
        let had_after = after.is_some();
        let rows = reads(ctx)?
            .funnel(by.into(), after, limit + 1)
            .await
            .map_err(ApiError::from)?;
        let lines = rows
            .into_iter()
            .map(|r| FunnelLine {
                repurchase_rate: rate(r.repurchase, r.first_purchase),
                key: r.key,
                friends: int(r.friends),
                first_purchase: int(r.first_purchase),
                repurchase: int(r.repurchase),
                loyal: int(r.loyal),
            })
            .collect();
        Ok(keyed(lines, limit, had_after, |l| l.key.clone()))
    }

    /// Coupons issued, redeemed and expired, by dimension.
    #[graphql(
        guard = "RoleGuard(ANALYSTS)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn coupon_redemption(
        &self,
        ctx: &Context<'_>,
        by: Dimension,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<RedemptionLine>> {
        let limit = page_size(first)?;
        let after = after_key(after)?;
        let had_after = after.is_some();
        let rows = reads(ctx)?
            .coupon_redemption(by.into(), after, limit + 1)
            .await
            .map_err(ApiError::from)?;
        let lines = rows
            .into_iter()
            .map(|r| RedemptionLine {
                redemption_rate: rate(r.redeemed, r.issued),
                key: r.key,
                issued: int(r.issued),
                redeemed: int(r.redeemed),
                expired: int(r.expired),
            })
            .collect();
        Ok(keyed(lines, limit, had_after, |l| l.key.clone()))
    }

    /// Every projection, as far as the caller's tenant is concerned: its events
    /// applied, the last of them, and its events not yet applied; and the version.
    #[graphql(
        guard = "RoleGuard(ANALYSTS)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn projections(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<ProjectionStatus>> {
        // The caller's tenant's own figures: the deployment's would tell one tenant how
        // busy the others are.
        let tenant = caller(ctx)?.tenant.to_string();
        let statuses = projections::projector::tenant_status(&state(ctx)?.engine.db, &tenant)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let lines = statuses
            .into_iter()
            .map(|s| ProjectionStatus {
                name: s.name.to_string(),
                code_version: int(s.code_version),
                stored_version: s.stored_version.map(int),
                checkpoint: s.checkpoint.position.to_string(),
                events_applied: s.events_applied.to_string(),
                events_behind: s.events_behind.to_string(),
                seconds_behind: s.seconds_behind,
                stopped: s.failure.is_some(),
                stopped_reason: s.failure.as_ref().map(|f| f.kind.clone()),
                stopped_since: s.failure.as_ref().map(|f| f.since),
            })
            .collect();
        Ok(page_vec(lines, first, after)?)
    }

    /// WeCom notices delivered to the tenant's callback, newest first: operations see
    /// which ones the engine could not apply, and why.
    #[graphql(
        guard = "RoleGuard(OPERATIONS)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn wecom_notices(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
        status: Option<WecomNoticeStatus>,
    ) -> async_graphql::Result<Page<WecomNotice>> {
        let limit = page_size(first)?;
        let after = after.as_deref().map(ids::untime_cursor).transpose()?;
        let had_after = after.is_some();
        let rows = reads(ctx)?
            .wecom_notices(status.map(|s| Status::from(s).as_str()), after, limit + 1)
            .await
            .map_err(ApiError::from)?;
        let more = rows.len() as i64 > limit;
        let mut page = Connection::new(had_after, more);
        page.edges
            .extend(rows.into_iter().take(limit as usize).map(|row| {
                Edge::new(
                    ids::time_cursor(row.received_at, &row.dedup_key),
                    WecomNotice(row),
                )
            }));
        Ok(page)
    }

    /// A job of the caller's tenant: visible to whoever started it, operations and
    /// admins.
    #[graphql(guard = "RoleGuard(OPS_AND_ANALYSTS)")]
    async fn job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Job>> {
        let caller = caller(ctx)?;
        let local = ids::decode("Job", &id)?;
        let job = reads(ctx)?.job(&local).await.map_err(ApiError::from)?;
        Ok(super::subscription::visible(job, caller).map(Job))
    }
}
