//! Moving portrait rows between the tables and a [`PortraitSet`]: load what a batch
//! touches, and replace it after the fold.

use std::collections::{BTreeMap, BTreeSet};

use super::fold::{Portrait, PortraitSet};
use crate::log::{AnyEvent, LoggedEvent};
use domain::staff::StaffEvent;
use domain::tags::TagLibraryEvent;

/// The keys a batch of events touches, by tenant.
#[derive(Debug, Default)]
pub struct Touched {
    pub customers: BTreeMap<String, BTreeSet<String>>,
    pub tags: BTreeMap<String, BTreeSet<String>>,
    pub tag_groups: BTreeMap<String, BTreeSet<String>>,
    pub staff: BTreeMap<String, BTreeSet<String>>,
}

impl Touched {
    pub fn of(events: &[LoggedEvent]) -> Self {
        let mut t = Touched::default();
        for e in events {
            let tenant = e.tenant.clone();
            match &e.event {
                AnyEvent::Customer(_) => {
                    t.customers
                        .entry(tenant)
                        .or_default()
                        .insert(e.local_id.clone());
                }
                AnyEvent::Staff(StaffEvent::GroupTransferClaimed { .. }) | AnyEvent::Group(_) => {}
                AnyEvent::Staff(_) => {
                    t.staff
                        .entry(tenant)
                        .or_default()
                        .insert(e.local_id.clone());
                }
                AnyEvent::TagLibrary(ev) => match ev {
                    TagLibraryEvent::TagGroupCreated { group, .. }
                    | TagLibraryEvent::TagGroupRenamed { group, .. }
                    | TagLibraryEvent::TagGroupDeleted { group, .. } => {
                        t.tag_groups
                            .entry(tenant)
                            .or_default()
                            .insert(group.to_string());
                    }
                    TagLibraryEvent::TagCreated { tag, .. }
                    | TagLibraryEvent::TagRenamed { tag, .. }
                    | TagLibraryEvent::TagDeleted { tag, .. } => {
                        t.tags.entry(tenant).or_default().insert(tag.to_string());
                    }
                },
            }
        }
        t
    }
}

fn ids(set: &BTreeSet<String>) -> Vec<String> {
    set.iter().cloned().collect()
}

/// Every row of `set`, table by table, in the tables' column order.
pub fn rows_by_table(
    set: &PortraitSet,
) -> Vec<(&'static crate::table::Table, Vec<Vec<crate::table::Val>>)> {
    use super::rows::*;
    let mut customer = Vec::new();
    let mut relation = Vec::new();
    let mut tag = Vec::new();
    let mut group = Vec::new();
    let mut coupon = Vec::new();
    for p in set.customers.values() {
        customer.push(p.customer.values());
        relation.extend(p.relations.values().map(Row::values));
        tag.extend(p.tags.values().map(Row::values));
        group.extend(p.groups.values().map(Row::values));
        coupon.extend(p.coupons.values().map(Row::values));
    }
    vec![
        (&CUSTOMER, customer),
        (&RELATION, relation),
        (&CUSTOMER_TAG, tag),
        (&CUSTOMER_GROUP, group),
        (&COUPON, coupon),
        (&TAG, set.tags.values().map(Row::values).collect()),
        (
            &TAG_GROUP,
            set.tag_groups.values().map(Row::values).collect(),
        ),
        (&STAFF, set.staff.values().map(Row::values).collect()),
    ]
}

macro_rules! portrait_store {
    ($m:ident) => {
        pub mod $m {
            use super::super::rows::*;
            use super::*;
            use crate::sql::$m::{delete_in, insert_rows, select_in, Conn};

            /// Loads the current rows of every key in `touched`.
            pub async fn load(
                conn: &mut Conn,
                touched: &Touched,
            ) -> Result<PortraitSet, sqlx::Error> {
                let mut set = PortraitSet::default();
                for (tenant, customers) in &touched.customers {
                    let ids = ids(customers);
                    let rows: Vec<CustomerRow> =
                        select_in(conn, &CUSTOMER, tenant, "customer_id", &ids).await?;
                    for c in rows {
                        let key = (c.tenant_id.clone(), c.customer_id.clone());
                        let mut p = Portrait::new(&c.tenant_id, &c.customer_id, c.last_activity_at);
                        p.customer = c;
                        set.customers.insert(key, p);
                    }
                    let relations: Vec<RelationRow> =
                        select_in(conn, &RELATION, tenant, "customer_id", &ids).await?;
                    for r in relations {
                        if let Some(p) = set
                            .customers
                            .get_mut(&(r.tenant_id.clone(), r.customer_id.clone()))
                        {
                            p.relations.insert(r.staff_id.clone(), r);
                        }
                    }
                    let tags: Vec<CustomerTagRow> =
                        select_in(conn, &CUSTOMER_TAG, tenant, "customer_id", &ids).await?;
                    for t in tags {
                        if let Some(p) = set
                            .customers
                            .get_mut(&(t.tenant_id.clone(), t.customer_id.clone()))
                        {
                            p.tags.insert((t.staff_id.clone(), t.tag_id.clone()), t);
                        }
                    }
                    let groups: Vec<CustomerGroupRow> =
                        select_in(conn, &CUSTOMER_GROUP, tenant, "customer_id", &ids).await?;
                    for g in groups {
                        if let Some(p) = set
                            .customers
                            .get_mut(&(g.tenant_id.clone(), g.customer_id.clone()))
                        {
                            p.groups.insert(g.group_id.clone(), g);
                        }
                    }
                    let coupons: Vec<CouponRow> =
                        select_in(conn, &COUPON, tenant, "customer_id", &ids).await?;
                    for c in coupons {
                        if let Some(p) = set
                            .customers
                            .get_mut(&(c.tenant_id.clone(), c.customer_id.clone()))
                        {
                            p.coupons.insert(c.coupon_id.clone(), c);
                        }
                    }
                }
                for (tenant, tags) in &touched.tags {
                    let rows: Vec<TagRow> =
                        select_in(conn, &TAG, tenant, "tag_id", &ids(tags)).await?;
                    set.tags.extend(
                        rows.into_iter()
                            .map(|r| ((r.tenant_id.clone(), r.tag_id.clone()), r)),
                    );
                }
                for (tenant, groups) in &touched.tag_groups {
                    let rows: Vec<TagGroupRow> =
                        select_in(conn, &TAG_GROUP, tenant, "group_id", &ids(groups)).await?;
                    set.tag_groups.extend(
                        rows.into_iter()
                            .map(|r| ((r.tenant_id.clone(), r.group_id.clone()), r)),
                    );
                }
                for (tenant, staff) in &touched.staff {
                    let rows: Vec<StaffRow> =
                        select_in(conn, &STAFF, tenant, "staff_id", &ids(staff)).await?;
                    set.staff.extend(
                        rows.into_iter()
                            .map(|r| ((r.tenant_id.clone(), r.staff_id.clone()), r)),
                    );
                }
                Ok(set)
            }

            /// Replaces the rows of every key in `touched` with those in `set`.
            pub async fn replace(
                conn: &mut Conn,
                set: &PortraitSet,
                touched: &Touched,
            ) -> Result<(), sqlx::Error> {
                for (tenant, customers) in &touched.customers {
                    let ids = ids(customers);
                    for table in [
                        &CUSTOMER,
                        &RELATION,
                        &CUSTOMER_TAG,
                        &CUSTOMER_GROUP,
                        &COUPON,
                    ] {
                        delete_in(conn, table.name, tenant, "customer_id", &ids).await?;
                    }
                }
                for (tenant, tags) in &touched.tags {
                    delete_in(conn, TAG.name, tenant, "tag_id", &ids(tags)).await?;
                }
                for (tenant, groups) in &touched.tag_groups {
                    delete_in(conn, TAG_GROUP.name, tenant, "group_id", &ids(groups)).await?;
                }
                for (tenant, staff) in &touched.staff {
                    delete_in(conn, STAFF.name, tenant, "staff_id", &ids(staff)).await?;
                }
                for (table, rows) in rows_by_table(set) {
                    insert_rows(conn, table, table.name, &rows).await?;
                }
                Ok(())
            }
        }
    };
}

portrait_store!(pg);
portrait_store!(lite);
