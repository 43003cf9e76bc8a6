//! Every projection, declared once in [`ALL`]: its name, code version, tables and the
//! code that feeds and rebuilds it. A projection whose stored version differs from its
//! code's is rebuilt before it is fed again, never mixed.

use futures::future::BoxFuture;

use crate::campaigns::CampaignResults;
use crate::db::Database;
use crate::departures::Departures;
use crate::error::ProjectionError;
use crate::funnel::Funnel;
use crate::log::LoggedEvent;
use crate::model::{ReadModel, Rows};
use crate::portrait::fold::PortraitSet;
use crate::rebuild::Context;
use crate::table::Table;

/// Every projection. Adding one is adding its read model here.
pub static ALL: &[Projection] = &[
    Projection::of::<PortraitSet>(),
    Projection::of::<Departures>(),
    Projection::of::<Funnel>(),
    Projection::of::<CampaignResults>(),
];

/// A read model with its type erased, so one list can hold them all.
pub struct Projection {
    pub name: &'static str,
    pub version: i64,
    /// Each table with the column that partitions it.
    pub tables: &'static [(&'static Table, &'static str)],
    /// The aggregate types its fold reads.
    pub reads: &'static [&'static str],
    pub announces: crate::announce::Announces,
    step: for<'a> fn(&'a Database, i64) -> BoxFuture<'a, Result<usize, ProjectionError>>,
    empty: fn() -> Box<dyn Fold>,
    for_customers: fn(&Context) -> Box<dyn Fold>,
    replay_pg: Replay<sqlx::PgConnection>,
    replay_lite: Replay<sqlx::SqliteConnection>,
}

/// Applies events to a read model's live rows on a connection.
type Replay<C> = for<'a> fn(&'a mut C, &'a [LoggedEvent]) -> BoxFuture<'a, Result<(), sqlx::Error>>;

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Projection {
    const fn of<M: ReadModel>() -> Self {
        Self {
            name: M::NAME,
            version: M::VERSION,
            tables: M::TABLES,
            reads: M::READS,
            announces: M::ANNOUNCES,
            step: step_of::<M>,
            empty: empty_of::<M>,
            for_customers: for_customers_of::<M>,
            replay_pg: replay_pg_of::<M>,
            replay_lite: replay_lite_of::<M>,
        }
    }

    /// Applies at most `limit` events in one transaction. Returns how many.
    pub(crate) fn step<'a>(
        &self,
        db: &'a Database,
        limit: i64,
    ) -> BoxFuture<'a, Result<usize, ProjectionError>> {
        (self.step)(db, limit)
    }

    /// A model holding no rows yet, to fold the whole log into.
    pub(crate) fn empty(&self) -> Box<dyn Fold> {
        (self.empty)()
    }

    /// Applies `events` to the live rows (inside the caller's transaction).
    pub(crate) fn replay_pg<'a>(
        &self,
        conn: &'a mut sqlx::PgConnection,
        events: &'a [LoggedEvent],
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        (self.replay_pg)(conn, events)
    }

    pub(crate) fn replay_lite<'a>(
        &self,
        conn: &'a mut sqlx::SqliteConnection,
        events: &'a [LoggedEvent],
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        (self.replay_lite)(conn, events)
    }

    /// A model for a rebuild partition of customer streams (see `ReadModel::for_customers`).
    pub(crate) fn for_customers(&self, context: &Context) -> Box<dyn Fold> {
        (self.for_customers)(context)
    }
}

fn step_of<M: ReadModel>(
    db: &Database,
    limit: i64,
) -> BoxFuture<'_, Result<usize, ProjectionError>> {
    Box::pin(crate::projector::step_model::<M>(db, limit))
}

fn empty_of<M: ReadModel>() -> Box<dyn Fold> {
    Box::new(M::default())
}

fn replay_pg_of<'a, M: ReadModel>(
    conn: &'a mut sqlx::PgConnection,
    events: &'a [LoggedEvent],
) -> BoxFuture<'a, Result<(), sqlx::Error>> {
    Box::pin(crate::model::pg::apply_events::<M>(conn, events))
}

fn replay_lite_of<'a, M: ReadModel>(
    conn: &'a mut sqlx::SqliteConnection,
    events: &'a [LoggedEvent],
) -> BoxFuture<'a, Result<(), sqlx::Error>> {
    Box::pin(crate::model::lite::apply_events::<M>(conn, events))
}

fn for_customers_of<M: ReadModel>(context: &Context) -> Box<dyn Fold> {
    Box::new(M::for_customers(context))
}

/// What a rebuild needs of a read model.
pub(crate) trait Fold: Send {
    fn apply(&mut self, event: &LoggedEvent);
    fn rows(&self) -> Rows;
}

impl<M: ReadModel> Fold for M {
    fn apply(&mut self, event: &LoggedEvent) {
        ReadModel::apply(self, event)
    }

    fn rows(&self) -> Rows {
        ReadModel::rows(self)
    }
}

pub fn find(name: &str) -> Option<&'static Projection> {
    ALL.iter().find(|p| p.name == name)
}

/// The registered projection of read model `M`.
pub fn of<M: ReadModel>() -> &'static Projection {
    find(M::NAME).unwrap_or_else(|| panic!("{} is not in registry::ALL", M::NAME))
}

#[cfg(test)]
mod tests {
    use super::ALL;

    #[test]
    fn names_and_tables_are_unique() {
        let mut names: Vec<_> = ALL.iter().map(|p| p.name).collect();
        let mut tables: Vec<_> = ALL
            .iter()
            .flat_map(|p| p.tables.iter().map(|(t, _)| t.name))
            .collect();
        let (n, t) = (names.len(), tables.len());
        names.sort();
        names.dedup();
        tables.sort();
        tables.dedup();
        assert_eq!((names.len(), tables.len()), (n, t));
    }
}
