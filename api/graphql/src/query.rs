//! Root queries. Each names the roles it admits; the tenant and the customer scope come
//! from the caller, never from an argument.

use async_graphql::{Context, Enum, InputObject, Object, ID};
use chrono::{DateTime, Utc};

use super::errors::{ApiError, ApiResult};
use super::guard::{
    caller, RoleGuard, ANALYSTS, ANYONE, CAMPAIGNERS, OPERATIONS, OPS_AND_ANALYSTS,
};
use super::ids;
use super::paging::{key_cursor, page_vec, Page, Paging};
use super::timeline::Language;
use super::types::*;
use super::wecom_directory::WecomDepartment;
use super::wecom_inbox::{WecomNotice, WecomNoticeStatus};
use super::{reads, state};
use ::wecom::inbox::Status;
use engine::auth::{customer_scope, Reach};
use engine::reads::{CustomerFilter as Filter, FunnelDimension, StaffFilter};

/// Every root query: the core ones here, the others in their context's file.
#[derive(Debug, Default, async_graphql::MergedObject)]
pub struct Query(CoreQuery, crate::channels::ChannelQuery);

#[derive(Debug, Default)]
pub struct CoreQuery;

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

#[derive(Debug, Clone, Default, InputObject, serde::Serialize)]
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

impl From<CustomerFilter> for Filter {
    fn from(filter: CustomerFilter) -> Self {
        Self {
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
        }
    }
}

/// The customers a campaign would be sent to, counted before it is sent.
#[derive(Debug, Clone, async_graphql::SimpleObject)]
pub struct Audience {
    /// Customers matching the filter within the caller's reach.
    pub size: i64,
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

impl From<CustomerScope> for Reach {
    fn from(scope: CustomerScope) -> Self {
        match scope {
            CustomerScope::Mine => Reach::Mine,
            CustomerScope::Store => Reach::Store,
        }
    }
}

#[Object]
impl CoreQuery {
    /// Who the server thinks you are.
    #[graphql(guard = "RoleGuard(ANYONE)")]
    async fn viewer(&self, ctx: &Context<'_>) -> ApiResult<Viewer> {
        let caller = caller(ctx)?;
        Ok(Viewer {
            subject: caller.subject.clone(),
            role: caller.role.as_str().to_string(),
            store_ids: caller.stores.iter().map(ToString::to_string).collect(),
            sees_personal_data: caller.sees_pii(),
        })
    }

    /// The language the caller's tenant reads descriptions in (the timeline's
    /// summaries) when a request names none: Chinese until an admin sets another with
    /// `setTenantLanguage`. Read from the tenant's settings as they are now.
    #[graphql(guard = "RoleGuard(ANYONE)")]
    async fn tenant_language(&self, ctx: &Context<'_>) -> ApiResult<Language> {
        let tenant = &caller(ctx)?.tenant;
        let engine = &state(ctx)?.engine;
        let locale = engine::tenants::locale(&engine.db, tenant).await?;
        Ok(Language::of_locale(&locale))
    }

    /// One customer's portrait, if the caller may see them (null otherwise, whether or
    /// not the customer exists). With `asOf`, the portrait as it stood at that instant,
    /// folded from the log (relations, remarks, tags with the names they had then,
    /// groups, coupons, stage, purchases, timeline); null if the customer was not known
    /// yet. Who may see a customer is decided as today.
    #[graphql(guard = "RoleGuard(ANYONE)")]
    async fn customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default)] scope: CustomerScope,
        as_of: Option<DateTime<Utc>>,
    ) -> ApiResult<Option<Customer>> {
        let caller = caller(ctx)?;
        let local = ids::decode("Customer", &id)?;
        let scope = customer_scope(caller, scope.into());
        let wants = portrait_wants(ctx);
        let reads = reads(ctx)?;
        let portrait = match as_of {
            Some(at) => reads.portrait_as_of(&scope, &local, at, wants).await?,
            None => reads.portrait(&scope, &local, wants).await?,
        };
        Ok(portrait.map(|(record, parts)| Customer(record, Some(Box::new(parts)))))
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
    ) -> ApiResult<Page<Customer>> {
        let caller = caller(ctx)?;
        let (paging, after) = Paging::timed(first, after.as_deref())?;
        let filter = Filter::from(filter.unwrap_or_default());
        let now = state(ctx)?.clock.now();
        let rows = reads(ctx)?
            .customers(
                &customer_scope(caller, scope.into()),
                &filter,
                after,
                paging.fetch(),
                now,
            )
            .await?;
        Ok(paging.page(rows, Customer::new, |c| {
            ids::time_cursor(c.0.last_activity_at, &c.0.customer_id)
        }))
    }

    /// How many customers a campaign to `filter` would reach: the tenant's for
    /// operations, their stores' for a store manager.
    #[graphql(guard = "RoleGuard(CAMPAIGNERS)")]
    async fn audience(
        &self,
        ctx: &Context<'_>,
        filter: Option<CustomerFilter>,
    ) -> ApiResult<Audience> {
        let caller = caller(ctx)?;
        let filter = Filter::from(filter.unwrap_or_default());
        let scope = customer_scope(caller, Reach::Store);
        let now = state(ctx)?.clock.now();
        let size = reads(ctx)?.customer_count(&scope, &filter, now).await?;
        Ok(Audience { size })
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
    ) -> ApiResult<Page<Staff>> {
        let (paging, after) = Paging::keyed(first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = StaffFilter {
            store: filter.store_id,
            departed: filter.departed,
        };
        let rows = reads(ctx)?
            .staff_members(&filter, after, paging.fetch())
            .await?;
        Ok(paging.page(rows, Staff, |s| key_cursor(&s.0.staff_id)))
    }

    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn staff_member(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Staff>> {
        let local = ids::decode("Staff", &id)?;
        Ok(reads(ctx)?.staff_member(&local).await?.map(Staff))
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
    ) -> ApiResult<Page<Departure>> {
        let (paging, after) = Paging::keyed(first, after.as_deref())?;
        let rows = reads(ctx)?.departures(after, paging.fetch()).await?;
        Ok(paging.page(rows, Departure, |d| key_cursor(&d.0.staff_id)))
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
    ) -> ApiResult<Page<TagGroup>> {
        let (paging, after) = Paging::keyed(first, after.as_deref())?;
        let reads = reads(ctx)?;
        let groups = reads.tag_groups(after, paging.fetch()).await?;
        let ids: Vec<String> = groups.iter().map(|g| g.group_id.clone()).collect();
        let tags = reads.library_tags(&ids).await?;
        let group = |g| TagGroup::new(g, &tags);
        Ok(paging.page(groups, group, |g| key_cursor(&g.group_id)))
    }

    /// The repurchase funnel: friends, first purchase, repurchase, loyal, by dimension.
    /// By CAMPAIGN a line is what the campaign brought back: `friends` counts the
    /// customers given one of its coupons, each stage those of them who reached it on or
    /// after their first coupon of the campaign.
    #[graphql(
        guard = "RoleGuard(ANALYSTS)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    ///
    /// With `asOf`, the funnel as it stood at that instant: each customer where they
    /// stood then (acquired, first purchase, repurchase, loyal by the time each
    /// occurred), from the same rows, at the same cost as today's.
    async fn funnel(
        &self,
        ctx: &Context<'_>,
        by: Dimension,
        first: i32,
        after: Option<String>,
        as_of: Option<DateTime<Utc>>,
    ) -> ApiResult<Page<FunnelLine>> {
        let (paging, after) = Paging::keyed(first, after.as_deref())?;
        let reads = reads(ctx)?;
        let rows = reads
            .funnel(by.into(), as_of, after, paging.fetch())
            .await?;
        let names = match by {
            Dimension::Channel => {
                let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
                reads.channel_names(&keys).await?
            }
            _ => Default::default(),
        };
        let line = |r: engine::reads::FunnelLine| FunnelLine {
            name: names.get(&r.key).cloned(),
            ..FunnelLine::from(r)
        };
        Ok(paging.page(rows, line, |l| key_cursor(&l.key)))
    }

    /// Coupons issued, redeemed and expired, by dimension; with `asOf`, as they stood
    /// at that instant (a coupon redeemed later was still open then).
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
        as_of: Option<DateTime<Utc>>,
    ) -> ApiResult<Page<RedemptionLine>> {
        let (paging, after) = Paging::keyed(first, after.as_deref())?;
        let reads = reads(ctx)?;
        let rows = reads.coupon_redemption(by.into(), as_of, after, paging.fetch());
        Ok(paging.page(rows.await?, RedemptionLine::from, |l| key_cursor(&l.key)))
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
    ) -> ApiResult<Page<ProjectionStatus>> {
        // The caller's tenant's own figures: the deployment's would tell one tenant how
        // busy the others are.
        let tenant = caller(ctx)?.tenant.to_string();
        let statuses =
            projections::projector::tenant_status(&state(ctx)?.engine.db, &tenant).await?;
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
        page_vec(lines, first, after)
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
    ) -> ApiResult<Page<WecomNotice>> {
        let (paging, after) = Paging::timed(first, after.as_deref())?;
        let status = status.map(|s| Status::from(s).as_str());
        let rows = reads(ctx)?.wecom_notices(status, after, paging.fetch());
        Ok(paging.page(rows.await?, WecomNotice, |n| {
            ids::time_cursor(n.0.received_at, &n.0.dedup_key)
        }))
    }

    /// The customers WeCom itself still holds for staff who left (its
    /// `get_unassigned_list`, read live): what a handover has yet to move, as WeCom
    /// sees it. Pages follow WeCom's own cursor; every edge of a page carries the
    /// next page's cursor.
    #[graphql(
        guard = "RoleGuard(OPERATIONS)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn wecom_unassigned_customers(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> ApiResult<Page<super::wecom_unassigned::UnassignedCustomer>> {
        super::wecom_unassigned::page(ctx, first, after).await
    }

    /// The corp's WeCom departments by id, each with the store its staff work in.
    #[graphql(
        guard = "RoleGuard(OPERATIONS)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn wecom_departments(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> ApiResult<Page<WecomDepartment>> {
        let (paging, after) = Paging::keyed(first, after.as_deref())?;
        let after = after
            .map(|a| a.parse::<i64>())
            .transpose()
            .map_err(|_| super::errors::ApiError::BadInput("invalid cursor".into()))?;
        let rows = reads(ctx)?.wecom_departments(after, paging.fetch()).await?;
        Ok(paging.page(rows, WecomDepartment, |d| {
            key_cursor(&d.0.department_id.to_string())
        }))
    }

    /// The tenant's campaigns (`startCampaign` jobs), newest first: each one's id is
    /// what `campaignResults` takes.
    #[graphql(
        guard = "RoleGuard(OPS_AND_ANALYSTS)",
        complexity = "(first.max(0) as usize) * child_complexity"
    )]
    async fn campaigns(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> ApiResult<Page<Campaign>> {
        let (paging, after) = Paging::timed(first, after.as_deref())?;
        let rows = reads(ctx)?
            .jobs_of_kind(engine::campaign::KIND, after, paging.fetch())
            .await?;
        let campaigns = rows
            .into_iter()
            .map(|job| {
                let input = serde_json::from_str(&job.input).map_err(ApiError::internal)?;
                Ok(Campaign { job, input })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(paging.page(
            campaigns,
            |c| c,
            |c| ids::time_cursor(c.job.created_at, &c.job.job_id),
        ))
    }

    /// What a campaign (a `startCampaign` job) brought back: the customers it reached
    /// and those it held out, each arm's orders, amounts and coupon redemptions in the
    /// `windowDays` (1 to 90) after each customer was reached or held out, and the
    /// uplift. Counted from read models rebuilt from the log.
    #[graphql(guard = "RoleGuard(OPS_AND_ANALYSTS)")]
    async fn campaign_results(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 7)] window_days: i32,
    ) -> ApiResult<Option<CampaignResults>> {
        if !(1..=90).contains(&window_days) {
            return Err(ApiError::BadInput(
                "windowDays must be between 1 and 90".into(),
            ));
        }
        let local = ids::decode("Job", &id)?;
        let reads = reads(ctx)?;
        let Some(job) = reads.job(&local).await? else {
            return Ok(None);
        };
        if job.kind != engine::campaign::KIND {
            return Ok(None);
        }
        let input: engine::campaign::CampaignInput =
            serde_json::from_str(&job.input).map_err(ApiError::internal)?;
        let window = i64::from(window_days) * 86_400;
        let arms = reads
            .campaign_arms(&local, input.coupon_campaign.as_deref(), window)
            .await?;
        Ok(Some(CampaignResults::new(job, input, window_days, &arms)))
    }

    /// A job of the caller's tenant: visible to whoever started it, operations and
    /// admins.
    #[graphql(guard = "RoleGuard(OPS_AND_ANALYSTS)")]
    async fn job(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Job>> {
        let caller = caller(ctx)?;
        let local = ids::decode("Job", &id)?;
        let job = reads(ctx)?.job(&local).await?;
        Ok(super::subscription::visible(job, caller).map(Job))
    }
}
