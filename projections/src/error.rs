//! Failures of the read side.

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event at position {position} cannot be read: {reason}")]
    BadEvent { position: i64, reason: String },
    #[error(
        "no projection named {0:?}; known: customer_portrait, staff_departures, repurchase_funnel"
    )]
    UnknownProjection(String),
    #[error("projection {0} has no checkpoint yet: run prepare first")]
    NotPrepared(&'static str),
    #[error("projection {0} cannot catch up: a transaction that began earlier is still running")]
    Stalled(&'static str),
    #[error("projection {0} was built by another code version: rebuild it")]
    NeedsRebuild(&'static str),
}
