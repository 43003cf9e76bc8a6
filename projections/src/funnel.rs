//! The repurchase funnel: friend added -> first purchase -> repurchase (2+ orders) ->
//! loyal (5+), per customer with its acquisition store, guide, channel and cohort month,
//! so it can be cut by any of them with conversion rates. Coupon redemption by campaign
//! is read from the portrait's coupon table.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use domain::customer::CustomerEvent;
use domain::staff::StaffEvent;

use crate::db::Database;
use crate::error::ProjectionError;
use crate::log::{AnyEvent, LoggedEvent};
use crate::model::{touch, Mend, ReadModel, Rows, Touched};
use crate::portrait::fold::LOYAL_ORDERS;
use crate::table::{table_row, Table, Val};

pub const NAME: &str = "repurchase_funnel";
/// Bump when the fold or the tables change: the projection is then rebuilt.
/// 2: the acquisition is the earliest friend-add, whatever order they arrive in (the
/// first import brings relations in WeCom's order, not in time order).
/// 3: the acquisition store is the guide's store at the friend-add's time, from the
/// guide's stores over time, whatever order the guide's and the customer's events are
/// applied in (on Citus there is no order between them).
pub const VERSION: i64 = 3;

table_row! {
    /// One acquired customer's way down the funnel.
    FunnelRow in FUNNEL = "rm_funnel_customer",
    key ["tenant_id", "customer_id"],
    indexes [["tenant_id", "cohort_month"], ["tenant_id", "store_id"], ["tenant_id", "staff_id"], ["tenant_id", "channel"]],
    {
        tenant_id: text,
        customer_id: text,
        acquired_at: time,
        cohort_month: text,
        store_id: opt_text,
        staff_id: text,
        channel: text,
        orders: int,
        total_fen: int,
        first_purchase_at: opt_time,
        repurchase_at: opt_time,
        loyal_at: opt_time,
    }
}

table_row! {
    /// Which store a guide works at from `since` (a registration or a move, by event
    /// time), to place a customer's acquisition.
    FunnelStaffRow in FUNNEL_STAFF = "rm_funnel_staff",
    key ["tenant_id", "staff_id", "since", "sequence"],
    indexes [],
    {
        tenant_id: text,
        staff_id: text,
        since: time,
        sequence: int,
        store_id: text,
    }
}

type Key = (String, String);

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Funnel {
    customers: HashMap<Key, FunnelRow>,
    /// The stores over time of the guides a batch touches (or the whole log's, in a
    /// rebuild's pass over the staff).
    staff: StaffStores,
    /// In a rebuild partition a customer's events arrive without the staff events
    /// around them: every guide's stores over time, read before the customers.
    shared: Option<Arc<StaffStores>>,
    /// Guides whose stores over time changed in this batch: the customers they
    /// acquired that the batch did not load are placed again ([`Mend`]).
    moved: Vec<Key>,
}

/// Each guide's stores over time, by event time: where a guide worked when a customer
/// was acquired, whatever order the guide's and the customer's events are folded in.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StaffStores(HashMap<Key, Vec<FunnelStaffRow>>);

impl StaffStores {
    /// Records what a staff event says of the guide's store; returns whether it did.
    pub fn apply(&mut self, e: &LoggedEvent) -> bool {
        let (store, at) = match &e.event {
            AnyEvent::Staff(StaffEvent::StaffRegistered { store, at, .. }) => (store, at),
            AnyEvent::Staff(StaffEvent::StaffMovedToStore { to, at, .. }) => (to, at),
            _ => return false,
        };
        self.insert(FunnelStaffRow {
            tenant_id: e.tenant.clone(),
            staff_id: e.local_id.clone(),
            since: *at,
            sequence: e.sequence,
            store_id: store.to_string(),
        });
        true
    }

    fn insert(&mut self, row: FunnelStaffRow) {
        let history = self
            .0
            .entry((row.tenant_id.clone(), row.staff_id.clone()))
            .or_default();
        let at = history.partition_point(|r| (r.since, r.sequence) < (row.since, row.sequence));
        if history.get(at).is_none_or(|r| r.sequence != row.sequence) {
            history.insert(at, row);
        }
    }

    /// The guide's store at `at`: the last registration or move at or before it, or
    /// the first known when `at` is older than all (a relation made before the guide
    /// was first recorded, as the first import brings them).
    pub fn store_at(&self, tenant: &str, staff: &str, at: DateTime<Utc>) -> Option<String> {
        let history = self.0.get(&(tenant.to_string(), staff.to_string()))?;
        let before = history.partition_point(|r| r.since <= at);
        let row = history.get(before.saturating_sub(1))?;
        Some(row.store_id.clone())
    }

    fn rows(&self) -> impl Iterator<Item = &FunnelStaffRow> {
        self.0.values().flatten()
    }
}

impl Funnel {
    /// A funnel for one partition's customers, finding stores in `stores`.
    pub fn with_stores(stores: Arc<StaffStores>) -> Self {
        Self {
            shared: Some(stores),
            ..Self::default()
        }
    }

    fn store_at(&self, tenant: &str, staff: &str, at: DateTime<Utc>) -> Option<String> {
        self.shared
            .as_deref()
            .unwrap_or(&self.staff)
            .store_at(tenant, staff, at)
    }
}

/// Places again every customer a guide acquired, after a registration or move of the
/// guide is recorded: they may have been placed before it was known. As
/// [`StaffStores::store_at`]: the last store at or before the add, else the first.
/// Moves are rare and a guide's customers are found by index.
const MEND_STORES: &[&str] = &[
    "UPDATE rm_funnel_customer SET store_id = coalesce(\
       (SELECT s.store_id FROM rm_funnel_staff s \
         WHERE s.tenant_id = rm_funnel_customer.tenant_id \
           AND s.staff_id = rm_funnel_customer.staff_id \
           AND s.since <= rm_funnel_customer.acquired_at \
         ORDER BY s.since DESC, s.sequence DESC LIMIT 1), \
       (SELECT s.store_id FROM rm_funnel_staff s \
         WHERE s.tenant_id = rm_funnel_customer.tenant_id \
           AND s.staff_id = rm_funnel_customer.staff_id \
         ORDER BY s.since, s.sequence LIMIT 1)) \
      WHERE tenant_id = ",
    " AND staff_id = ",
    "",
];

/// The acquisition channel: the WeCom `state` code when the add carried one, else the
/// kind of add.
fn channel(add_way: domain::customer::AddWay, state: &Option<String>) -> String {
    state.clone().unwrap_or_else(|| add_way.label().to_string())
}

impl ReadModel for Funnel {
    const NAME: &'static str = NAME;
    const VERSION: i64 = VERSION;
    const READS: &'static [&'static str] = &["Customer", "Staff"];
    const TABLES: &'static [(&'static Table, &'static str)] =
        &[(&FUNNEL, "customer_id"), (&FUNNEL_STAFF, "staff_id")];

    fn touched(events: &[LoggedEvent]) -> Touched {
        let mut keys = Touched::default();
        for e in events {
            match &e.event {
                // Only what `apply` reads or writes: the funnel counts friends and orders.
                AnyEvent::Customer(CustomerEvent::FriendAdded { staff: s, .. }) => {
                    touch(keys.of::<FunnelRow>(), &e.tenant, &e.local_id);
                    // The acquiring guide's store is looked up, so it is loaded too.
                    touch(keys.of::<FunnelStaffRow>(), &e.tenant, s.as_str());
                }
                AnyEvent::Customer(CustomerEvent::PurchaseRecorded { .. }) => {
                    touch(keys.of::<FunnelRow>(), &e.tenant, &e.local_id)
                }
                AnyEvent::Staff(
                    StaffEvent::StaffRegistered { .. } | StaffEvent::StaffMovedToStore { .. },
                ) => touch(keys.of::<FunnelStaffRow>(), &e.tenant, &e.local_id),
                AnyEvent::Customer(_)
                | AnyEvent::Staff(_)
                | AnyEvent::Group(_)
                | AnyEvent::TagLibrary(_) => {}
            }
        }
        keys
    }

    fn load(&mut self, mut rows: Rows) {
        for r in rows.take_rows::<FunnelRow>() {
            self.customers
                .insert((r.tenant_id.clone(), r.customer_id.clone()), r);
        }
        for r in rows.take_rows::<FunnelStaffRow>() {
            self.staff.insert(r);
        }
    }

    fn apply(&mut self, e: &LoggedEvent) {
        let key = (e.tenant.clone(), e.local_id.clone());
        match &e.event {
            AnyEvent::Customer(CustomerEvent::FriendAdded {
                staff,
                add_way,
                channel_state,
                at,
            }) => {
                if let Some(known) = self.customers.get(&key) {
                    if known.acquired_at <= *at {
                        return;
                    }
                }
                let store_id = self.store_at(&e.tenant, staff.as_str(), *at);
                let acquired = FunnelRow {
                    tenant_id: key.0.clone(),
                    customer_id: key.1.clone(),
                    acquired_at: *at,
                    cohort_month: format!("{:04}-{:02}", at.year(), at.month()),
                    store_id,
                    staff_id: staff.to_string(),
                    channel: channel(*add_way, channel_state),
                    orders: 0,
                    total_fen: 0,
                    first_purchase_at: None,
                    repurchase_at: None,
                    loyal_at: None,
                };
                // An earlier friend-add applied late keeps the purchases made so far.
                let row = match self.customers.remove(&key) {
                    Some(known) => FunnelRow {
                        orders: known.orders,
                        total_fen: known.total_fen,
                        first_purchase_at: known.first_purchase_at,
                        repurchase_at: known.repurchase_at,
                        loyal_at: known.loyal_at,
                        ..acquired
                    },
                    None => acquired,
                };
                self.customers.insert(key, row);
            }
            AnyEvent::Customer(CustomerEvent::PurchaseRecorded { amount, at, .. }) => {
                if let Some(c) = self.customers.get_mut(&key) {
                    c.orders += 1;
                    c.total_fen += amount.fen();
                    match c.orders {
                        1 => c.first_purchase_at = Some(*at),
                        2 => c.repurchase_at = Some(*at),
                        n if n == LOYAL_ORDERS => c.loyal_at = Some(*at),
                        _ => {}
                    }
                }
            }
            AnyEvent::Staff(
                StaffEvent::StaffRegistered { .. } | StaffEvent::StaffMovedToStore { .. },
            ) => {
                self.staff.apply(e);
                // The batch's own customers now; the others by `mend`.
                for c in self.customers.values_mut() {
                    if c.tenant_id == key.0 && c.staff_id == key.1 {
                        c.store_id = self.staff.store_at(&key.0, &key.1, c.acquired_at);
                    }
                }
                if !self.moved.contains(&key) {
                    self.moved.push(key);
                }
            }
            _ => {}
        }
    }

    fn rows(&self) -> Rows {
        let mut rows = Rows::default();
        rows.put(self.customers.values());
        rows.put(self.staff.rows());
        rows
    }

    fn mend(&self) -> Vec<Mend> {
        self.moved
            .iter()
            .map(|(tenant, staff)| Mend {
                pieces: MEND_STORES.to_vec(),
                binds: vec![Val::Text(tenant.clone()), Val::Text(staff.clone())],
            })
            .collect()
    }

    fn for_customers(context: &crate::rebuild::Context) -> Self {
        Self::with_stores(context.staff_stores.clone())
    }
}

/// How to cut the funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Store,
    Staff,
    Channel,
    CohortMonth,
}

impl Dimension {
    fn column(self) -> &'static str {
        match self {
            Dimension::Store => "coalesce(store_id, '')",
            Dimension::Staff => "staff_id",
            Dimension::Channel => "channel",
            Dimension::CohortMonth => "cohort_month",
        }
    }
}

/// One cut of the funnel, with its conversion rates.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelLine {
    pub key: String,
    pub friends: i64,
    pub first_purchase: i64,
    pub repurchase: i64,
    pub loyal: i64,
}

impl FunnelLine {
    fn rate(part: i64, whole: i64) -> f64 {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    }

    pub fn first_purchase_rate(&self) -> f64 {
        Self::rate(self.first_purchase, self.friends)
    }

    pub fn repurchase_rate(&self) -> f64 {
        Self::rate(self.repurchase, self.first_purchase)
    }
}

/// The funnel of `tenant` cut by `by`, largest first.
pub async fn report(
    db: &Database,
    tenant: &str,
    by: Dimension,
) -> Result<Vec<FunnelLine>, ProjectionError> {
    let sql = format!(
        "SELECT {col}, count(*), \
                count(first_purchase_at), count(repurchase_at), count(loyal_at) \
           FROM rm_funnel_customer WHERE tenant_id = $1 \
          GROUP BY {col} ORDER BY count(*) DESC, {col}",
        col = by.column()
    );
    let rows: Vec<(String, i64, i64, i64, i64)> = crate::on_pool!(db, |pool| {
        sqlx::query_as(&sql).bind(tenant).fetch_all(pool).await
    })?;
    Ok(rows
        .into_iter()
        .map(
            |(key, friends, first_purchase, repurchase, loyal)| FunnelLine {
                key,
                friends,
                first_purchase,
                repurchase,
                loyal,
            },
        )
        .collect())
}

/// Coupon redemption by campaign: (campaign, issued, redeemed, expired).
pub async fn coupon_redemption(
    db: &Database,
    tenant: &str,
) -> Result<Vec<(String, i64, i64, i64)>, ProjectionError> {
    let sql = "SELECT campaign_id, count(*), \
                      sum(CASE WHEN status = 'redeemed' THEN 1 ELSE 0 END), \
                      sum(CASE WHEN status = 'expired' THEN 1 ELSE 0 END) \
                 FROM rm_customer_coupon WHERE tenant_id = $1 \
                GROUP BY campaign_id ORDER BY campaign_id";
    Ok(crate::on_pool!(db, |pool| {
        sqlx::query_as(sql).bind(tenant).fetch_all(pool).await
    })?)
}

#[cfg(test)]
mod tests {
    use crate::log::Checkpoint;
    use chrono::{TimeZone, Utc};
    use domain::customer::AddWay;
    use domain::values::{StaffId, StoreId};

    use super::*;

    fn logged(position: i64, id: &str, event: AnyEvent) -> LoggedEvent {
        LoggedEvent {
            checkpoint: Checkpoint { txid: 1, position },
            tenant: "acme".into(),
            local_id: id.into(),
            sequence: position,
            event,
        }
    }

    fn added(position: i64, customer: &str) -> LoggedEvent {
        logged(
            position,
            customer,
            AnyEvent::Customer(CustomerEvent::FriendAdded {
                staff: StaffId::parse("guide-1").unwrap(),
                add_way: AddWay::QR_CODE,
                channel_state: None,
                at: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
                    + chrono::Duration::hours(position),
            }),
        )
    }

    fn guide(position: i64, event: StaffEvent) -> LoggedEvent {
        logged(position, "guide-1", AnyEvent::Staff(event))
    }

    /// A guide registered at store-1 at 8:00 and moved to store-2 at 12:00; customers
    /// added at 11:00 (position 2) and 13:00 (position 4).
    fn moved_guide_log() -> Vec<LoggedEvent> {
        let day = |h| Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0).unwrap();
        vec![
            guide(
                1,
                StaffEvent::StaffRegistered {
                    name: "王芳".into(),
                    store: StoreId::parse("store-1").unwrap(),
                    title: "导购".into(),
                    customer_limit: 100,
                    at: day(8),
                },
            ),
            added(2, "wm-a"),
            guide(
                3,
                StaffEvent::StaffMovedToStore {
                    from: StoreId::parse("store-1").unwrap(),
                    to: StoreId::parse("store-2").unwrap(),
                    at: day(12),
                },
            ),
            added(4, "wm-b"),
        ]
    }

    fn customers(f: &Funnel) -> Vec<(String, Option<String>)> {
        let mut rows: Vec<_> = f
            .customers
            .values()
            .map(|c| (c.customer_id.clone(), c.store_id.clone()))
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn given_a_guide_who_moved_when_customers_are_folded_apart_then_each_keeps_the_store_of_its_day(
    ) {
        let log = moved_guide_log();
        // Given the log folded in its order (the incremental projector)
        let mut in_order = Funnel::default();
        for e in &log {
            in_order.apply(e);
        }
        // when the staff are folded first and each customer alone (a rebuild partition)
        let mut stores = StaffStores::default();
        let mut staff_only = Funnel::default();
        for e in log.iter().filter(|e| matches!(e.event, AnyEvent::Staff(_))) {
            stores.apply(e);
            staff_only.apply(e);
        }
        let stores = Arc::new(stores);
        let mut apart = Funnel::default();
        for e in log
            .iter()
            .filter(|e| matches!(e.event, AnyEvent::Customer(_)))
        {
            let mut alone = Funnel::with_stores(stores.clone());
            alone.apply(e);
            apart.customers.extend(alone.customers);
        }
        // then the rows are the same: each customer in the store of the day it was won.
        assert_eq!(customers(&apart), customers(&in_order));
        let wanted = |a: &str, b: &str| {
            vec![
                ("wm-a".to_string(), Some(a.to_string())),
                ("wm-b".to_string(), Some(b.to_string())),
            ]
        };
        assert_eq!(customers(&in_order), wanted("store-1", "store-2"));
        assert_eq!(staff_only.staff, in_order.staff);
    }

    #[test]
    fn given_the_guides_events_applied_after_the_customers_then_the_stores_are_the_same() {
        // Given the customers' lane ahead of the guide's (Citus keeps no order between)
        let log = moved_guide_log();
        let (guide_events, customer_events): (Vec<_>, Vec<_>) = log
            .into_iter()
            .partition(|e| matches!(e.event, AnyEvent::Staff(_)));
        // when the customers are applied first, then the guide's move and registration
        let mut late = Funnel::default();
        for e in customer_events.iter().chain(guide_events.iter().rev()) {
            late.apply(e);
        }
        // then each customer is placed by the time it was won, and the guide's customers
        // the batch did not load are mended.
        assert_eq!(
            customers(&late),
            vec![
                ("wm-a".to_string(), Some("store-1".to_string())),
                ("wm-b".to_string(), Some("store-2".to_string())),
            ]
        );
        let mends = late.mend();
        assert_eq!(
            mends.iter().map(|m| m.binds.clone()).collect::<Vec<_>>(),
            vec![vec![Val::Text("acme".into()), Val::Text("guide-1".into())]],
            "one mend per guide"
        );
    }

    #[test]
    fn given_a_relation_older_than_the_guides_registration_then_it_is_placed_in_the_first_known_store(
    ) {
        // Given a customer won at 11:00 and the guide first recorded at 8:00 of a later
        // day (the directory synced after the relation was made)
        let mut f = Funnel::default();
        f.apply(&added(2, "wm-old"));
        f.apply(&guide(
            5,
            StaffEvent::StaffRegistered {
                name: "王芳".into(),
                store: StoreId::parse("store-9").unwrap(),
                title: "导购".into(),
                customer_limit: 100,
                at: Utc.with_ymd_and_hms(2026, 4, 1, 8, 0, 0).unwrap(),
            },
        ));
        // then the customer is placed where the guide is first known to work
        assert_eq!(
            customers(&f),
            vec![("wm-old".to_string(), Some("store-9".to_string()))]
        );
    }
}
