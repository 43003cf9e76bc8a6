//! Many commands on distinct streams in one read and one write.
//!
//! A job that asks the same thing of thousands of streams (a handover requests every
//! customer of a departed guide) spends nearly all its time on round trips when each
//! command loads, appends and commits on its own. Here one query loads every stream of
//! a batch, each command is decided on its own state exactly as [`CommandService::execute`]
//! decides it, and every resulting event is appended in one transaction. The
//! guarantees are the same: the stream's primary key still detects a concurrent
//! append, in which case the whole write is rolled back and each of those commands runs
//! alone through `execute` (with its retries); the idempotency keys in the events make
//! that second try a replay wherever the first one landed.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, EventEnvelope};
use domain::stamp::{tenant_of, Stamped};
use serde::Serialize;
use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::decision::{self, check_tenant, nothing_appended, request_hash, Decision};
use super::{CommandError, CommandMeta, CommandService, Outcome};
use crate::db::Database;
use crate::outbox::{self, Call};

/// Commands that fell back to running alone at once: each is its own stream.
const FALLBACK_CONCURRENCY: usize = 8;
/// Rows per INSERT on SQLite, far below its bound-parameter limit at 6 per row.
const SQLITE_ROWS_PER_INSERT: usize = 1_000;

/// One command of a batch: which stream, what, and the request it belongs to.
#[derive(Debug, Clone)]
pub struct Batched<C> {
    pub aggregate_id: String,
    pub command: Stamped<C>,
    pub meta: CommandMeta,
}

/// A command decided against its loaded state, waiting for the batch's write.
struct Appending<A: Aggregate> {
    index: usize,
    version: usize,
    events: Vec<EventEnvelope<A>>,
}

type Answer<A> = Result<Outcome, CommandError<<A as Aggregate>::Error>>;

impl<A, C> CommandService<A>
where
    A: Aggregate<Command = Stamped<C>, Services = ()>,
    A::Event: domain::pii::Personal,
    C: Clone + Serialize + Send + Sync,
{
    /// Executes `batch`, one answer per command in the same order. Answers are those
    /// `execute` would give, except that a replay in a batch reports no position.
    pub async fn execute_many(&self, batch: Vec<Batched<C>>) -> Vec<Answer<A>> {
        let mut seen = HashSet::new();
        if !batch.iter().all(|b| seen.insert(b.aggregate_id.as_str())) {
            // Two commands on one stream would be decided on the same state.
            return self.one_by_one(&batch).await;
        }
        match self.try_many(&batch, &|_| Vec::new()).await {
            Ok(answers) => answers,
            Err(Conflict) => self.one_by_one(&batch).await,
        }
    }

    /// [`Self::execute_many`] for commands whose events ask WeCom to act: `calls` turns
    /// the commands that append (replays excluded: their calls were written with their
    /// events) into the calls they ask for, and those are written in the transaction
    /// that appends the events (docs/adr/0013-wecom-outbox.md). A concurrent writer on
    /// one of the streams makes the batch decide again on fresh state, up to the retry
    /// policy; it never falls back to one command at a time, which would separate the
    /// events from their calls.
    pub async fn execute_many_calling(
        &self,
        batch: Vec<Batched<C>>,
        calls: &(dyn Fn(&[&Batched<C>]) -> Vec<Call> + Sync),
    ) -> Vec<Answer<A>> {
        let mut seen = HashSet::new();
        if !batch.iter().all(|b| seen.insert(b.aggregate_id.as_str())) {
            let message = "one stream twice in a batch that calls WeCom".to_string();
            return batch
                .iter()
                .map(|_| Err(CommandError::Store(message.clone())))
                .collect();
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_many(&batch, calls).await {
                Ok(answers) => return answers,
                Err(Conflict) if attempt < self.retry.max_attempts => {
                    tokio::time::sleep(super::backoff(self.retry.base_delay, attempt)).await;
                }
                Err(Conflict) => {
                    return batch
                        .iter()
                        .map(|_| Err(CommandError::Conflict { attempts: attempt }))
                        .collect()
                }
            }
        }
    }

    /// [`CommandService::execute`] for one command whose events ask WeCom to act: its
    /// calls are written with its events (see [`Self::execute_many_calling`]).
    pub async fn execute_calling(
        &self,
        aggregate_id: &str,
        command: Stamped<C>,
        meta: &CommandMeta,
        calls: &(dyn Fn(&[&Batched<C>]) -> Vec<Call> + Sync),
    ) -> Answer<A> {
        let batch = vec![Batched {
            aggregate_id: aggregate_id.to_string(),
            command,
            meta: meta.clone(),
        }];
        self.execute_many_calling(batch, calls)
            .await
            .pop()
            .unwrap_or_else(|| Err(CommandError::Store("unanswered".into())))
    }

    async fn one_by_one(&self, batch: &[Batched<C>]) -> Vec<Answer<A>> {
        let mut answers = Vec::with_capacity(batch.len());
        // Chunks joined in turn rather than a buffered stream: the stream's closure over
        // borrowed commands makes the job's future fail to be provably `Send`.
        for chunk in batch.chunks(FALLBACK_CONCURRENCY) {
            let running = chunk
                .iter()
                .map(|b| self.execute(&b.aggregate_id, b.command.clone(), &b.meta));
            answers.extend(futures::future::join_all(running).await);
        }
        answers
    }

    async fn try_many(
        &self,
        batch: &[Batched<C>],
        calls: &(dyn Fn(&[&Batched<C>]) -> Vec<Call> + Sync),
    ) -> Result<Vec<Answer<A>>, Conflict> {
        let mut answers: Vec<Option<Answer<A>>> = (0..batch.len()).map(|_| None).collect();
        let ids: Vec<&str> = batch
            .iter()
            .filter(|b| tenant_of(&b.aggregate_id) == Some(b.meta.tenant.as_str()))
            .map(|b| b.aggregate_id.as_str())
            .collect();
        let mut streams = match load_many::<A>(&self.db, &ids).await {
            Ok(streams) => streams,
            Err(e) => {
                let message = e.to_string();
                return Ok(batch
                    .iter()
                    .map(|_| Err(CommandError::Store(message.clone())))
                    .collect());
            }
        };
        let mut decided = Vec::new();
        for (index, b) in batch.iter().enumerate() {
            let envelopes = streams.remove(&b.aggregate_id).unwrap_or_default();
            match decide(index, b, envelopes).await {
                Ok(Decided::Answered(answer)) => answers[index] = Some(Ok(answer)),
                Ok(Decided::Append(mut d)) => {
                    match crate::pii::seal_envelopes(&self.db, &mut d.events).await {
                        Ok(()) => decided.push(d),
                        Err(e) => answers[index] = Some(Err(CommandError::Store(e.to_string()))),
                    }
                }
                Err(e) => answers[index] = Some(Err(e)),
            }
        }
        let events: Vec<&EventEnvelope<A>> = decided.iter().flat_map(|d| &d.events).collect();
        if !events.is_empty() {
            let appending: Vec<&Batched<C>> = decided.iter().map(|d| &batch[d.index]).collect();
            let calls = calls(&appending);
            let at = appending[0].command.at;
            match append_many::<A>(&self.db, &events, &calls, at).await {
                Ok(positions) => {
                    if let Some(wake) = &self.wake {
                        wake.notify_one();
                    }
                    for d in &decided {
                        let b = &batch[d.index];
                        let version = d.version + d.events.len();
                        answers[d.index] = Some(Ok(Outcome {
                            aggregate_id: b.aggregate_id.clone(),
                            version,
                            position: positions.get(&(b.aggregate_id.clone(), version)).copied(),
                            appended: d.events.len(),
                            replayed: false,
                            attempts: 1,
                        }));
                    }
                }
                Err(AppendError::Conflict) => return Err(Conflict),
                Err(AppendError::Store(e)) => {
                    // Every answer gets the text: `CommandError::Store` holds a string.
                    let message = e.to_string();
                    for d in &decided {
                        answers[d.index] = Some(Err(CommandError::Store(message.clone())));
                    }
                }
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(CommandError::Store("unanswered".into()))))
            .collect())
    }
}

/// Another writer appended to one of the batch's streams first.
struct Conflict;

enum Decided<A: Aggregate> {
    Answered(Outcome),
    Append(Appending<A>),
}

/// The same decision [`CommandService::execute`] makes, on already loaded events.
async fn decide<A, C>(
    index: usize,
    b: &Batched<C>,
    envelopes: Vec<EventEnvelope<A>>,
) -> Result<Decided<A>, CommandError<A::Error>>
where
    A: Aggregate<Command = Stamped<C>, Services = ()>,
    C: Clone + Serialize + Send + Sync,
{
    check_tenant(&b.aggregate_id, &b.meta)?;
    let hash = request_hash(&b.command.command);
    Ok(
        match decision::decide(&b.command, &b.meta, &hash, envelopes).await? {
            Decision::Replayed { version } => {
                Decided::Answered(nothing_appended(&b.aggregate_id, version, true))
            }
            Decision::Unchanged { version } => {
                Decided::Answered(nothing_appended(&b.aggregate_id, version, false))
            }
            Decision::Append {
                version,
                events,
                metadata,
                ..
            } => Decided::Append(Appending {
                index,
                version,
                events: events
                    .into_iter()
                    .enumerate()
                    .map(|(i, payload)| EventEnvelope {
                        aggregate_id: b.aggregate_id.clone(),
                        sequence: version + i + 1,
                        payload,
                        metadata: metadata.clone(),
                    })
                    .collect(),
            }),
        },
    )
}

/// Every event of the given streams, grouped by stream, in sequence order.
async fn load_many<A: Aggregate>(
    db: &Database,
    ids: &[&str],
) -> Result<HashMap<String, Vec<EventEnvelope<A>>>, StoreError>
where
    A::Event: domain::pii::Personal,
{
    let mut streams: HashMap<String, Vec<EventEnvelope<A>>> = HashMap::new();
    if ids.is_empty() {
        return Ok(streams);
    }
    let rows: Vec<SerializedEvent> = match db {
        Database::Postgres(pool) => {
            let rows = sqlx::query(
                "SELECT aggregate_id, sequence, event_type, event_version, payload, metadata \
                 FROM events WHERE aggregate_type = $1 AND aggregate_id = ANY($2) \
                 ORDER BY aggregate_id, sequence",
            )
            .bind(A::TYPE)
            .bind(ids)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(serialized::<A>(
                        r.try_get("aggregate_id")?,
                        r.try_get("sequence")?,
                        r.try_get("event_type")?,
                        r.try_get("event_version")?,
                        r.try_get("payload")?,
                        r.try_get("metadata")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?
        }
        Database::Sqlite(pool) => {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT aggregate_id, sequence, event_type, event_version, payload, metadata \
                 FROM events WHERE aggregate_type = ",
            );
            q.push_bind(A::TYPE).push(" AND aggregate_id IN (");
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            q.push(") ORDER BY aggregate_id, sequence");
            let rows = q.build().fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let payload: String = r.try_get("payload")?;
                let metadata: String = r.try_get("metadata")?;
                out.push(serialized::<A>(
                    r.try_get("aggregate_id")?,
                    r.try_get("sequence")?,
                    r.try_get("event_type")?,
                    r.try_get("event_version")?,
                    serde_json::from_str(&payload)?,
                    serde_json::from_str(&metadata)?,
                ));
            }
            out
        }
    };
    let mut envelopes = rows
        .into_iter()
        .map(EventEnvelope::<A>::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    crate::pii::open_envelopes(db, &mut envelopes).await?;
    for envelope in envelopes {
        streams
            .entry(envelope.aggregate_id.clone())
            .or_default()
            .push(envelope);
    }
    Ok(streams)
}

fn serialized<A: Aggregate>(
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
) -> SerializedEvent {
    SerializedEvent::new(
        aggregate_id,
        usize::try_from(sequence).unwrap_or_default(),
        A::TYPE.to_string(),
        event_type,
        event_version,
        payload,
        metadata,
    )
}

enum AppendError {
    Conflict,
    Store(StoreError),
}

impl From<sqlx::Error> for AppendError {
    fn from(e: sqlx::Error) -> Self {
        match e.as_database_error() {
            Some(d) if d.is_unique_violation() => Self::Conflict,
            _ => Self::Store(e.into()),
        }
    }
}

impl From<cqrs_es::persist::PersistenceError> for AppendError {
    fn from(e: cqrs_es::persist::PersistenceError) -> Self {
        Self::Store(e.into())
    }
}

/// Appends every event in one transaction; returns the global position of each
/// (stream, sequence) written.
async fn append_many<A: Aggregate>(
    db: &Database,
    events: &[&EventEnvelope<A>],
    calls: &[Call],
    at: DateTime<Utc>,
) -> Result<HashMap<(String, usize), i64>, AppendError> {
    let rows = events
        .iter()
        .map(|e| SerializedEvent::try_from(*e))
        .collect::<Result<Vec<_>, _>>()?;
    let mut positions = HashMap::with_capacity(rows.len());
    match db {
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let column = |f: fn(&SerializedEvent) -> String| rows.iter().map(f).collect::<Vec<_>>();
            let sequences: Vec<i64> = rows.iter().map(|r| r.sequence as i64).collect();
            let written: Vec<(String, i64, i64)> = sqlx::query_as(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata) \
                 SELECT $1, i, s, t, v, p::json, m::json \
                 FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], \
                 $7::text[]) AS u(i, s, t, v, p, m) \
                 RETURNING aggregate_id, sequence, position",
            )
            .bind(A::TYPE)
            .bind(column(|r| r.aggregate_id.clone()))
            .bind(&sequences)
            .bind(column(|r| r.event_type.clone()))
            .bind(column(|r| r.event_version.clone()))
            .bind(column(|r| r.payload.to_string()))
            .bind(column(|r| r.metadata.to_string()))
            .fetch_all(&mut *tx)
            .await?;
            outbox::insert_pg(&mut tx, calls, at).await?;
            tx.commit().await?;
            for (id, sequence, position) in written {
                positions.insert((id, sequence as usize), position);
            }
        }
        Database::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                     event_version, payload, metadata) ",
                );
                q.push_values(chunk, |mut row, e| {
                    row.push_bind(A::TYPE)
                        .push_bind(e.aggregate_id.as_str())
                        .push_bind(e.sequence as i64)
                        .push_bind(e.event_type.as_str())
                        .push_bind(e.event_version.as_str())
                        .push_bind(e.payload.to_string())
                        .push_bind(e.metadata.to_string());
                });
                q.build().execute(&mut *tx).await?;
            }
            // The trigger numbers rows after RETURNING has read them: ask afterwards.
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT aggregate_id, sequence, position FROM events WHERE aggregate_type = ",
            );
            q.push_bind(A::TYPE).push(" AND aggregate_id IN (");
            let mut list = q.separated(", ");
            for id in rows
                .iter()
                .map(|r| r.aggregate_id.as_str())
                .collect::<HashSet<_>>()
            {
                list.push_bind(id);
            }
            q.push(")");
            let written: Vec<(String, i64, i64)> = q.build_query_as().fetch_all(&mut *tx).await?;
            outbox::insert_sqlite(&mut tx, calls, at).await?;
            tx.commit().await?;
            for (id, sequence, position) in written {
                positions.insert((id, sequence as usize), position);
            }
        }
    }
    Ok(positions)
}

/// A read or write that failed, for every command of the batch.
#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Persistence(#[from] cqrs_es::persist::PersistenceError),
    #[error(transparent)]
    Pii(#[from] crate::pii::PiiError),
}
