//! Time comes in from the edge: the server reads it from a [`Clock`], so tests (and the
//! handover jobs' 24-hour windows) can move it forward instead of waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

/// Where "now" comes from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The machine's clock.
    #[default]
    System,
    /// The machine's clock shifted by an offset tests can grow.
    Shifted(Arc<AtomicI64>),
}

impl Clock {
    /// A clock that starts at real time and moves forward when told to.
    pub fn shiftable() -> Self {
        Self::Shifted(Arc::new(AtomicI64::new(0)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Shifted(offset) => {
                Utc::now() + Duration::milliseconds(offset.load(Ordering::Relaxed))
            }
        }
    }

    /// Moves a shiftable clock forward; a system clock cannot be moved.
    pub fn advance(&self, by: Duration) {
        if let Self::Shifted(offset) = self {
            offset.fetch_add(by.num_milliseconds(), Ordering::Relaxed);
        }
    }
}
