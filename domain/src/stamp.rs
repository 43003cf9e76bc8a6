//! What every command carries in from the edge, and how stream ids are formed.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::values::TenantId;

/// A command together with the instant it happens at. The domain never reads a
/// clock: the edge (HTTP handler, job, callback, fixture generator) decides `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped<C> {
    pub at: DateTime<Utc>,
    pub command: C,
}

impl<C> Stamped<C> {
    pub fn new(at: DateTime<Utc>, command: C) -> Self {
        Self { at, command }
    }
}

/// The calendar day of `at` in the tenant's time zone: daily caps count these days,
/// not UTC days (a Shanghai store's day starts at 16:00 UTC).
pub fn local_day(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// Stream ids are `<tenant>:<local id>`. Ids never contain a colon (see `values`), so
/// the tenant can always be read back from the stream id, and every row keyed by
/// stream id is keyed by tenant too.
pub fn stream_id(tenant: &TenantId, local: &str) -> String {
    format!("{tenant}:{local}")
}

/// The tenant part of a stream id built by [`stream_id`].
pub fn tenant_of(stream_id: &str) -> Option<&str> {
    stream_id.split_once(':').map(|(tenant, _)| tenant)
}

/// The local part of a stream id built by [`stream_id`].
pub fn local_id(stream_id: &str) -> &str {
    stream_id
        .split_once(':')
        .map_or(stream_id, |(_, local)| local)
}

/// The tag library is one stream per tenant.
pub const TAG_LIBRARY_LOCAL_ID: &str = "library";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn local_day_follows_the_tenant_time_zone() {
        let late_utc = Utc.with_ymd_and_hms(2026, 3, 1, 17, 0, 0).unwrap();
        assert_eq!(
            local_day(late_utc, chrono_tz::Asia::Shanghai),
            NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
        );
        assert_eq!(
            local_day(late_utc, chrono_tz::UTC),
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
        );
    }

    #[test]
    fn stream_ids_round_trip_the_tenant() {
        let tenant = TenantId::parse("acme").unwrap();
        let id = stream_id(&tenant, "wo123");
        assert_eq!(id, "acme:wo123");
        assert_eq!(tenant_of(&id), Some("acme"));
    }
}
