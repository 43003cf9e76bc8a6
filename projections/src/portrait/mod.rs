//! The customer portrait (会员画像): identity, relations with remarks, tags (named through
//! the tag library, so renames and deletions show at once), groups, coupons, purchases,
//! lifecycle stage and last activity, listable by staff, store, tag, stage and dates.
//! The per-customer timeline is read from the customer's own stream, which is the
//! complete, ordered record of it (docs/adr/0005-projections.md).

pub mod fold;
pub mod rows;

/// Bump when the fold or the tables change: the projection is then rebuilt.
/// 2: the tag library's display order (`sort_order`).
/// 3: an index for the coupon expiry's scan of each tenant's due coupons.
/// 4: the first friend-add is the earliest, whatever order they arrive in (issue 16).
/// 5: relations carry the customer's stage and last activity (issue 19).
/// 6: customers erased under PIPL (`erased_at`, issue 20).
pub const VERSION: i64 = 6;
pub const NAME: &str = "customer_portrait";
