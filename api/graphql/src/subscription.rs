//! Pushed updates over WebSocket (`graphql-transport-ws`, see `crate::ws`): a job as it
//! progresses. Reads go through the connection's tenant-scoped [`Reads`] in short
//! transactions, so an open socket holds no database connection between updates.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Subscription as GraphqlSubscription, ID};
use futures::stream::{self, Stream};

use super::errors::ApiError;
use super::guard::{caller, RoleGuard, OPS_AND_ANALYSTS};
use super::ids;
use super::reads;
use super::types::Job;
use super::ApiState;
use engine::auth::{Caller, Role};
use engine::reads::{JobRecord, Reads};

/// How often a watched job is read again. A handover of 20,000 customers takes seconds,
/// so a quarter of a second shows its progress without loading the database.
pub const JOB_POLL: Duration = Duration::from_millis(250);
/// Subscriptions one socket may hold at once.
pub const MAX_SUBSCRIPTIONS_PER_SOCKET: usize = 20;

/// The live subscriptions of one socket (in the connection's data).
#[derive(Debug, Clone, Default)]
pub struct SocketSlots(Arc<AtomicUsize>);

/// One taken slot, given back when its stream ends or the client stops it.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SocketSlots {
    fn take(&self) -> Result<Slot, ApiError> {
        let taken = self.0.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.0.clone());
        if taken >= MAX_SUBSCRIPTIONS_PER_SOCKET {
            return Err(ApiError::BadInput(format!(
                "at most {MAX_SUBSCRIPTIONS_PER_SOCKET} subscriptions per connection"
            )));
        }
        Ok(slot)
    }
}

/// Whether `caller` may see `job`: operations and admins every job of the tenant (the
/// reads are tenant-scoped), others the jobs they started.
pub(super) fn visible(job: Option<JobRecord>, caller: &Caller) -> Option<JobRecord> {
    job.filter(|j| {
        matches!(caller.role, Role::Operations | Role::Admin)
            || j.created_by == caller.actor().as_str()
    })
}

fn finished(job: &JobRecord) -> bool {
    matches!(job.status.as_str(), "succeeded" | "failed")
}

/// What a watcher sees change.
fn same_state(a: &JobRecord, b: &JobRecord) -> bool {
    a.status == b.status
        && a.progress_done == b.progress_done
        && a.progress_total == b.progress_total
        && a.outcomes == b.outcomes
        && a.next_run_at == b.next_run_at
        && a.error_code == b.error_code
}

#[derive(Debug)]
pub struct Subscription;

#[GraphqlSubscription]
impl Subscription {
    /// A job of the caller's tenant as it progresses: its state now, then every change,
    /// ending after it succeeds or fails. Visible to whoever started it, operations and
    /// admins (like `job`).
    #[graphql(guard = "RoleGuard(OPS_AND_ANALYSTS)")]
    async fn job_updated(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Job>>> {
        let caller = caller(ctx)?.clone();
        let local = ids::decode("Job", &id)?;
        let reads = reads(ctx)?.clone();
        let state = ctx
            .data::<Arc<ApiState>>()
            .map_err(|_| ApiError::internal("no API state in context"))?
            .clone();
        let slot = ctx
            .data_opt::<SocketSlots>()
            .ok_or(ApiError::Unauthenticated)?
            .take()?;
        // A subscription's resolver must name async-graphql's own `Result`, so the read
        // error converts here.
        let first = visible(reads.job(&local).await.map_err(ApiError::from)?, &caller);
        reads.release().await;
        let Some(first) = first else {
            return Err(ApiError::NotFound("no such job".into()).into());
        };
        struct Watch {
            state: Arc<ApiState>,
            reads: Reads,
            caller: Caller,
            job_id: String,
            last: Option<JobRecord>,
            next: Option<JobRecord>,
            failed: bool,
            _slot: Slot,
        }
        let watch = Watch {
            state,
            reads,
            caller,
            job_id: local,
            last: None,
            next: Some(first),
            failed: false,
            _slot: slot,
        };
        Ok(stream::unfold(watch, |mut w| async move {
            loop {
                if let Some(job) = w.next.take() {
                    if w.last.as_ref().is_some_and(|l| same_state(l, &job)) {
                        // Nothing new; read again after the pause below.
                    } else {
                        w.last = Some(job.clone());
                        return Some((Ok(Job(job)), w));
                    }
                }
                if w.failed || w.last.as_ref().is_some_and(finished) {
                    return None;
                }
                tokio::time::sleep(JOB_POLL).await;
                let read = {
                    // A poll counts as a running request of its caller, so sockets
                    // cannot take more of the pool than requests can; a poll that finds
                    // no permit waits for the next turn.
                    let Some(_permit) = w.state.in_flight.enter(&w.caller).await else {
                        continue;
                    };
                    // The previous item's fields have been resolved by now.
                    w.reads.release().await;
                    let read = w.reads.job(&w.job_id).await;
                    w.reads.release().await;
                    read
                };
                match read {
                    Ok(job) => match visible(job, &w.caller) {
                        Some(job) => w.next = Some(job),
                        None => return None,
                    },
                    Err(e) => {
                        w.failed = true;
                        return Some((Err(ApiError::from(e).into()), w));
                    }
                }
            }
        }))
    }
}
