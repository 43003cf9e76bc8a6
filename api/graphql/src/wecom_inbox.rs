//! The WeCom inbox for operations: what arrived, and what the engine could not apply.

use async_graphql::{Enum, Object};
use chrono::{DateTime, Utc};

use ::wecom::inbox::Status;
use engine::reads::WecomNoticeRecord;

/// Where a stored WeCom notice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum WecomNoticeStatus {
    /// Stored, not applied yet (or waiting to be tried again, or behind an earlier
    /// notice of the same customer, group or tag library that waits).
    Pending,
    Processed,
    /// The engine has no command for it, or needs API credentials: `error` says which.
    Unhandled,
    /// A domain rule refused it, or its tries kept failing (WeCom's API, the store):
    /// `error` says why.
    Failed,
}

impl From<WecomNoticeStatus> for Status {
    fn from(status: WecomNoticeStatus) -> Self {
        match status {
            WecomNoticeStatus::Pending => Self::Pending,
            WecomNoticeStatus::Processed => Self::Processed,
            WecomNoticeStatus::Unhandled => Self::Unhandled,
            WecomNoticeStatus::Failed => Self::Failed,
        }
    }
}

impl WecomNoticeStatus {
    fn parse(raw: &str) -> Self {
        match raw {
            "processed" => Self::Processed,
            "unhandled" => Self::Unhandled,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// A notice WeCom delivered to the tenant's callback URL. Its payload is not shown.
pub struct WecomNotice(pub WecomNoticeRecord);

#[Object]
impl WecomNotice {
    /// The same for every redelivery of one notice.
    async fn dedup_key(&self) -> &str {
        &self.0.dedup_key
    }
    /// Event, change type and update detail, e.g.
    /// `change_external_contact/add_external_contact`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn status(&self) -> WecomNoticeStatus {
        WecomNoticeStatus::parse(&self.0.status)
    }
    /// Why it is unhandled or failed, or the last failed try of a pending one.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// Tries that failed so far (a WeCom API read, the store).
    async fn attempts(&self) -> i64 {
        self.0.attempts
    }
    async fn received_at(&self) -> DateTime<Utc> {
        self.0.received_at
    }
    async fn processed_at(&self) -> Option<DateTime<Utc>> {
        self.0.processed_at
    }
    /// A pending notice's next try after a failed one.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }
}
