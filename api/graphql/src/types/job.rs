//! Jobs (rebuilds, handovers) and the items of a handover job.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use engine::reads::HandoverItemRecord;

use super::int;
use crate::errors::ApiResult;
use crate::ids::{self, page_size};
use crate::paging::{key_cursor, Page, Paging};
use crate::{reads, state};

/// Items per second between `started` and `until`, and the seconds the rest would
/// take at that rate: `None` before anything is done. Pure.
pub fn pace(
    done: i64,
    total: i64,
    started: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
) -> (Option<f64>, Option<i64>) {
    let Some(started) = started else {
        return (None, None);
    };
    let seconds = (until - started).num_milliseconds() as f64 / 1000.0;
    if done <= 0 || seconds <= 0.0 {
        return (None, None);
    }
    let rate = done as f64 / seconds;
    let left = (total - done).max(0) as f64;
    (Some(rate), Some((left / rate).ceil() as i64))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    /// The member for a job row's stored status.
    pub fn of(raw: &str) -> Self {
        match engine::reads::JobStatus::parse(raw) {
            engine::reads::JobStatus::Queued => Self::Queued,
            engine::reads::JobStatus::Running => Self::Running,
            engine::reads::JobStatus::Succeeded => Self::Succeeded,
            engine::reads::JobStatus::Failed => Self::Failed,
        }
    }
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
        JobStatus::of(&self.0.status)
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
    /// Progress items per second since the job started (until it finished).
    async fn rate_per_second(&self, ctx: &Context<'_>) -> ApiResult<Option<f64>> {
        Ok(self.pace(ctx)?.0)
    }
    /// Seconds the rest of the job would take at `ratePerSecond`; null before any
    /// progress and once finished.
    async fn eta_seconds(&self, ctx: &Context<'_>) -> ApiResult<Option<i32>> {
        let finished = self.0.finished_at.is_some();
        Ok(self.pace(ctx)?.1.filter(|_| !finished).map(int))
    }
    /// A WeCom import's phase and what it brought in so far (other jobs: null).
    async fn wecom_import(&self, ctx: &Context<'_>) -> ApiResult<Option<WecomImport>> {
        if self.0.kind != wecom::import::KIND {
            return Ok(None);
        }
        let Some(record) = reads(ctx)?.wecom_import(&self.0.job_id).await? else {
            return Ok(None);
        };
        let until = self.0.finished_at.unwrap_or(state(ctx)?.clock.now());
        let per_second = |n: i64| pace(n, n, self.0.started_at, until).0;
        Ok(Some(WecomImport {
            phase: record.phase,
            relations_seen: int(record.relations_seen),
            relations_imported: int(record.relations_imported),
            events: int(record.events),
            groups: int(record.groups),
            rejected: int(record.rejected),
            throttled: int(record.throttled),
            relations_per_second: per_second(record.relations_seen),
            events_per_second: per_second(record.events),
        }))
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
    /// A handover's mode: in WeCom, or in the engine alone (null for other jobs).
    async fn wecom_mode(&self, ctx: &Context<'_>) -> ApiResult<Option<WecomMode>> {
        if self.0.kind != engine::handover::KIND {
            return Ok(None);
        }
        let reads = reads(ctx)?;
        let called = !reads.wecom_calls(&self.0.job_id, None, 1).await?.is_empty();
        Ok(Some(if called || reads.acts_in_wecom().await? {
            WecomMode::Wecom
        } else {
            WecomMode::EngineOnly
        }))
    }
    /// The calls the job asked WeCom to make, with their attempts and answers.
    #[graphql(complexity = "(first.max(0) as usize) * child_complexity")]
    async fn wecom_calls(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> ApiResult<Page<WecomCall>> {
        let (paging, after) = Paging::keyed(first, after.as_deref())?;
        let rows = reads(ctx)?
            .wecom_calls(&self.0.job_id, after, paging.fetch())
            .await?;
        Ok(paging.page(rows, WecomCall, |c| key_cursor(&c.0.call_id)))
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
    ) -> ApiResult<Page<HandoverItem>> {
        let limit = page_size(first)?;
        let after = after.map(|a| ids::uncursor(&a, 1)).transpose()?;
        let mut rows = reads(ctx)?
            .handover_items(
                &self.0.job_id,
                code.as_deref(),
                after.map(|mut a| a.remove(0)),
                limit + 1,
            )
            .await?;
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

/// Whether a handover happens in WeCom or in the engine alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum WecomMode {
    /// WeCom is asked to transfer each customer and group; its answers conclude them.
    Wecom,
    /// The tenant has no WeCom API configured: the engine records the handover and
    /// concludes it on the 24-hour rule as it models it. Nothing moves in WeCom.
    EngineOnly,
}

/// Where a call to WeCom stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum WecomCallStatus {
    Pending,
    /// Sent, no answer on record: the next attempt asks WeCom what happened first.
    Sending,
    Done,
    Failed,
}

/// One call a job asked WeCom to make, with its attempts and WeCom's answer.
#[derive(Debug, Clone)]
pub struct WecomCall(pub engine::outbox::CallRecord);

#[Object]
impl WecomCall {
    async fn id(&self) -> &str {
        &self.0.call_id
    }
    /// The API after `/cgi-bin/`, e.g. `externalcontact/resigned/transfer_customer`.
    async fn api(&self) -> &str {
        &self.0.api
    }
    async fn status(&self) -> WecomCallStatus {
        match self.0.status.as_str() {
            "sending" => WecomCallStatus::Sending,
            "done" => WecomCallStatus::Done,
            "failed" => WecomCallStatus::Failed,
            _ => WecomCallStatus::Pending,
        }
    }
    async fn attempts(&self) -> i32 {
        int(self.0.attempts)
    }
    /// The JSON body sent.
    async fn request(&self) -> &str {
        &self.0.request
    }
    /// WeCom's JSON answer, per customer or group.
    async fn answer(&self) -> Option<&str> {
        self.0.answer.as_deref()
    }
    /// Why the last attempt got no usable answer (WeCom busy, unreachable).
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

impl Job {
    fn pace(&self, ctx: &Context<'_>) -> ApiResult<(Option<f64>, Option<i64>)> {
        let until = self.0.finished_at.unwrap_or(state(ctx)?.clock.now());
        Ok(pace(
            self.0.progress_done,
            self.0.progress_total,
            self.0.started_at,
            until,
        ))
    }
}

/// Where a first import from WeCom stands (issue 16). Counts made on a page read
/// again after a restart count it twice; `relationsImported` and `events` count only
/// what was appended.
#[derive(Debug, Clone, SimpleObject)]
pub struct WecomImport {
    /// `tags`, `staff`, `customers`, `groups` or `done`.
    pub phase: String,
    /// Relations (customer and guide) WeCom listed.
    pub relations_seen: i32,
    /// Relations that brought something new into the engine.
    pub relations_imported: i32,
    /// Events the relations appended.
    pub events: i32,
    pub groups: i32,
    /// Relations, group steps or tag changes the domain refused.
    pub rejected: i32,
    /// WeCom's answers asking to slow down (45009, 45011, 45033), waited out.
    pub throttled: i32,
    pub relations_per_second: Option<f64>,
    pub events_per_second: Option<f64>,
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn pace_is_the_rate_so_far_and_the_time_the_rest_takes_at_it() {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let later = start + chrono::Duration::seconds(10);
        assert_eq!(pace(25, 100, Some(start), later), (Some(2.5), Some(30)));
        assert_eq!(pace(0, 100, Some(start), later), (None, None));
        assert_eq!(pace(5, 100, None, later), (None, None));
    }
}
