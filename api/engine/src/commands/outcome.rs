//! What a command returns, and the ways it can fail.

use cqrs_es::AggregateError;

/// The answer to an executed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub aggregate_id: String,
    /// The stream's version after the command (its last event's sequence).
    pub version: usize,
    /// The global position of that last event, where the stream has one.
    pub position: Option<i64>,
    /// Events this call appended (0 for a replay or a no-op).
    pub appended: usize,
    /// True when an earlier request with the same idempotency key already did the work.
    pub replayed: bool,
    /// How many times the command was decided (more than 1 after a lost race).
    pub attempts: u32,
}

/// Why a command did not run. `Rejected` carries the domain's business error; the
/// rest are conditions of the request or the store.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    #[error("rejected: {0}")]
    Rejected(E),
    #[error("stream {stream} does not belong to the caller's tenant")]
    WrongTenant { stream: String },
    #[error("expected version {expected}, but the stream is at version {actual}")]
    VersionConflict { expected: usize, actual: usize },
    #[error("other writers kept changing this stream; gave up after {attempts} attempts")]
    Conflict { attempts: u32 },
    #[error("the idempotency key was already used for a different command")]
    IdempotencyKeyReused,
    #[error("store error: {0}")]
    Store(String),
}

impl<E: std::error::Error> CommandError<E> {
    pub fn rejection(&self) -> Option<&E> {
        match self {
            Self::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: std::error::Error> From<AggregateError<E>> for CommandError<E> {
    fn from(error: AggregateError<E>) -> Self {
        match error {
            AggregateError::UserError(e) => Self::Rejected(e),
            AggregateError::AggregateConflict => Self::Conflict { attempts: 1 },
            other => Self::Store(other.to_string()),
        }
    }
}
