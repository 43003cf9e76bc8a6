//! A customer's portrait and what hangs off it: relations, tags, groups, coupons,
//! timeline.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, Object, ID};
use chrono::{DateTime, Utc};
use engine::reads::{
    CouponRecord, CustomerRecord, DisplayNames, GroupRecord, Mentioned, PortraitParts,
    PortraitWants, RelationRecord, TagRecord,
};

use super::int;
use crate::errors::{ApiError, ApiResult};
use crate::guard::PiiGuard;
use crate::ids::{self, page_size};
use crate::paging::{page_vec, Page};
use crate::reads;
use crate::timeline::{describe, Language, TimelineEntry};

/// Where a customer stands in the repurchase funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
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

    /// Null once the customer is erased (see `erasedAt`).
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// When the customer's personal data was erased (PIPL): from then on nothing here
    /// identifies them, though what they did (adds, purchases, coupons) still counts.
    async fn erased_at(&self) -> Option<DateTime<Utc>> {
        self.0.erased_at
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

    /// The name of the channel code the customer first came through (null when the
    /// add carried no state a code of the tenant's has).
    async fn channel_name(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let Some(state) = &self.0.channel_state else {
            return Ok(None);
        };
        let mut names = crate::reads(ctx)?
            .channel_names(std::slice::from_ref(state))
            .await?;
        Ok(names.remove(state))
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
    ) -> ApiResult<Page<StaffRelation>> {
        let rows = match self.parts().and_then(|p| p.relations.clone()) {
            Some(rows) => rows,
            None => reads(ctx)?.relations(&self.0.customer_id).await?,
        };
        page_vec(rows.into_iter().map(StaffRelation).collect(), first, after)
    }

    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn tags(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> ApiResult<Page<CustomerTag>> {
        let rows = match self.parts().and_then(|p| p.tags.clone()) {
            Some(rows) => rows,
            None => reads(ctx)?.tags(&self.0.customer_id).await?,
        };
        page_vec(rows.into_iter().map(CustomerTag).collect(), first, after)
    }

    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn groups(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> ApiResult<Page<CustomerGroupMembership>> {
        let rows = match self.parts().and_then(|p| p.groups.clone()) {
            Some(rows) => rows,
            None => reads(ctx)?.groups(&self.0.customer_id).await?,
        };
        page_vec(
            rows.into_iter().map(CustomerGroupMembership).collect(),
            first,
            after,
        )
    }

    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn coupons(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> ApiResult<Page<Coupon>> {
        let rows = match self.parts().and_then(|p| p.coupons.clone()) {
            Some(rows) => rows,
            None => reads(ctx)?.coupons(&self.0.customer_id).await?,
        };
        page_vec(rows.into_iter().map(Coupon).collect(), first, after)
    }

    /// Everything that happened to the customer, newest first, from their own stream,
    /// in `language`, or else the tenant's (Chinese until its admin sets another).
    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
        language: Option<Language>,
    ) -> ApiResult<Page<TimelineEntry>> {
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
            None => {
                reads(ctx)?
                    .timeline(&self.0.customer_id, before, limit + 1)
                    .await?
            }
        };
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let mut parsed = Vec::with_capacity(rows.len());
        for row in &rows {
            let event: domain::customer::CustomerEvent = serde_json::from_str(&row.payload)
                .map_err(|source| UnreadableEvent {
                    sequence: row.sequence,
                    source,
                })
                .map_err(ApiError::internal)?;
            parsed.push(event);
        }
        reads(ctx)?
            .open_customer_events(&self.0.customer_id, &mut parsed)
            .await?;
        let events: Vec<_> = rows.into_iter().zip(parsed).collect();
        // An as-of portrait brings the names of its instant; otherwise today's are read.
        let as_of_names = self
            .parts()
            .filter(|_| before.is_none())
            .and_then(|p| p.names.clone());
        let names = if let Some(names) = as_of_names {
            names
        } else if summaries_wanted(ctx) {
            let mentioned = Mentioned::of(events.iter().map(|(_, event)| event));
            reads(ctx)?.display_names(&mentioned).await?
        } else {
            DisplayNames::default()
        };
        let language = if summaries_wanted(ctx) {
            crate::timeline::language(ctx, language).await?
        } else {
            language.unwrap_or_default()
        };
        let mut page = Connection::new(before.is_some(), more);
        for (row, event) in &events {
            let metadata: std::collections::HashMap<String, String> =
                serde_json::from_str(&row.metadata).unwrap_or_default();
            let (occurred_at, summary) = describe(event, &names, language);
            page.edges.push(Edge::new(
                ids::cursor(&[&row.sequence.to_string()]),
                TimelineEntry {
                    sequence: int(row.sequence),
                    occurred_at,
                    kind: row.event_type.clone(),
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

/// A stored event of the customer's stream that no longer reads as a domain event.
#[derive(Debug, thiserror::Error)]
#[error("event {sequence}")]
struct UnreadableEvent {
    sequence: i64,
    #[source]
    source: serde_json::Error,
}

/// Whether the timeline's entries are asked for their `summary`: only then are the
/// names of the staff, tags and groups they mention read.
fn summaries_wanted(ctx: &Context<'_>) -> bool {
    ctx.look_ahead()
        .field("edges")
        .field("node")
        .field("summary")
        .exists()
        || ctx.look_ahead().field("nodes").field("summary").exists()
}
