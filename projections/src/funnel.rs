//! The repurchase funnel: friend added -> first purchase -> repurchase (2+ orders) ->
//! loyal (5+), per customer with its acquisition store, guide, channel and cohort month,
//! so it can be cut by any of them with conversion rates. Coupon redemption by campaign
//! is read from the portrait's coupon table.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Datelike;
use domain::customer::CustomerEvent;
use domain::staff::StaffEvent;

use crate::db::Database;
use crate::error::ProjectionError;
use crate::log::{AnyEvent, Checkpoint, LoggedEvent};
use crate::model::{touch, ReadModel, Rows, Touched};
use crate::portrait::fold::LOYAL_ORDERS;
use crate::table::{table_row, Table};

pub const NAME: &str = "repurchase_funnel";
/// Bump when the fold or the tables change: the projection is then rebuilt.
/// 2: the acquisition is the earliest friend-add, whatever order they arrive in (the
/// first import brings relations in WeCom's order, not in time order).
pub const VERSION: i64 = 2;

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
    /// Which store each guide works at, to place a customer's acquisition.
    FunnelStaffRow in FUNNEL_STAFF = "rm_funnel_staff",
    key ["tenant_id", "staff_id"],
    indexes [],
    {
        tenant_id: text,
        staff_id: text,
        store_id: text,
    }
}

type Key = (String, String);

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Funnel {
    customers: HashMap<Key, FunnelRow>,
    staff: HashMap<Key, FunnelStaffRow>,
    /// In a partitioned rebuild a customer's events arrive without the staff events
    /// around them: each guide's stores over time, read before the customers.
    stores: Option<Arc<StaffStores>>,
}

/// Each guide's store over time, in log order: where a guide worked when a customer was
/// acquired, for a fold that sees one customer's events at a time.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StaffStores(HashMap<Key, Vec<(Checkpoint, String)>>);

impl StaffStores {
    /// Records what a staff event says of the guide's store.
    pub fn apply(&mut self, e: &LoggedEvent) {
        let store = match &e.event {
            AnyEvent::Staff(StaffEvent::StaffRegistered { store, .. }) => store,
            AnyEvent::Staff(StaffEvent::StaffMovedToStore { to, .. }) => to,
            _ => return,
        };
        let key = (e.tenant.clone(), e.local_id.clone());
        let history = self.0.entry(key).or_default();
        // As the incremental fold: a move of a guide never registered changes nothing.
        if history.is_empty()
            && matches!(
                e.event,
                AnyEvent::Staff(StaffEvent::StaffMovedToStore { .. })
            )
        {
            return;
        }
        history.push((e.checkpoint, store.to_string()));
    }

    /// Sorts each history by log order (a partition reads streams, not the log).
    pub fn seal(&mut self) {
        for history in self.0.values_mut() {
            history.sort();
        }
    }

    /// The guide's store just before `at`.
    pub fn store_at(&self, tenant: &str, staff: &str, at: Checkpoint) -> Option<String> {
        let history = self.0.get(&(tenant.to_string(), staff.to_string()))?;
        let before = history.partition_point(|(when, _)| *when < at);
        before.checked_sub(1).map(|i| history[i].1.clone())
    }
}

impl Funnel {
    /// A funnel for one partition's customers, finding stores in `stores`.
    pub fn with_stores(stores: Arc<StaffStores>) -> Self {
        Self {
            stores: Some(stores),
            ..Self::default()
        }
    }
}

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
            self.staff
                .insert((r.tenant_id.clone(), r.staff_id.clone()), r);
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
                let store_id = match &self.stores {
                    Some(stores) => stores.store_at(&e.tenant, staff.as_str(), e.checkpoint),
                    None => self
                        .staff
                        .get(&(e.tenant.clone(), staff.to_string()))
                        .map(|s| s.store_id.clone()),
                };
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
            AnyEvent::Staff(StaffEvent::StaffRegistered { store, .. }) => {
                let row = FunnelStaffRow {
                    tenant_id: key.0.clone(),
                    staff_id: key.1.clone(),
                    store_id: store.to_string(),
                };
                self.staff.insert(key, row);
            }
            AnyEvent::Staff(StaffEvent::StaffMovedToStore { to, .. }) => {
                if let Some(s) = self.staff.get_mut(&key) {
                    s.store_id = to.to_string();
                }
            }
            _ => {}
        }
    }

    fn rows(&self) -> Rows {
        let mut rows = Rows::default();
        rows.put(self.customers.values());
        rows.put(self.staff.values());
        rows
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

    #[test]
    fn given_a_guide_who_moved_when_customers_are_folded_apart_then_each_keeps_the_store_of_its_day(
    ) {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
        let staff = |position, event| logged(position, "guide-1", AnyEvent::Staff(event));
        let log = vec![
            staff(
                1,
                StaffEvent::StaffRegistered {
                    name: "王芳".into(),
                    store: StoreId::parse("store-1").unwrap(),
                    title: "导购".into(),
                    customer_limit: 100,
                    at,
                },
            ),
            added(2, "wm-a"),
            staff(
                3,
                StaffEvent::StaffMovedToStore {
                    from: StoreId::parse("store-1").unwrap(),
                    to: StoreId::parse("store-2").unwrap(),
                    at,
                },
            ),
            added(4, "wm-b"),
        ];
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
        stores.seal();
        let stores = Arc::new(stores);
        let mut customers = Vec::new();
        for e in log
            .iter()
            .filter(|e| matches!(e.event, AnyEvent::Customer(_)))
        {
            let mut alone = Funnel::with_stores(stores.clone());
            alone.apply(e);
            customers.extend(alone.customers.into_values());
        }
        // then the rows are the same: each customer in the store of the day it was won.
        let mut expected: Vec<_> = in_order.customers.values().cloned().collect();
        expected.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        customers.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        assert_eq!(customers, expected);
        let stores: Vec<_> = customers.iter().map(|c| c.store_id.as_deref()).collect();
        assert_eq!(stores, vec![Some("store-1"), Some("store-2")]);
        assert_eq!(staff_only.staff, in_order.staff);
    }
}
