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
    #[error("the database has Citus but its log is not distributed yet: run `scrm migrate`")]
    NotDistributed,
    #[error("personal data: {0}")]
    Pii(#[from] crate::pii::PiiError),
}

impl ProjectionError {
    /// A short name for the kind of failure, safe to show to any tenant.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Database(_) => "DATABASE",
            Self::BadEvent { .. } => "BAD_EVENT",
            Self::NeedsRebuild(_) => "NEEDS_REBUILD",
            Self::Stalled(_) => "STALLED",
            Self::Pii(_) => "PII",
            Self::UnknownProjection(_) | Self::NotPrepared(_) | Self::NotDistributed => "OTHER",
        }
    }
}
