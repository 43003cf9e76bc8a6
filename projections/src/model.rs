//! What every read model is: a pure fold over the log into the rows of its tables.
//! The incremental projector loads the rows a batch touches, folds the batch and
//! replaces those rows; a rebuild folds the whole log. Both run the same fold, so
//! both produce the same rows.

use std::collections::{BTreeMap, BTreeSet};

use crate::log::LoggedEvent;
use crate::table::{Row, Table, Val};

/// Ids by tenant.
pub type Keys = BTreeMap<String, BTreeSet<String>>;

/// Adds `id` of `tenant` to `keys`.
pub fn touch(keys: &mut Keys, tenant: &str, id: impl Into<String>) {
    keys.entry(tenant.to_string())
        .or_default()
        .insert(id.into());
}

/// One `T` per table, found by the table's row type: what a model says about its
/// tables is matched to them by name, never by position.
#[derive(Debug)]
pub struct ByTable<T> {
    entries: Vec<(&'static Table, T)>,
}

impl<T> Default for ByTable<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T: Default> ByTable<T> {
    /// The entry of `R`'s table, made empty if missing.
    pub fn of<R: Row>(&mut self) -> &mut T {
        self.of_table(R::TABLE)
    }

    /// The entry of `table`, made empty if missing.
    pub fn of_table(&mut self, table: &'static Table) -> &mut T {
        let at = match self.position(table) {
            Some(at) => at,
            None => {
                self.entries.push((table, T::default()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[at].1
    }

    pub fn get(&self, table: &Table) -> Option<&T> {
        self.position(table).map(|at| &self.entries[at].1)
    }

    /// Removes and returns the entry of `table` (empty if it had none).
    pub fn take(&mut self, table: &Table) -> T {
        match self.position(table) {
            Some(at) => self.entries.swap_remove(at).1,
            None => T::default(),
        }
    }

    fn position(&self, table: &Table) -> Option<usize> {
        self.entries.iter().position(|(t, _)| t.name == table.name)
    }

    /// The tables that still have an entry.
    pub fn tables(&self) -> Vec<&'static str> {
        self.entries.iter().map(|(t, _)| t.name).collect()
    }
}

/// The partition keys a batch touches, per table.
pub type Touched = ByTable<Keys>;

/// Rows as column values, per table.
pub type Rows = ByTable<Vec<Vec<Val>>>;

impl Rows {
    /// Adds `rows` to their table.
    pub fn put<'a, R: Row + 'a>(&mut self, rows: impl IntoIterator<Item = &'a R>) {
        self.of::<R>().extend(rows.into_iter().map(Row::values));
    }

    /// Takes the rows of `R`'s table, decoded.
    pub fn take_rows<R: Row>(&mut self) -> impl Iterator<Item = R> {
        self.take(R::TABLE).into_iter().map(R::from_values)
    }
}

/// A statement that mends rows a batch changed without loading them (an event of one
/// aggregate that changes rows keyed by another's): its text in pieces, each but the
/// last followed by one bound value. The pieces are fixed text, so no value ever
/// becomes SQL; a statement of many rows repeats them.
#[derive(Debug, Clone, PartialEq)]
pub struct Mend {
    pub pieces: Vec<&'static str>,
    pub binds: Vec<Val>,
}

pub trait ReadModel: Default + Send + Sync + 'static {
    /// The projection's name in the registry and its checkpoint row.
    const NAME: &'static str;
    /// Bump when the fold or the tables change: the projection is then rebuilt.
    const VERSION: i64;
    /// Each table with the column that partitions it for incremental loads.
    const TABLES: &'static [(&'static Table, &'static str)];
    /// The aggregate types the fold reads. Events of other types are passed over
    /// unparsed, so an unreadable event stops only the projections that read its type.
    const READS: &'static [&'static str];
    /// What its commits tell caches of its rows ([`crate::announce`]).
    const ANNOUNCES: crate::announce::Announces = crate::announce::Announces::Nothing;

    /// The partition keys of each table a batch touches.
    fn touched(events: &[LoggedEvent]) -> Touched;
    /// Takes the rows loaded for a batch.
    fn load(&mut self, rows: Rows);
    fn apply(&mut self, event: &LoggedEvent);
    /// The rows held, per table.
    fn rows(&self) -> Rows;
    /// What to run after the batch's rows are replaced (see [`Mend`]).
    fn mend(&self) -> Vec<Mend> {
        Vec::new()
    }

    /// An empty model for a rebuild partition that folds customers' streams one
    /// customer at a time, without the other aggregates' events between them. A model
    /// whose customer rows depend on another aggregate reads it from `context`.
    fn for_customers(context: &crate::rebuild::Context) -> Self {
        let _ = context;
        Self::default()
    }
}

macro_rules! model_store {
    ($m:ident, $db:ty) => {
        pub mod $m {
            use sqlx::{QueryBuilder, Row as _};

            use super::{ReadModel, Rows, Touched};
            use crate::sql::$m::{delete_in, insert_rows, Conn};
            use crate::sql::MAX_BINDS;
            use crate::table::{Table, Ty, Val};

            fn decode(
                row: &<$db as sqlx::Database>::Row,
                table: &Table,
            ) -> Result<Vec<Val>, sqlx::Error> {
                table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, ty, nullable))| {
                        Ok(match (ty, nullable) {
                            (Ty::Text, false) => Val::Text(row.try_get(i)?),
                            (Ty::Text, true) => Val::OptText(row.try_get(i)?),
                            (Ty::Int, false) => Val::Int(row.try_get(i)?),
                            (Ty::Int, true) => Val::OptInt(row.try_get(i)?),
                            (Ty::Time, false) => Val::Time(row.try_get(i)?),
                            (Ty::Time, true) => Val::OptTime(row.try_get(i)?),
                            (Ty::Bool, _) => Val::Bool(row.try_get(i)?),
                        })
                    })
                    .collect()
            }

            async fn select_in(
                conn: &mut Conn,
                table: &Table,
                tenant: &str,
                column: &str,
                ids: &[String],
            ) -> Result<Vec<Vec<Val>>, sqlx::Error> {
                let mut out = Vec::new();
                for chunk in ids.chunks(MAX_BINDS) {
                    let mut q = QueryBuilder::<$db>::new(format!(
                        "SELECT {} FROM {} WHERE tenant_id = ",
                        table.column_list(),
                        table.name
                    ));
                    q.push_bind(tenant.to_string());
                    q.push(format!(" AND {column} IN ("));
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    q.push(")");
                    for row in q.build().fetch_all(&mut *conn).await? {
                        out.push(decode(&row, table)?);
                    }
                }
                Ok(out)
            }

            /// Loads the current rows of every key in `touched`.
            pub async fn load<M: ReadModel>(
                conn: &mut Conn,
                touched: &Touched,
            ) -> Result<M, sqlx::Error> {
                let mut rows = Rows::default();
                for (table, column) in M::TABLES {
                    let Some(keys) = touched.get(table) else {
                        continue;
                    };
                    for (tenant, ids) in keys {
                        let ids: Vec<String> = ids.iter().cloned().collect();
                        let loaded = select_in(conn, table, tenant, column, &ids).await?;
                        rows.of_table(table).extend(loaded);
                    }
                }
                let mut model = M::default();
                model.load(rows);
                Ok(model)
            }

            /// Applies `events` (of the types `M` reads) to `M`'s live rows.
            pub async fn apply_events<M: ReadModel>(
                conn: &mut Conn,
                events: &[crate::log::LoggedEvent],
            ) -> Result<(), sqlx::Error> {
                let events: Vec<_> = events
                    .iter()
                    .filter(|e| M::READS.contains(&e.event.aggregate_type()))
                    .cloned()
                    .collect();
                if events.is_empty() {
                    return Ok(());
                }
                let touched = M::touched(&events);
                let mut model: M = load(conn, &touched).await?;
                for e in &events {
                    model.apply(e);
                }
                replace(conn, &model, &touched).await
            }

            /// Replaces the rows of every key in `touched` with those `model` holds.
            pub async fn replace<M: ReadModel>(
                conn: &mut Conn,
                model: &M,
                touched: &Touched,
            ) -> Result<(), sqlx::Error> {
                for (table, column) in M::TABLES {
                    let Some(keys) = touched.get(table) else {
                        continue;
                    };
                    for (tenant, ids) in keys {
                        let ids: Vec<String> = ids.iter().cloned().collect();
                        delete_in(conn, table.name, tenant, column, &ids).await?;
                    }
                }
                let mut rows = model.rows();
                for (table, _) in M::TABLES {
                    insert_rows(conn, table, table.name, &rows.take(table)).await?;
                }
                for mend in model.mend() {
                    let mut q = QueryBuilder::<$db>::new(mend.pieces[0]);
                    for (v, piece) in mend.binds.iter().zip(&mend.pieces[1..]) {
                        crate::table::push_val!(q, v);
                        q.push(*piece);
                    }
                    q.build().execute(&mut *conn).await?;
                }
                debug_assert!(
                    rows.tables().is_empty(),
                    "{} holds rows of undeclared tables {:?}",
                    M::NAME,
                    rows.tables()
                );
                Ok(())
            }
        }
    };
}

model_store!(pg, sqlx::Postgres);
model_store!(lite, sqlx::Sqlite);

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use domain::customer::{CustomerEvent, HandoverKind};
    use domain::group::GroupEvent;
    use domain::values::StaffId;

    use super::ReadModel;
    use crate::departures::Departures;
    use crate::funnel::Funnel;
    use crate::log::{AnyEvent, Checkpoint, LoggedEvent};
    use crate::portrait::fold::PortraitSet;
    use crate::table::Val;

    fn requested(customer: &str) -> LoggedEvent {
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        LoggedEvent {
            checkpoint: Checkpoint::START,
            tenant: "acme".into(),
            local_id: customer.into(),
            sequence: 7,
            event: AnyEvent::Customer(CustomerEvent::HandoverRequested {
                handover: uuid::Uuid::nil(),
                from: StaffId::parse("leaver").unwrap(),
                to: StaffId::parse("heir").unwrap(),
                kind: HandoverKind::Resigned,
                at,
                auto_accept_at: at + chrono::Duration::hours(24),
            }),
        }
    }

    /// Which of `M`'s tables a batch makes the projector load and rewrite.
    fn rewritten<M: ReadModel>(events: &[LoggedEvent]) -> Vec<&'static str> {
        let touched = M::touched(events);
        M::TABLES
            .iter()
            .filter(|(table, _)| touched.get(table).is_some_and(|keys| !keys.is_empty()))
            .map(|(table, _)| table.name)
            .collect()
    }

    #[test]
    fn a_handover_request_rewrites_only_the_rows_it_changes() {
        // Given a batch of a handover job's requests
        let batch: Vec<_> = (0..100).map(|i| requested(&format!("wm{i}"))).collect();
        // then each read model rewrites only what the request changes.
        assert_eq!(rewritten::<PortraitSet>(&batch), vec!["rm_customer"]);
        assert_eq!(rewritten::<Departures>(&batch), vec!["rm_handover"]);
        assert!(rewritten::<Funnel>(&batch).is_empty());
    }

    #[test]
    fn a_handover_request_mends_the_relations_sort_key_in_place() {
        // Given a batch of handover requests, which leaves the relations unloaded
        let batch: Vec<_> = (0..250).map(|i| requested(&format!("wm{i}"))).collect();
        let mut model = PortraitSet::default();
        for e in &batch {
            model.apply(e);
        }
        // then the batch mends every requested customer's relations, 200 to a statement,
        // with the customer's own new stage and last activity.
        let mends = model.mend();
        assert_eq!(mends.len(), 2);
        assert_eq!(mends[0].binds.len(), 200 * 4);
        assert_eq!(mends[1].binds.len(), 50 * 4);
        for mend in &mends {
            assert_eq!(mend.pieces.len(), mend.binds.len() + 1);
        }
        let customer = &model.customers[&("acme".to_string(), "wm0".to_string())].customer;
        let first: Vec<_> = model.mend()[0].binds[..4].to_vec();
        assert_eq!(
            first,
            [
                Val::Text("acme".into()),
                Val::Text("wm0".into()),
                Val::Text(customer.stage.clone()),
                Val::Time(customer.last_activity_at),
            ]
        );
    }

    #[test]
    fn a_notice_change_rewrites_the_groups_row_in_the_reassignment_view() {
        // Given a group's new notice (the view shows it)
        let changed = LoggedEvent {
            checkpoint: Checkpoint::START,
            tenant: "acme".into(),
            local_id: "wr1".into(),
            sequence: 3,
            event: AnyEvent::Group(GroupEvent::NoticeChanged {
                notice: "Gold 10% off".into(),
                at: Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
            }),
        };
        // then the view reloads and rewrites that group's row.
        assert_eq!(rewritten::<Departures>(&[changed]), vec!["rm_group_owner"]);
    }
}
