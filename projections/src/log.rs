//! The event log in global order: every committed event exactly once, in an order every
//! reader agrees on, never skipping a slow transaction (docs/adr/0002-global-order.md).

use domain::customer::CustomerEvent;
use domain::group::GroupEvent;
use domain::staff::StaffEvent;
use domain::tags::TagLibraryEvent;
use serde::{Deserialize, Serialize};

use crate::db::Database;
use crate::error::ProjectionError;
use crate::tally::TenantTally;

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. SQL that both backends
/// accept (sqlx binds `$1` on SQLite too) is written once.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Database::Postgres($pool) => $body,
            $crate::db::Database::Sqlite($pool) => $body,
        }
    };
}

/// Where a reader stands. On PostgreSQL the order is (txid, position); on SQLite, whose
/// single writer commits in position order, `txid` is always 0.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Checkpoint {
    pub txid: i64,
    pub position: i64,
}

impl Checkpoint {
    pub const START: Checkpoint = Checkpoint {
        txid: 0,
        position: 0,
    };
}

/// An event of any aggregate, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    Customer(CustomerEvent),
    Group(GroupEvent),
    Staff(StaffEvent),
    TagLibrary(TagLibraryEvent),
}

impl AnyEvent {
    /// The aggregate type it is stored under.
    pub fn aggregate_type(&self) -> &'static str {
        match self {
            AnyEvent::Customer(_) => "Customer",
            AnyEvent::Group(_) => "CustomerGroup",
            AnyEvent::Staff(_) => "Staff",
            AnyEvent::TagLibrary(_) => "TagLibrary",
        }
    }
}

/// One event as read from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub checkpoint: Checkpoint,
    pub tenant: String,
    /// The stream's local id (after `<tenant>:`): external userid, staff id, group id...
    pub local_id: String,
    pub sequence: i64,
    pub event: AnyEvent,
}

pub(crate) type Row = (i64, i64, String, String, i64, String);

/// Every aggregate type the log holds.
pub const AGGREGATE_TYPES: &[&str] = &["Customer", "CustomerGroup", "Staff", "TagLibrary"];

/// A page of the log as one reader takes it.
#[derive(Debug, Default)]
pub struct Page {
    /// The events of the aggregate types asked for, parsed, in global order.
    pub events: Vec<LoggedEvent>,
    /// The last row read, of whatever type: where the reader stands after the page.
    pub last: Option<Checkpoint>,
    /// Every row read, by tenant.
    pub tally: TenantTally,
}

impl Page {
    /// Rows read, parsed or passed over.
    pub fn rows(&self) -> i64 {
        self.tally.iter().map(|(_, n, _)| n).sum()
    }
}

/// The PostgreSQL reader's SQL, for tests that check its plan.
pub const READ_SQL_POSTGRES: &str = crate::sql::READ_PG;

/// Up to `limit` rows after `after`, in global order, with the events of the aggregate
/// types in `reads` parsed. On PostgreSQL only events of transactions older than every
/// transaction still running are returned, so nothing can later appear behind the last
/// one returned.
pub async fn read_after(
    db: &Database,
    after: Checkpoint,
    limit: i64,
    reads: &[&str],
) -> Result<Page, ProjectionError> {
    match db {
        Database::Postgres(pool) => {
            crate::sql::pg::read_after(&mut *pool.acquire().await?, after, limit, reads).await
        }
        Database::Sqlite(pool) => {
            crate::sql::lite::read_after(&mut *pool.acquire().await?, after, limit, reads).await
        }
    }
}

/// The page of `rows`, parsing those whose type is in `reads` and opening their sealed
/// personal data with `keys` (fetched for [`crate::pii::streams_to_open`] of them).
pub(crate) fn page_of(
    rows: Vec<Row>,
    reads: &[&str],
    keys: &crate::pii::Keys,
) -> Result<Page, ProjectionError> {
    let mut page = Page::default();
    for row in rows {
        let (txid, position, aggregate_type, aggregate_id, sequence, payload) = row;
        let at = Checkpoint { txid, position };
        let (tenant, local_id) =
            aggregate_id
                .split_once(':')
                .ok_or_else(|| ProjectionError::BadEvent {
                    position,
                    reason: format!("stream id {aggregate_id:?} has no tenant"),
                })?;
        page.tally.count(tenant, at);
        page.last = Some(at);
        if !reads.contains(&aggregate_type.as_str()) {
            continue;
        }
        let bad = |reason: String| ProjectionError::BadEvent { position, reason };
        let mut event = parse_event(&aggregate_type, &payload).map_err(|e| bad(e.to_string()))?;
        if let AnyEvent::Customer(e) = &mut event {
            keys.open(&aggregate_id, e)
                .map_err(|e| bad(e.to_string()))?;
        }
        page.events.push(LoggedEvent {
            checkpoint: at,
            tenant: tenant.to_string(),
            local_id: local_id.to_string(),
            sequence,
            event,
        });
    }
    Ok(page)
}

/// Parses a stored payload by its aggregate type.
pub fn parse_event(aggregate_type: &str, payload: &str) -> Result<AnyEvent, serde_json::Error> {
    use serde::de::Error;
    Ok(match aggregate_type {
        "Customer" => AnyEvent::Customer(serde_json::from_str(payload)?),
        "CustomerGroup" => AnyEvent::Group(serde_json::from_str(payload)?),
        "Staff" => AnyEvent::Staff(serde_json::from_str(payload)?),
        "TagLibrary" => AnyEvent::TagLibrary(serde_json::from_str(payload)?),
        other => {
            return Err(serde_json::Error::custom(format!(
                "unknown aggregate type {other}"
            )))
        }
    })
}
