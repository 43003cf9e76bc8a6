//! The command service: the one way anything writes to the event store.
//!
//! In front of cqrs-es it adds what its `CqrsFramework` lacks: a bounded retry when
//! another writer appended to the same stream first, an idempotency key per command
//! (a repeated request appends nothing and gets the original answer), an optional
//! expected version, tenant checks on the stream id, and the new version and global
//! position returned to the caller. See docs/adr/0001-command-service.md.

mod batch;
mod decision;
mod group_join;
mod outcome;

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::{Aggregate, AggregateError};
use domain::stamp::Stamped;
use domain::values::{StaffId, TenantId};
use serde::Serialize;
use tokio::sync::Notify;
use uuid::Uuid;

pub use batch::Batched;
pub use group_join::{GroupMembership, MembershipError};
pub use outcome::{CommandError, Outcome};

use decision::{check_tenant, decide, nothing_appended, request_hash, Decision};

use crate::db::Database;
use crate::store::{position_of, Store};

/// Who asked for a command: `staff:<userid>`, `system:<job>`, `integration:<name>`,
/// `operator:<id>`. Recorded with every event it causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    pub fn staff(staff: &StaffId) -> Self {
        Self(format!("staff:{staff}"))
    }

    pub fn system(job: &str) -> Self {
        Self(format!("system:{job}"))
    }

    pub fn integration(name: &str) -> Self {
        Self(format!("integration:{name}"))
    }

    pub fn operator(id: &str) -> Self {
        Self(format!("operator:{id}"))
    }

    /// An actor string as stored in event metadata (`kind:id`).
    pub fn from_stored(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the edge knows about a request besides the command itself.
#[derive(Debug, Clone)]
pub struct CommandMeta {
    pub tenant: TenantId,
    pub actor: Actor,
    /// Correlates every event a request causes, across streams.
    pub request_id: Uuid,
    /// A repeated request with the same key appends nothing new.
    pub idempotency_key: Option<String>,
    /// When set, the command applies only to exactly this stream version.
    pub expected_version: Option<usize>,
}

impl CommandMeta {
    pub fn new(tenant: TenantId, actor: Actor, request_id: Uuid) -> Self {
        Self {
            tenant,
            actor,
            request_id,
            idempotency_key: None,
            expected_version: None,
        }
    }

    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    pub fn expecting_version(mut self, version: usize) -> Self {
        self.expected_version = Some(version);
        self
    }
}

/// How hard to try when other writers keep winning the race for a stream.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(2),
        }
    }
}

/// Executes commands against the streams of one aggregate type.
#[allow(missing_debug_implementations)]
pub struct CommandService<A: Aggregate> {
    db: Database,
    store: Store<A>,
    retry: RetryPolicy,
    wake: Option<Arc<Notify>>,
}

impl<A, C> CommandService<A>
where
    A: Aggregate<Command = Stamped<C>, Services = ()>,
    A::Event: domain::pii::Personal,
    C: Clone + Serialize + Send + Sync,
{
    pub fn new(db: &Database) -> Self {
        Self {
            db: db.clone(),
            store: Store::new(db),
            retry: RetryPolicy::default(),
            wake: None,
        }
    }

    /// Signals `wake` after every append (the in-process projector listens).
    pub fn waking(mut self, wake: Arc<Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The current state and version of a stream (version 0: no events yet).
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, usize), CommandError<A::Error>> {
        let envelopes = self.store.load_events(aggregate_id).await?;
        let version = envelopes.last().map_or(0, |e| e.sequence);
        let mut aggregate = A::default();
        for envelope in envelopes {
            aggregate.apply(envelope.payload);
        }
        Ok((aggregate, version))
    }

    /// The events of a stream, oldest first.
    pub async fn history(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<A::Event>, CommandError<A::Error>> {
        let envelopes = self.store.load_events(aggregate_id).await?;
        Ok(envelopes.into_iter().map(|e| e.payload).collect())
    }

    /// Decides `command` against the current state of `aggregate_id` and appends the
    /// resulting events, retrying on a concurrent append up to the retry policy.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: Stamped<C>,
        meta: &CommandMeta,
    ) -> Result<Outcome, CommandError<A::Error>> {
        check_tenant(aggregate_id, meta)?;
        let hash = request_hash(&command.command);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let envelopes = self.store.load_events(aggregate_id).await?;
            let (aggregate, version, events, metadata) =
                match decide(&command, meta, &hash, envelopes).await? {
                    Decision::Replayed { version } => {
                        return Ok(Outcome {
                            position: self.position(aggregate_id, version).await?,
                            attempts: attempt,
                            ..nothing_appended(aggregate_id, version, true)
                        })
                    }
                    Decision::Unchanged { version } => {
                        return Ok(Outcome {
                            attempts: attempt,
                            ..nothing_appended(aggregate_id, version, false)
                        })
                    }
                    Decision::Append {
                        aggregate,
                        version,
                        events,
                        metadata,
                    } => (aggregate, version, events, metadata),
                };
            match self
                .store
                .append(aggregate_id, aggregate, version, events, metadata)
                .await
            {
                Ok(committed) => {
                    if let Some(wake) = &self.wake {
                        wake.notify_one();
                    }
                    let last = committed.last().map_or(version, |e| e.sequence);
                    return Ok(Outcome {
                        aggregate_id: aggregate_id.to_string(),
                        version: last,
                        position: self.position(aggregate_id, last).await?,
                        appended: committed.len(),
                        replayed: false,
                        attempts: attempt,
                    });
                }
                Err(AggregateError::AggregateConflict) if meta.expected_version.is_some() => {
                    return Err(CommandError::VersionConflict {
                        expected: version,
                        actual: version + 1,
                    });
                }
                Err(AggregateError::AggregateConflict) if attempt < self.retry.max_attempts => {
                    tokio::time::sleep(backoff(self.retry.base_delay, attempt)).await;
                }
                Err(AggregateError::AggregateConflict) => {
                    return Err(CommandError::Conflict { attempts: attempt });
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    async fn position(
        &self,
        aggregate_id: &str,
        sequence: usize,
    ) -> Result<Option<i64>, CommandError<A::Error>> {
        position_of(&self.db, A::TYPE, aggregate_id, sequence)
            .await
            .map_err(|e| CommandError::Store(e.to_string()))
    }
}

/// Jittered, growing pause before another attempt, so racing writers spread out.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let jitter = rand::random_range(0.5..1.5);
    base.mul_f64(f64::from(attempt) * jitter)
}
