//! The tag library, the funnels and the projections' progress.

use async_graphql::{ComplexObject, SimpleObject};
use engine::reads::{self, LibraryTagRecord, TagGroupRecord};

use super::int;
use crate::errors::ApiResult;
use crate::paging::{page_vec, Page};

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
    async fn tags(&self, first: i32, after: Option<String>) -> ApiResult<Page<LibraryTag>> {
        page_vec(self.tags.clone(), first, after)
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
    /// By CHANNEL, the name of the channel code whose state the key is (null for a
    /// kind of add, or a state no code of the tenant's carries).
    pub name: Option<String>,
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

impl TagGroup {
    /// A group of the library with those of `tags` that belong to it.
    pub fn new(group: TagGroupRecord, tags: &[LibraryTagRecord]) -> Self {
        Self {
            tags: tags
                .iter()
                .filter(|t| t.group_id == group.group_id)
                .map(|t| LibraryTag {
                    tag_id: t.tag_id.clone(),
                    name: t.name.clone(),
                    order: t.sort_order,
                })
                .collect(),
            group_id: group.group_id,
            name: group.name,
            order: group.sort_order,
        }
    }
}

impl From<reads::FunnelLine> for FunnelLine {
    fn from(r: reads::FunnelLine) -> Self {
        Self {
            repurchase_rate: rate(r.repurchase, r.first_purchase),
            key: r.key,
            name: None,
            friends: int(r.friends),
            first_purchase: int(r.first_purchase),
            repurchase: int(r.repurchase),
            loyal: int(r.loyal),
        }
    }
}

impl From<reads::RedemptionLine> for RedemptionLine {
    fn from(r: reads::RedemptionLine) -> Self {
        Self {
            redemption_rate: rate(r.redeemed, r.issued),
            key: r.key,
            issued: int(r.issued),
            redeemed: int(r.redeemed),
            expired: int(r.expired),
        }
    }
}

fn rate(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
