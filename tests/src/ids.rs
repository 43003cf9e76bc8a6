//! Short constructors for the ids and instants tests use.

use chrono::{DateTime, TimeZone, Utc};
use domain::stamp::stream_id;
use domain::values::{ExternalUserId, GroupId, StaffId, TenantId};

pub fn tenant(name: &str) -> TenantId {
    TenantId::parse_slug(name).expect("tenant")
}

pub fn staff(id: &str) -> StaffId {
    StaffId::parse(id).expect("staff id")
}

pub fn customer(id: &str) -> ExternalUserId {
    ExternalUserId::parse(id).expect("external userid")
}

pub fn group(id: &str) -> GroupId {
    GroupId::parse(id).expect("group id")
}

pub fn customer_stream(t: &TenantId, c: &str) -> String {
    stream_id(t, c)
}

/// A fixed instant: 2026-03-01 + `minutes`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
}
