//! The decision every command gets, alone ([`CommandService::execute`]) or in a batch
//! ([`CommandService::execute_many`]): on the stream's loaded events, an earlier answer
//! under the same idempotency key, a version conflict, a rejection, nothing to do, or
//! events to append.
//!
//! [`CommandService::execute`]: super::CommandService::execute
//! [`CommandService::execute_many`]: super::CommandService::execute_many

use std::collections::HashMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, EventEnvelope};
use domain::metadata::{self, EventMetadata};
use domain::stamp::{tenant_of, Stamped};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{CommandError, CommandMeta, Outcome};

/// What a command comes to on its stream's current events.
pub(super) enum Decision<A: Aggregate> {
    /// An earlier request with the same idempotency key did the work, ending at `version`.
    Replayed { version: usize },
    /// The command changes nothing; the stream stays at `version`.
    Unchanged { version: usize },
    /// `events` to append after `version`, decided on `aggregate`.
    Append {
        aggregate: A,
        version: usize,
        events: Vec<A::Event>,
        metadata: HashMap<String, String>,
    },
}

/// The answer to a command that appended nothing (a replay, or no change), before the
/// caller adds the replayed event's position and its attempts.
pub(super) fn nothing_appended(aggregate_id: &str, version: usize, replayed: bool) -> Outcome {
    Outcome {
        aggregate_id: aggregate_id.to_string(),
        version,
        position: None,
        appended: 0,
        replayed,
        attempts: 1,
    }
}

/// A command may only touch streams of the caller's tenant.
pub(super) fn check_tenant<E: std::error::Error>(
    aggregate_id: &str,
    meta: &CommandMeta,
) -> Result<(), CommandError<E>> {
    if tenant_of(aggregate_id) != Some(meta.tenant.as_str()) {
        return Err(CommandError::WrongTenant {
            stream: aggregate_id.to_string(),
        });
    }
    Ok(())
}

/// Decides `command` (whose [`request_hash`] is `hash`) on the stream's `envelopes`.
pub(super) async fn decide<A, C>(
    command: &Stamped<C>,
    meta: &CommandMeta,
    hash: &str,
    envelopes: Vec<EventEnvelope<A>>,
) -> Result<Decision<A>, CommandError<A::Error>>
where
    A: Aggregate<Command = Stamped<C>, Services = ()>,
    C: Clone + Serialize + Send + Sync,
{
    let version = envelopes.last().map_or(0, |e| e.sequence);
    if let Some(key) = &meta.idempotency_key {
        if let Some(previous) = earlier_answer(&envelopes, key) {
            if previous.hash != hash {
                return Err(CommandError::IdempotencyKeyReused);
            }
            return Ok(Decision::Replayed {
                version: previous.sequence,
            });
        }
    }
    if let Some(expected) = meta.expected_version.filter(|v| *v != version) {
        return Err(CommandError::VersionConflict {
            expected,
            actual: version,
        });
    }
    let mut aggregate = A::default();
    for envelope in envelopes {
        aggregate.apply(envelope.payload);
    }
    let sink = EventSink::default();
    aggregate
        .handle(command.clone(), &(), &sink)
        .await
        .map_err(CommandError::Rejected)?;
    let events = sink.collect().await;
    if events.is_empty() {
        return Ok(Decision::Unchanged { version });
    }
    Ok(Decision::Append {
        aggregate,
        version,
        events,
        metadata: event_metadata(meta, command, hash),
    })
}

struct EarlierAnswer {
    sequence: usize,
    hash: String,
}

/// The last event appended under idempotency key `key`, if any. The key lives in the
/// events' own metadata, so it is stored atomically with them and checked under the
/// same optimistic lock: two racing requests with one key cannot both append.
fn earlier_answer<A: Aggregate>(
    envelopes: &[EventEnvelope<A>],
    key: &str,
) -> Option<EarlierAnswer> {
    envelopes
        .iter()
        .rev()
        .find(|e| {
            e.metadata
                .get(metadata::IDEMPOTENCY_KEY)
                .map(String::as_str)
                == Some(key)
        })
        .map(|e| EarlierAnswer {
            sequence: e.sequence,
            hash: e
                .metadata
                .get(metadata::COMMAND_HASH)
                .cloned()
                .unwrap_or_default(),
        })
}

/// A fingerprint of what was asked (not when), to tell a retry from a reused key.
pub(super) fn request_hash<C: Serialize>(command: &C) -> String {
    let bytes = serde_json::to_vec(command).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..16])
}

fn event_metadata<C>(
    meta: &CommandMeta,
    command: &Stamped<C>,
    hash: &str,
) -> HashMap<String, String> {
    EventMetadata {
        tenant: &meta.tenant,
        actor: meta.actor.as_str(),
        request_id: meta.request_id,
        occurred_at: command.at,
        idempotency: meta.idempotency_key.as_deref().map(|key| (key, hash)),
    }
    .to_map()
}
