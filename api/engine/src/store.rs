//! The event store over either backend: cqrs-es's `PersistedEventStore` in its
//! event-store mode (never the snapshot modes, whose 0.5.0 commit applies events
//! twice) on postgres-es or sqlite-es, plus the global position those crates lack,
//! with personal data sealed on the way in and opened on the way out ([`crate::pii`]).

use std::collections::HashMap;

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use sqlite_es::SqliteEventRepository;

use domain::pii::Personal;

use crate::db::Database;
use crate::pii::PiiError;

/// The events of one aggregate type, on whichever backend is configured.
#[allow(missing_debug_implementations)] // the wrapped stores implement no Debug
pub struct Store<A: Aggregate> {
    db: Database,
    inner: Inner<A>,
}

enum Inner<A: Aggregate> {
    Postgres(PersistedEventStore<PostgresEventRepository, A>),
    Sqlite(PersistedEventStore<SqliteEventRepository, A>),
}

fn unexpected<E: std::error::Error>(e: PiiError) -> AggregateError<E> {
    AggregateError::UnexpectedError(Box::new(e))
}

impl<A: Aggregate> Store<A>
where
    A::Event: Personal,
{
    pub fn new(db: &Database) -> Self {
        let inner = match db {
            Database::Postgres(pool) => Inner::Postgres(PersistedEventStore::new_event_store(
                PostgresEventRepository::new(pool.clone()),
            )),
            Database::Sqlite(pool) => Inner::Sqlite(PersistedEventStore::new_event_store(
                SqliteEventRepository::new(pool.clone()),
            )),
        };
        Self {
            db: db.clone(),
            inner,
        }
    }

    /// Every event of one stream, in sequence order, with its metadata.
    pub async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let mut envelopes = match &self.inner {
            Inner::Postgres(s) => s.load_events(aggregate_id).await,
            Inner::Sqlite(s) => s.load_events(aggregate_id).await,
        }?;
        crate::pii::open_envelopes(&self.db, &mut envelopes)
            .await
            .map_err(unexpected)?;
        Ok(envelopes)
    }

    /// Appends `events` after `current_sequence`; `AggregateConflict` if another writer
    /// appended first (the primary key on the stream's sequence is the check).
    pub async fn append(
        &self,
        aggregate_id: &str,
        aggregate: A,
        current_sequence: usize,
        mut events: Vec<A::Event>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        crate::pii::seal(&self.db, aggregate_id, &mut events)
            .await
            .map_err(unexpected)?;
        let context = EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_string(),
            aggregate,
            current_sequence,
            current_snapshot: None,
        };
        match &self.inner {
            Inner::Postgres(s) => s.commit(events, context, metadata).await,
            Inner::Sqlite(s) => s.commit(events, context, metadata).await,
        }
    }
}

/// The global position of one stored event, if it exists.
pub async fn position_of(
    db: &Database,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: usize,
) -> Result<Option<i64>, sqlx::Error> {
    const SQL_PG: &str = "SELECT position FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3";
    const SQL_LITE: &str = "SELECT position FROM events \
         WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence = ?3";
    let sequence = i64::try_from(sequence).unwrap_or(i64::MAX);
    match db {
        Database::Postgres(pool) => {
            sqlx::query_scalar(SQL_PG)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(sequence)
                .fetch_optional(pool)
                .await
        }
        Database::Sqlite(pool) => {
            sqlx::query_scalar(SQL_LITE)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(sequence)
                .fetch_optional(pool)
                .await
        }
    }
}
