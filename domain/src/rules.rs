//! Every number the business depends on, in one place (see DOMAIN.md). Each is
//! enforced by the aggregate that holds the data it counts.

use chrono::Duration;

/// A customer has 24 hours to refuse a handover; after that it completes.
pub fn handover_window() -> Duration {
    Duration::hours(24)
}

/// A customer can be handed over at most this many times ...
pub const HANDOVERS_PER_PERIOD: usize = 2;

/// ... within this period.
pub fn handover_period() -> Duration {
    Duration::days(90)
}

/// A resigned handover is possible for staff who left at most this long ago.
pub fn resigned_handover_max_age() -> Duration {
    Duration::days(365)
}

/// WeCom's limits on the per-relation remark and description (characters).
pub const REMARK_MAX_CHARS: usize = 20;
pub const DESCRIPTION_MAX_CHARS: usize = 150;

/// A customer's display name as stored in the portrait (characters).
pub const CUSTOMER_NAME_MAX_CHARS: usize = 64;

/// The reason an admin gives for erasing a customer (characters). The reason stays in
/// the log in the clear: it should say why (e.g. "客户申请删除"), not who.
pub const ERASURE_REASON_MAX_CHARS: usize = 200;

/// Default members per customer group (100 in WeCom 3.0, 200 in 2020): a tenant setting.
pub const DEFAULT_GROUP_CAPACITY: u32 = 500;
/// The largest capacity a tenant may configure.
pub const MAX_GROUP_CAPACITY: u32 = 2_000;
/// A group changes owner at most this many times per [`handover_period`].
pub const GROUP_TRANSFERS_PER_PERIOD: usize = 2;
/// Groups of one original owner moved per calendar day (tenant time zone).
pub const GROUP_TRANSFERS_PER_OWNER_PER_DAY: usize = 300;

/// A staff member's customer limit by default, and how far it can be expanded.
pub const DEFAULT_CUSTOMER_LIMIT: u32 = 5_000;
pub const MAX_CUSTOMER_LIMIT: u32 = 20_000;

/// Tag library: active tags per tenant, and the length of tag and tag group names.
pub const MAX_TAGS_PER_TENANT: usize = 3_000;
pub const TAG_NAME_MAX_CHARS: usize = 30;

/// WeCom's APIs take at most this many customers or groups per call.
pub const WECOM_BATCH_SIZE: usize = 100;

/// `add_msg_template` takes at most this many customers per task (最多可一次指定1万个客户).
pub const CUSTOMERS_PER_MASS_MESSAGE_TASK: usize = 10_000;
