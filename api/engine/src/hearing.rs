//! What a server keeps in memory is right only while it hears what other processes
//! commit: one PostgreSQL connection per server listens for the projection's
//! announcements (the portrait cache) and for departures (staff presence), and each is
//! trusted only while that connection is up.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use projections::announce;
use tokio::sync::watch;

use crate::auth::presence::{self, Presence};
use crate::reads::cache::PortraitCache;

/// How often what is kept in memory answered, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct Lookups {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl Lookups {
    /// Counts one lookup, and passes its answer on.
    pub fn count<T>(&self, found: Option<T>) -> Option<T> {
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Relaxed);
        found
    }
}

/// Hears announcements on `pool`'s database until `shutdown` turns true. Portraits are
/// served from `portraits`, and "still here" from `presence`, only while it does;
/// `presence` only where the database has the departure trigger.
pub async fn listen(
    portraits: Arc<PortraitCache>,
    presence: Arc<Presence>,
    pool: sqlx::PgPool,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let listener = async {
            let announced: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_trigger \
                 WHERE tgname = $1 AND tgrelid = 'events'::regclass)",
            )
            .bind(presence::TRIGGER)
            .fetch_one(&pool)
            .await?;
            let mut channels = Vec::new();
            if portraits.is_enabled() {
                channels.push(announce::CHANNEL);
            }
            if announced {
                channels.push(presence::CHANNEL);
            }
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen_all(channels.iter().copied()).await?;
            Ok::<_, sqlx::Error>((listener, announced))
        };
        match listener.await {
            Ok((mut listener, announced)) => {
                portraits.set_live(true);
                presence.set_live(announced);
                loop {
                    tokio::select! {
                        heard = listener.try_recv() => match heard {
                            Ok(Some(notice)) if notice.channel() == presence::CHANNEL => {
                                presence.forget(notice.payload());
                            }
                            Ok(Some(notice)) => {
                                portraits.forget(&announce::parse(notice.payload()));
                            }
                            // The connection dropped: what was said meanwhile is lost.
                            Ok(None) | Err(_) => break,
                        },
                        _ = shutdown.changed() => break,
                    }
                }
                portraits.set_live(false);
                presence.set_live(false);
                tracing::warn!(
                    "stopped hearing announcements: portraits and presence are read from \
                     the database until it hears them again"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "could not listen: nothing is served from memory")
            }
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
