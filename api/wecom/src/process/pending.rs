//! The inbox loop: due notices in arrival order, one processor at a time, each notice's
//! plan read and executed, its row concluded or left pending for a retry. A failure is
//! the notice's own: it waits with backoff, and only the later notices of its subject
//! wait with it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use domain::values::TenantId;
use uuid::Uuid;

use engine::app::Engine;
use engine::commands::{Actor, CommandMeta};
use engine::lease::try_lease;

use super::execute::{Run, StepResult};
use super::plan::plan;
use super::reads::{enrich_add, enrich_members, fetched_steps};
use super::Plan;
use crate::client::WecomApi;
use crate::inbox::{self, InboxError, PendingNotice, Status};
use crate::notice::Notice;

/// Due notices one query takes; a call queries again until none is due.
const NOTICES_PER_CALL: i64 = 500;

/// Queries one call makes at most, so a row that never leaves `pending` cannot keep a
/// processor busy for ever.
const ROUNDS_PER_CALL: usize = 20;

/// Tries (API reads, store errors) a notice gets before it is marked failed.
pub const MAX_ATTEMPTS: i64 = 5;

/// How long a notice waits after its `attempts`-th failed try, or `None` when that was
/// the last one: 30 s, doubling, at most 10 minutes. Pure.
pub fn retry_delay(attempts: i64) -> Option<chrono::Duration> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let doublings = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
    let seconds = (30_i64 << doublings).min(600);
    Some(chrono::Duration::seconds(seconds))
}

/// Serialises processors within the process: notices about one customer must apply in
/// arrival order, and the endpoint starts a processor after every stored notice.
static PROCESSING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// Across server processes on one PostgreSQL database: `engine::lease`.

/// What one call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Processed {
    pub processed: usize,
    pub unhandled: usize,
    pub failed: usize,
    /// Left pending after a failed try (an API read, the store), to be tried again
    /// later.
    pub deferred: usize,
}

/// How one notice's run ended.
pub(super) enum Outcome {
    Concluded(Status, Option<String>),
    /// A try failed: pending until `at`, after `attempts` failed tries.
    Deferred {
        attempts: i64,
        at: DateTime<Utc>,
        error: String,
    },
}

/// A failed try of `row` (an API read, the store): pending again after the backoff, or
/// failed for good after the last attempt.
pub(super) fn retry_later(row: &PendingNotice, error: String, now: DateTime<Utc>) -> Outcome {
    let attempts = row.attempts + 1;
    match retry_delay(attempts) {
        Some(delay) => Outcome::Deferred {
            attempts,
            at: now + delay,
            error,
        },
        None => Outcome::Concluded(
            Status::Failed,
            Some(format!("{error} (gave up after {attempts} attempts)")),
        ),
    }
}

/// A plan that maps to no commands as the row's conclusion: unhandled with its reason,
/// or failed.
pub(super) fn not_applied(plan: Plan) -> Outcome {
    match plan {
        Plan::Unhandled(reason) => Outcome::Concluded(Status::Unhandled, Some(reason)),
        Plan::Invalid(reason) => {
            Outcome::Concluded(Status::Failed, Some(format!("INVALID: {reason}")))
        }
        Plan::Steps { .. } | Plan::Fetch { .. } => {
            Outcome::Concluded(Status::Failed, Some("INVALID: no steps".into()))
        }
    }
}

/// Turns due pending notices into commands and concludes their rows. A notice whose
/// processing fails (the store, an API read) waits for a retry with backoff and holds
/// back the later notices of its subject, while the others go on: one bad notice must
/// not stop every tenant's inbox. When another server process is processing, returns at
/// once: that process queries again before it stops, and the next tick here picks up
/// anything left.
pub async fn process_pending(
    engine: &Engine,
    api: &WecomApi,
    now: DateTime<Utc>,
) -> Result<Processed, InboxError> {
    let _serial = PROCESSING.lock().await;
    let Some(lease) = try_lease(&engine.db, "scrm-wecom-inbox").await? else {
        return Ok(Processed::default());
    };
    let done = process_rounds(engine, api, now).await;
    lease.release().await;
    done
}

/// The inbox as the job runner's periodic work: due notices applied on every tick.
#[derive(Debug, Clone)]
pub struct InboxTick {
    pub api: WecomApi,
}

#[async_trait::async_trait]
impl engine::jobs::Periodic for InboxTick {
    async fn tick(&self, jobs: &engine::jobs::Jobs) {
        if let Err(error) = process_pending(jobs.engine(), &self.api, jobs.clock().now()).await {
            tracing::error!(%error, "could not process WeCom notices");
        }
    }
}

async fn process_rounds(
    engine: &Engine,
    api: &WecomApi,
    now: DateTime<Utc>,
) -> Result<Processed, InboxError> {
    let mut done = Processed::default();
    for _ in 0..ROUNDS_PER_CALL {
        let rows = inbox::pending(&engine.db, now, NOTICES_PER_CALL).await?;
        if rows.is_empty() {
            break;
        }
        // Subjects whose notice waits since earlier in this round; from the next round
        // on the query itself holds their later notices back.
        let mut waiting = HashSet::new();
        for row in rows {
            let subject = row.subject.clone().map(|s| (row.tenant_id.clone(), s));
            if subject.as_ref().is_some_and(|s| waiting.contains(s)) {
                continue;
            }
            let outcome = match process_one(engine, api, &row, now).await {
                Ok(outcome) => outcome,
                Err(error) => retry_later(&row, format!("{}: {error}", error.code()), now),
            };
            if let (Outcome::Deferred { .. }, Some(subject)) = (&outcome, subject) {
                waiting.insert(subject);
            }
            // Failing to write the outcome down is the store failing, not this notice:
            // the call stops and the row is tried again as it was.
            record(engine, &row, outcome, now, &mut done).await?;
        }
    }
    Ok(done)
}

/// Writes a notice's outcome on its row, and counts it.
async fn record(
    engine: &Engine,
    row: &PendingNotice,
    outcome: Outcome,
    now: DateTime<Utc>,
    done: &mut Processed,
) -> Result<(), InboxError> {
    match outcome {
        Outcome::Concluded(status, error) => {
            match status {
                Status::Processed => done.processed += 1,
                Status::Unhandled => done.unhandled += 1,
                _ => done.failed += 1,
            }
            if let Some(error) = &error {
                tracing::info!(tenant = %row.tenant_id, kind = %row.kind,
                    status = status.as_str(), %error, "wecom notice not applied");
            }
            inbox::mark(
                &engine.db,
                &row.tenant_id,
                &row.dedup_key,
                status,
                error.as_deref(),
                now,
            )
            .await
        }
        Outcome::Deferred {
            attempts,
            at,
            error,
        } => {
            done.deferred += 1;
            tracing::warn!(tenant = %row.tenant_id, kind = %row.kind, attempts,
                retry_at = %at, %error, "wecom notice waits to be tried again");
            inbox::defer(
                &engine.db,
                &row.tenant_id,
                &row.dedup_key,
                attempts,
                at,
                &error,
            )
            .await
        }
    }
}

async fn process_one(
    engine: &Engine,
    api: &WecomApi,
    row: &PendingNotice,
    now: DateTime<Utc>,
) -> Result<Outcome, InboxError> {
    let concluded = |status, error: String| Ok(Outcome::Concluded(status, Some(error)));
    let tenant = match TenantId::parse(row.tenant_id.as_str()) {
        Ok(t) => t,
        Err(e) => return concluded(Status::Failed, format!("INVALID_TENANT: {e}")),
    };
    let notice = match Notice::parse(row.payload.as_bytes()) {
        Ok(n) => n,
        Err(e) => return concluded(Status::Failed, format!("UNPARSABLE: {e}")),
    };
    let (at, steps) = match plan(&notice) {
        Plan::Steps { at, steps } => {
            let steps = enrich_add(engine, api, &tenant, row, steps).await?;
            match enrich_members(engine, api, &tenant, row, &notice.kind, steps).await? {
                Ok(steps) => (at, steps),
                Err(plan) => return Ok(not_applied(plan)),
            }
        }
        Plan::Fetch { at, read } => {
            match fetched_steps(engine, api, &tenant, row, &read, now).await? {
                Ok(steps) => (at, steps),
                Err(outcome) => return Ok(outcome),
            }
        }
        other => return Ok(not_applied(other)),
    };
    // WeCom's state may not show an edit of ours yet: the notice must not undo it.
    let mut unanswered = Vec::new();
    for customer in crate::outbound::writes::edited(&steps) {
        unanswered.extend(engine::outbox::pending_for(&engine.db, &tenant, &customer).await?);
    }
    let steps = crate::outbound::writes::echo_safe(steps, &unanswered);
    let meta = CommandMeta::new(
        tenant.clone(),
        Actor::integration("wecom"),
        Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("wecom/{}", row.dedup_key).as_bytes(),
        ),
    );
    let key = format!("wecom:{}", row.dedup_key);
    let run = Run {
        engine,
        tenant: &tenant,
        at,
        meta: &meta,
        key: &key,
    };
    let mut rejections = Vec::new();
    for step in steps {
        if let StepResult::Rejected(code, message) = run.execute(step).await? {
            rejections.push(format!("{code}: {message}"));
        }
    }
    // After the add is in the log, so the welcome is recorded against the relation;
    // whatever the steps came to, the customer did add the guide in WeCom.
    if let Err(error) = crate::welcome::greet(engine, api, &tenant, &notice, now).await {
        tracing::error!(%tenant, %error, "the welcome message could not be sent");
    }
    if rejections.is_empty() {
        Ok(Outcome::Concluded(Status::Processed, None))
    } else {
        concluded(Status::Failed, rejections.join("; "))
    }
}
