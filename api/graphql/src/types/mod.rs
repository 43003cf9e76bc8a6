//! The objects the schema returns, one file per context. Nested lists are connections
//! like root lists; they are short (a customer's tags, groups, coupons), so they are
//! paged in memory.

mod analytics;
mod campaign;
mod channel;
mod customer;
mod job;
mod staff;

use async_graphql::SimpleObject;

pub use analytics::*;
pub use campaign::*;
pub use channel::*;
pub use customer::*;
pub use job::*;
pub use staff::*;

pub fn int(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// The caller as the server sees them.
#[derive(Debug, Clone, SimpleObject)]
pub struct Viewer {
    pub subject: String,
    pub role: String,
    pub store_ids: Vec<String>,
    pub sees_personal_data: bool,
}
