//! The objects the schema returns. Nested lists are connections like root lists; they
//! are short (a customer's tags, groups, coupons), so they are paged in memory.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::errors::ApiError;
use super::guard::PiiGuard;
use super::ids::{self, page_size};
use super::reads;
use super::timeline::{describe, TimelineEntry};
use engine::reads::{
    CouponRecord, CustomerRecord, DepartureRecord, GroupRecord, HandoverItemRecord, HandoverRecord,
    PortraitParts, PortraitWants, RelationRecord, StaffRecord, TagRecord,
};

pub type Page<T> = Connection<String, T>;

/// Pages an in-memory list by offset cursors.
pub fn page_vec<T: async_graphql::OutputType>(
    items: Vec<T>,
    first: i32,
    after: Option<String>,
) -> Result<Page<T>, ApiError> {
    let limit = page_size(first)? as usize;
    let start = match after {
        Some(raw) => {
            ids::uncursor(&raw, 1)?[0]
                .parse::<usize>()
                .map_err(|_| ApiError::BadInput("invalid cursor".into()))?
                + 1
        }
        None => 0,
    };
    let total = items.len();
    let mut page = Connection::new(start > 0, start + limit < total);
    page.edges.extend(
        items
            .into_iter()
            .enumerate()
            .skip(start)
            .take(limit)
            .map(|(i, item)| Edge::new(ids::cursor(&[&i.to_string()]), item)),
    );
    Ok(page)
}

pub fn int(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Where a customer stands in the repurchase funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum Stage {
    Lost,
    Friend,
    FirstPurchase,
    Repurchase,
    Loyal,
}

impl Stage {
    pub fn parse(raw: &str) -> Self {
        match raw {
            "lost" => Self::Lost,
            "first_purchase" => Self::FirstPurchase,
            "repurchase" => Self::Repurchase,
            "loyal" => Self::Loyal,
            _ => Self::Friend,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lost => "lost",
            Self::Friend => "friend",
            Self::FirstPurchase => "first_purchase",
            Self::Repurchase => "repurchase",
            Self::Loyal => "loyal",
        }
    }
}

/// `138****8000`: enough to recognise a number, not to call it.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// A customer's portrait, with whatever parts were read together with it.
#[derive(Debug, Clone)]
pub struct Customer(pub CustomerRecord, pub Option<Box<PortraitParts>>);

impl Customer {
    pub fn new(record: CustomerRecord) -> Self {
        Self(record, None)
    }

    fn parts(&self) -> Option<&PortraitParts> {
        self.1.as_deref()
    }
}

/// Which portrait parts the selection under `ctx` asks for, so `customer(id)` can read
/// them in the same statement as the customer.
pub fn portrait_wants(ctx: &Context<'_>) -> PortraitWants {
    let look = ctx.look_ahead();
    // The newest `first + 1` events serve every `timeline(first:)` without `after`; a
    // selection with `after` reads its own page.
    let timeline = look
        .field("timeline")
        .selection_fields()
        .iter()
        .filter_map(|field| {
            let args = field.arguments().ok()?;
            if args.iter().any(|(name, _)| name.as_str() == "after") {
                return None;
            }
            args.iter()
                .find(|(name, _)| name.as_str() == "first")
                .and_then(|(_, value)| match value {
                    async_graphql::Value::Number(n) => n.as_i64(),
                    _ => None,
                })
                .filter(|first| (1..=100).contains(first))
        })
        .max()
        .map(|first| first + 1);
    PortraitWants {
        relations: look.field("staff").exists(),
        tags: look.field("tags").exists(),
        groups: look.field("groups").exists(),
        coupons: look.field("coupons").exists(),
        timeline,
    }
}

#[Object]
impl Customer {
    async fn id(&self) -> ID {
        ids::encode("Customer", &self.0.customer_id)
    }

    /// WeCom `external_userid`.
    async fn external_user_id(&self) -> &str {
        &self.0.customer_id
    }

    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// The full number: only for callers that may see personal data.
    #[graphql(guard = "PiiGuard")]
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }

    async fn masked_phone(&self) -> Option<String> {
        self.0.phone.as_deref().map(mask_phone)
    }

    async fn stage(&self) -> Stage {
        Stage::parse(&self.0.stage)
    }

    async fn first_added_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_added_at
    }

    async fn first_staff_id(&self) -> Option<&str> {
        self.0.first_staff_id.as_deref()
    }

    /// WeCom's `add_way` of the first friend-add.
    async fn add_way(&self) -> Option<i32> {
        self.0.add_way.map(int)
    }

    /// The acquisition channel (`state` of the contact-me QR code).
    async fn channel(&self) -> Option<&str> {
        self.0.channel_state.as_deref()
    }

    async fn purchases(&self) -> i32 {
        int(self.0.purchases)
    }

    /// Total spent, in yuan.
    async fn total_spent_yuan(&self) -> f64 {
        self.0.total_fen as f64 / 100.0
    }

    async fn first_purchase_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_purchase_at
    }

    async fn last_purchase_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_purchase_at
    }

    async fn coupons_issued(&self) -> i32 {
        int(self.0.coupons_issued)
    }

    async fn coupons_redeemed(&self) -> i32 {
        int(self.0.coupons_redeemed)
    }

    async fn coupons_expired(&self) -> i32 {
        int(self.0.coupons_expired)
    }

    async fn last_activity_at(&self) -> DateTime<Utc> {
        self.0.last_activity_at
    }

    /// The customer stream's version this portrait reflects: pass it as
    /// `expectedVersion` to change exactly this state.
    async fn version(&self) -> i32 {
        int(self.0.version)
    }

    /// Staff who serve the customer, each with their own remark.
    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn staff(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<StaffRelation>> {
        let rows = match self.parts().and_then(|p| p.relations.clone()) {
            Some(rows) => rows,
            None => reads(ctx)?
                .relations(&self.0.customer_id)
                .await
                .map_err(ApiError::from)?,
        };
        Ok(page_vec(
            rows.into_iter().map(StaffRelation).collect(),
            first,
            after,
        )?)
    }

    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn tags(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<CustomerTag>> {
        let rows = match self.parts().and_then(|p| p.tags.clone()) {
            Some(rows) => rows,
            None => reads(ctx)?
                .tags(&self.0.customer_id)
                .await
                .map_err(ApiError::from)?,
        };
        Ok(page_vec(
            rows.into_iter().map(CustomerTag).collect(),
            first,
            after,
        )?)
    }

    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn groups(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<CustomerGroupMembership>> {
        let rows = match self.parts().and_then(|p| p.groups.clone()) {
            Some(rows) => rows,
            None => reads(ctx)?
                .groups(&self.0.customer_id)
                .await
                .map_err(ApiError::from)?,
        };
        Ok(page_vec(
            rows.into_iter().map(CustomerGroupMembership).collect(),
            first,
            after,
        )?)
    }

    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn coupons(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Coupon>> {
        let rows = match self.parts().and_then(|p| p.coupons.clone()) {
            Some(rows) => rows,
            None => reads(ctx)?
                .coupons(&self.0.customer_id)
                .await
                .map_err(ApiError::from)?,
        };
        Ok(page_vec(
            rows.into_iter().map(Coupon).collect(),
            first,
            after,
        )?)
    }

    /// Everything that happened to the customer, newest first, from their own stream.
    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<TimelineEntry>> {
        let limit = page_size(first)?;
        let before = match after {
            Some(raw) => Some(
                ids::uncursor(&raw, 1)?[0]
                    .parse::<i64>()
                    .map_err(|_| ApiError::BadInput("invalid cursor".into()))?,
            ),
            None => None,
        };
        let preloaded = self
            .parts()
            .filter(|p| before.is_none() && p.timeline_limit > limit)
            .and_then(|p| p.timeline.clone());
        let mut rows = match preloaded {
            Some(rows) => rows,
            None => reads(ctx)?
                .timeline(&self.0.customer_id, before, limit + 1)
                .await
                .map_err(ApiError::from)?,
        };
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let mut page = Connection::new(before.is_some(), more);
        for row in rows {
            let event: domain::customer::CustomerEvent = serde_json::from_str(&row.payload)
                .map_err(|e| ApiError::Internal(format!("event {}: {e}", row.sequence)))?;
            let metadata: std::collections::HashMap<String, String> =
                serde_json::from_str(&row.metadata).unwrap_or_default();
            let (occurred_at, summary) = describe(&event);
            page.edges.push(Edge::new(
                ids::cursor(&[&row.sequence.to_string()]),
                TimelineEntry {
                    sequence: int(row.sequence),
                    occurred_at,
                    kind: row.event_type,
                    actor: metadata.get(domain::metadata::ACTOR).cloned(),
                    summary,
                },
            ));
        }
        Ok(page)
    }
}

/// A member of staff's relation with a customer.
#[derive(Debug, Clone)]
pub struct StaffRelation(pub RelationRecord);

#[Object]
impl StaffRelation {
    async fn staff_id(&self) -> &str {
        &self.0.staff_id
    }
    async fn staff_name(&self) -> Option<&str> {
        self.0.staff_name.as_deref()
    }
    async fn store_id(&self) -> Option<&str> {
        self.0.store_id.as_deref()
    }
    async fn added_at(&self) -> DateTime<Utc> {
        self.0.added_at
    }
    async fn add_way(&self) -> i32 {
        int(self.0.add_way)
    }
    async fn remark(&self) -> &str {
        &self.0.remark
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
}

#[derive(Debug, Clone)]
pub struct CustomerTag(pub TagRecord);

#[Object]
impl CustomerTag {
    async fn tag_id(&self) -> &str {
        &self.0.tag_id
    }
    /// The tag's current name (renames show here); null once deleted from the library.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn group_name(&self) -> Option<&str> {
        self.0.group_name.as_deref()
    }
    /// Who applied it (WeCom tags belong to one follow-user's relation).
    async fn staff_id(&self) -> &str {
        &self.0.staff_id
    }
    async fn tagged_at(&self) -> DateTime<Utc> {
        self.0.tagged_at
    }
}

#[derive(Debug, Clone)]
pub struct CustomerGroupMembership(pub GroupRecord);

#[Object]
impl CustomerGroupMembership {
    async fn group_id(&self) -> &str {
        &self.0.group_id
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn owner_staff_id(&self) -> Option<&str> {
        self.0.owner_staff_id.as_deref()
    }
    /// The group notice (群公告): empty when none is set, null when the group is unknown.
    async fn notice(&self) -> Option<&str> {
        self.0.notice.as_deref()
    }
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum CouponStatus {
    Issued,
    Redeemed,
    Expired,
}

#[derive(Debug, Clone)]
pub struct Coupon(pub CouponRecord);

#[Object]
impl Coupon {
    async fn coupon_id(&self) -> &str {
        &self.0.coupon_id
    }
    async fn campaign_id(&self) -> &str {
        &self.0.campaign_id
    }
    async fn value_yuan(&self) -> f64 {
        self.0.value_fen as f64 / 100.0
    }
    async fn issued_at(&self) -> DateTime<Utc> {
        self.0.issued_at
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    async fn status(&self) -> CouponStatus {
        match self.0.status.as_str() {
            "redeemed" => CouponStatus::Redeemed,
            "expired" => CouponStatus::Expired,
            _ => CouponStatus::Issued,
        }
    }
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum StaffStatus {
    Active,
    Departed,
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
    ) -> async_graphql::Result<Page<Handover>> {
        let limit = page_size(first)?;
        let after = after.map(|a| ids::uncursor(&a, 1)).transpose()?;
        let mut rows = reads(ctx)?
            .handovers_from(&self.0.staff_id, after.map(|mut a| a.remove(0)), limit + 1)
            .await
            .map_err(ApiError::from)?;
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

/// A group of the tag library with its live tags.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct TagGroup {
    pub group_id: String,
    pub name: String,
    /// WeCom's display order: the larger comes first.
    pub order: i64,
    #[graphql(skip)]
    pub tags: Vec<LibraryTag>,
}

#[ComplexObject]
impl TagGroup {
    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn tags(
        &self,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<LibraryTag>> {
        Ok(page_vec(self.tags.clone(), first, after)?)
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct LibraryTag {
    pub tag_id: String,
    pub name: String,
    /// WeCom's display order within the group: the larger comes first.
    pub order: i64,
}

/// One line of a funnel.
#[derive(Debug, Clone, SimpleObject)]
pub struct FunnelLine {
    /// The store, staff id, channel or cohort month (`YYYY-MM`).
    pub key: String,
    pub friends: i32,
    pub first_purchase: i32,
    pub repurchase: i32,
    pub loyal: i32,
    /// Customers who bought at least twice, of those who bought once.
    pub repurchase_rate: f64,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct RedemptionLine {
    pub key: String,
    pub issued: i32,
    pub redeemed: i32,
    pub expired: i32,
    pub redemption_rate: f64,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct ProjectionStatus {
    pub name: String,
    /// The version this build of the code folds with.
    pub code_version: i32,
    /// The version that built the stored tables (null before the first build).
    pub stored_version: Option<i32>,
    /// Global position of the last event of the caller's tenant applied.
    pub checkpoint: String,
    /// Events of the caller's tenant applied.
    pub events_applied: String,
    /// Events of the caller's tenant not yet applied (counted among the next 100,000).
    pub events_behind: String,
    /// Age of the oldest of them (0 when caught up).
    pub seconds_behind: f64,
    /// True while the projection cannot go on (the others do); `scrm rebuild` or a
    /// fix resumes it.
    pub stopped: bool,
    /// Why: `BAD_EVENT`, `NEEDS_REBUILD`, `DATABASE`, `STALLED` or `OTHER` (the detail
    /// is in the log and in `projection_failures`, for operators).
    pub stopped_reason: Option<String>,
    pub stopped_since: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone)]
pub struct Job(pub engine::reads::JobRecord);

#[Object]
impl Job {
    async fn id(&self) -> ID {
        ids::encode("Job", &self.0.job_id)
    }
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn status(&self) -> JobStatus {
        match engine::reads::JobStatus::parse(&self.0.status) {
            engine::reads::JobStatus::Queued => JobStatus::Queued,
            engine::reads::JobStatus::Running => JobStatus::Running,
            engine::reads::JobStatus::Succeeded => JobStatus::Succeeded,
            engine::reads::JobStatus::Failed => JobStatus::Failed,
        }
    }
    async fn progress_done(&self) -> i32 {
        int(self.0.progress_done)
    }
    async fn progress_total(&self) -> i32 {
        int(self.0.progress_total)
    }
    async fn error_code(&self) -> Option<&str> {
        self.0.error_code.as_deref()
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// When a running job that is waiting (e.g. for tomorrow's share of a handover's
    /// group transfers) continues.
    async fn next_run_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_run_at
    }
    /// How many of the job's items ended how (handovers: customers and groups by
    /// outcome; they move on as customers answer).
    async fn outcomes(&self) -> Vec<JobOutcome> {
        serde_json::from_str::<Vec<engine::handover::OutcomeCount>>(&self.0.outcomes)
            .unwrap_or_default()
            .into_iter()
            .map(|o| JobOutcome {
                kind: if o.kind == engine::handover::items::GROUP {
                    HandoverItemKind::Group
                } else {
                    HandoverItemKind::Customer
                },
                status: int(o.status),
                code: o.code,
                count: int(o.count),
            })
            .collect()
    }
    /// A handover job's customers and groups, each with its outcome (customers first,
    /// by id), optionally only those with outcome `code`.
    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn handover_items(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
        code: Option<String>,
    ) -> async_graphql::Result<Page<HandoverItem>> {
        let limit = page_size(first)?;
        let after = after.map(|a| ids::uncursor(&a, 1)).transpose()?;
        let mut rows = reads(ctx)?
            .handover_items(
                &self.0.job_id,
                code.as_deref(),
                after.map(|mut a| a.remove(0)),
                limit + 1,
            )
            .await
            .map_err(ApiError::from)?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let mut page = Connection::new(false, more);
        for row in rows {
            let key = format!("{}/{}", row.kind, row.item_id);
            page.edges
                .push(Edge::new(ids::cursor(&[&key]), HandoverItem(row)));
        }
        Ok(page)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum HandoverItemKind {
    Customer,
    Group,
}

/// How many items of a job ended one way.
#[derive(Debug, Clone, SimpleObject)]
pub struct JobOutcome {
    pub kind: HandoverItemKind,
    /// WeCom's status: 1 accepted (or group moved), 2 waiting (or group scheduled),
    /// 3 refused by the customer, 4 successor at their customer limit, 5 no record.
    pub status: i32,
    /// `PLANNED`, `SCHEDULED`, `REQUESTED`, `ACCEPTED`, `REFUSED_CUSTOMER`,
    /// `REFUSED_LIMIT`, `TRANSFERRED`, or the rule that held it back (a user error
    /// code such as `HANDOVER_LIMIT_REACHED`).
    pub code: String,
    pub count: i32,
}

/// One customer or group of a handover job.
#[derive(Debug, Clone)]
pub struct HandoverItem(pub HandoverItemRecord);

#[Object]
impl HandoverItem {
    async fn kind(&self) -> HandoverItemKind {
        if self.0.kind == engine::handover::items::GROUP {
            HandoverItemKind::Group
        } else {
            HandoverItemKind::Customer
        }
    }
    async fn customer_id(&self) -> Option<ID> {
        (self.0.kind == engine::handover::items::CUSTOMER)
            .then(|| ids::encode("Customer", &self.0.item_id))
    }
    /// WeCom `chat_id` of the group.
    async fn group_id(&self) -> Option<&str> {
        (self.0.kind == engine::handover::items::GROUP).then_some(self.0.item_id.as_str())
    }
    /// The successor it goes to (null when it goes nowhere).
    async fn to_staff_id(&self) -> Option<&str> {
        self.0.to_staff_id.as_deref()
    }
    /// Groups: the tenant-local day it moves (or moved) on.
    async fn due_day(&self) -> Option<chrono::NaiveDate> {
        self.0
            .due_day
            .as_deref()
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    }
    /// See `JobOutcome.code`.
    async fn code(&self) -> &str {
        &self.0.code
    }
    /// See `JobOutcome.status`.
    async fn status(&self) -> i32 {
        int(self.0.status)
    }
}

/// The caller as the server sees them.
#[derive(Debug, Clone, SimpleObject)]
pub struct Viewer {
    pub subject: String,
    pub role: String,
    pub store_ids: Vec<String>,
    pub sees_personal_data: bool,
}
