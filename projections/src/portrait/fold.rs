//! The portrait as a pure fold over events. The incremental projector loads the rows a
//! batch touches, folds, and writes them back; a rebuild folds the whole log in memory.
//! Both run this code, so both produce the same rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use domain::customer::CustomerEvent;
use domain::staff::StaffEvent;
use domain::tags::TagLibraryEvent;

use super::rows::*;
use crate::log::{AnyEvent, LoggedEvent};
use crate::model::{touch, Keys, Mend, ReadModel, Rows, Touched};
use crate::table::{Table, Val};

/// Orders from which a customer counts as loyal.
pub const LOYAL_ORDERS: i64 = 5;

/// Lifecycle stages, in funnel order.
pub fn stage(relations: usize, purchases: i64) -> &'static str {
    match (relations, purchases) {
        (0, _) => "lost",
        (_, 0) => "friend",
        (_, 1) => "first_purchase",
        (_, n) if n < LOYAL_ORDERS => "repurchase",
        _ => "loyal",
    }
}

pub type Key = (String, String);

/// Everything the portrait knows of one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Portrait {
    pub customer: CustomerRow,
    pub relations: BTreeMap<String, RelationRow>,
    pub tags: BTreeMap<(String, String), CustomerTagRow>,
    pub groups: BTreeMap<String, CustomerGroupRow>,
    pub coupons: BTreeMap<String, CouponRow>,
}

impl Portrait {
    pub fn new(tenant: &str, customer: &str, at: DateTime<Utc>) -> Self {
        Self {
            customer: CustomerRow {
                tenant_id: tenant.to_string(),
                customer_id: customer.to_string(),
                name: None,
                phone: None,
                erased_at: None,
                first_added_at: None,
                first_staff_id: None,
                add_way: None,
                channel_state: None,
                stage: stage(0, 0).to_string(),
                purchases: 0,
                total_fen: 0,
                first_purchase_at: None,
                last_purchase_at: None,
                coupons_issued: 0,
                coupons_redeemed: 0,
                coupons_expired: 0,
                last_activity_at: at,
                version: 0,
            },
            relations: BTreeMap::new(),
            tags: BTreeMap::new(),
            groups: BTreeMap::new(),
            coupons: BTreeMap::new(),
        }
    }

    fn apply(&mut self, event: &CustomerEvent, sequence: i64) {
        self.apply_event(event, sequence);
        // The relations' copy of the sort key and stage. When they are not loaded (an
        // event of `changes_customer_row_only` in a projector batch) the batch mends
        // them in place ([`PortraitSet::mend`]).
        for r in self.relations.values_mut() {
            r.stage.clone_from(&self.customer.stage);
            r.last_activity_at = self.customer.last_activity_at;
        }
    }

    fn apply_event(&mut self, event: &CustomerEvent, sequence: i64) {
        let (tenant, customer) = (
            self.customer.tenant_id.clone(),
            self.customer.customer_id.clone(),
        );
        let c = &mut self.customer;
        c.version = sequence;
        // Being held out of a campaign is nothing the customer did.
        if !matches!(event, CustomerEvent::CampaignHeldOut { .. }) {
            c.last_activity_at = c.last_activity_at.max(event.at());
        }
        if changes_customer_row_only(event) {
            // Its other rows may not even be loaded (see `touched`): the stage, which
            // counts relations, stays as it is.
            return;
        }
        match event {
            CustomerEvent::FriendAdded {
                staff,
                add_way,
                channel_state,
                at,
            } => {
                // The first import applies relations in WeCom's order, not in time order.
                if c.first_added_at.is_none_or(|first| *at < first) {
                    c.first_added_at = Some(*at);
                    c.first_staff_id = Some(staff.to_string());
                    c.add_way = Some(i64::from(add_way.0));
                    c.channel_state = channel_state.clone();
                }
                self.relations.insert(
                    staff.to_string(),
                    RelationRow {
                        tenant_id: tenant,
                        customer_id: customer,
                        staff_id: staff.to_string(),
                        added_at: *at,
                        add_way: i64::from(add_way.0),
                        remark: String::new(),
                        description: String::new(),
                        stage: String::new(),
                        last_activity_at: *at,
                    },
                );
            }
            CustomerEvent::FriendRemoved { staff, .. } => {
                let staff = staff.to_string();
                self.relations.remove(&staff);
                self.tags.retain(|(s, _), _| *s != staff);
            }
            CustomerEvent::ProfileUpdated { name, phone, .. } => {
                // Empty once the customer is erased: what came later holds nothing of them.
                c.name = Some(name.clone()).filter(|n| !n.is_empty());
                c.phone = phone.clone();
            }
            CustomerEvent::Tagged { staff, tag, at } => {
                self.tags.insert(
                    (staff.to_string(), tag.to_string()),
                    CustomerTagRow {
                        tenant_id: tenant,
                        customer_id: customer,
                        staff_id: staff.to_string(),
                        tag_id: tag.to_string(),
                        tagged_at: *at,
                    },
                );
            }
            CustomerEvent::Untagged { staff, tag, .. } => {
                self.tags.remove(&(staff.to_string(), tag.to_string()));
            }
            CustomerEvent::RemarkChanged {
                staff,
                remark,
                description,
                ..
            } => {
                if let Some(r) = self.relations.get_mut(staff.as_str()) {
                    r.remark = remark.clone();
                    r.description = description.clone();
                }
            }
            CustomerEvent::CouponIssued {
                coupon,
                campaign,
                value,
                expires_at,
                at,
                ..
            } => {
                c.coupons_issued += 1;
                self.coupons.insert(
                    coupon.to_string(),
                    CouponRow {
                        tenant_id: tenant,
                        customer_id: customer,
                        coupon_id: coupon.to_string(),
                        campaign_id: campaign.to_string(),
                        value_fen: value.fen(),
                        issued_at: *at,
                        expires_at: *expires_at,
                        status: "issued".into(),
                        closed_at: None,
                    },
                );
            }
            CustomerEvent::CouponRedeemed { coupon, at, .. } => {
                c.coupons_redeemed += 1;
                if let Some(row) = self.coupons.get_mut(coupon.as_str()) {
                    row.status = "redeemed".into();
                    row.closed_at = Some(*at);
                }
            }
            CustomerEvent::CouponExpired { coupon, at } => {
                c.coupons_expired += 1;
                if let Some(row) = self.coupons.get_mut(coupon.as_str()) {
                    row.status = "expired".into();
                    row.closed_at = Some(*at);
                }
            }
            CustomerEvent::JoinedGroup { group, at, .. } => {
                self.groups.insert(
                    group.to_string(),
                    CustomerGroupRow {
                        tenant_id: tenant,
                        customer_id: customer,
                        group_id: group.to_string(),
                        joined_at: *at,
                    },
                );
            }
            CustomerEvent::LeftGroup { group, .. } => {
                self.groups.remove(group.as_str());
            }
            CustomerEvent::PurchaseRecorded { amount, at, .. } => {
                c.purchases += 1;
                c.total_fen += amount.fen();
                c.first_purchase_at = Some(c.first_purchase_at.map_or(*at, |t| t.min(*at)));
                c.last_purchase_at = Some(c.last_purchase_at.map_or(*at, |t| t.max(*at)));
            }
            CustomerEvent::HandoverAccepted { from, to, at, .. } => {
                // As in the domain: the successor takes the relation with its remark and
                // tags; the FriendRemoved{by: Transfer} that follows ends the old one.
                let (from, to) = (from.to_string(), to.to_string());
                if let Some(moved) = self.relations.get(&from).cloned() {
                    let successor = self.relations.entry(to.clone()).or_insert(RelationRow {
                        staff_id: to.clone(),
                        added_at: *at,
                        add_way: i64::from(domain::customer::AddWay::ADMIN_ASSIGNED.0),
                        remark: String::new(),
                        description: String::new(),
                        ..moved.clone()
                    });
                    if successor.remark.is_empty() {
                        successor.remark = moved.remark;
                        successor.description = moved.description;
                    }
                    let carried: Vec<CustomerTagRow> = self
                        .tags
                        .values()
                        .filter(|t| t.staff_id == from)
                        .cloned()
                        .collect();
                    for t in carried {
                        self.tags
                            .entry((to.clone(), t.tag_id.clone()))
                            .or_insert(CustomerTagRow {
                                staff_id: to.clone(),
                                ..t
                            });
                    }
                }
            }
            CustomerEvent::MassMessageDelivered { .. }
            | CustomerEvent::MomentDelivered { .. }
            | CustomerEvent::CampaignHeldOut { .. }
            | CustomerEvent::WelcomeMessageSent { .. }
            | CustomerEvent::HandoverRequested { .. }
            | CustomerEvent::HandoverRefused { .. } => {} // see changes_customer_row_only
            CustomerEvent::CustomerErased { at, .. } => {
                c.name = None;
                c.phone = None;
                c.erased_at = Some(*at);
                for r in self.relations.values_mut() {
                    r.remark.clear();
                    r.description.clear();
                }
            }
        }
        self.customer.stage = stage(self.relations.len(), self.customer.purchases).to_string();
    }
}

/// Events that change nothing of a customer's portrait but its own row (version and last
/// activity). A handover job appends one to each of thousands of customers; loading and
/// rewriting their relations, tags, groups and coupons for it would be wasted work.
fn changes_customer_row_only(event: &CustomerEvent) -> bool {
    matches!(
        event,
        CustomerEvent::MassMessageDelivered { .. }
            | CustomerEvent::MomentDelivered { .. }
            | CustomerEvent::CampaignHeldOut { .. }
            | CustomerEvent::WelcomeMessageSent { .. }
            | CustomerEvent::HandoverRequested { .. }
            | CustomerEvent::HandoverRefused { .. }
    )
}

/// The portrait's rows for a set of keys: all of them in a rebuild, the ones a batch
/// touches in incremental mode.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PortraitSet {
    pub customers: HashMap<Key, Portrait>,
    pub tags: HashMap<Key, TagRow>,
    pub tag_groups: HashMap<Key, TagGroupRow>,
    pub staff: HashMap<Key, StaffRow>,
    /// Customers with an event that changed their row only: their relations, not loaded,
    /// take the new stage and last activity through [`ReadModel::mend`].
    pub row_only: BTreeSet<Key>,
}

/// Relations' copy of the customer's stage and last activity, set in place: one statement
/// per [`MEND_ROWS`] customers, each a row of `VALUES` (tenant, customer, stage, time).
const MEND_HEAD: &str = "UPDATE rm_customer_staff SET stage = v.column3, \
    last_activity_at = v.column4 FROM (VALUES (";
const MEND_NEXT_VALUE: &str = ", ";
const MEND_NEXT_ROW: &str = "), (";
const MEND_TAIL: &str = ")) AS v WHERE rm_customer_staff.tenant_id = v.column1 \
    AND rm_customer_staff.customer_id = v.column2";
const MEND_ROWS: usize = 200;

impl ReadModel for PortraitSet {
    const NAME: &'static str = super::NAME;
    const VERSION: i64 = super::VERSION;
    const READS: &'static [&'static str] = crate::log::AGGREGATE_TYPES;
    // The API caches portraits (api/engine/src/reads/cache.rs).
    const ANNOUNCES: crate::announce::Announces = crate::announce::Announces::Everything;
    const TABLES: &'static [(&'static Table, &'static str)] = &[
        (&CUSTOMER, "customer_id"),
        (&RELATION, "customer_id"),
        (&CUSTOMER_TAG, "customer_id"),
        (&CUSTOMER_GROUP, "customer_id"),
        (&COUPON, "customer_id"),
        (&TAG, "tag_id"),
        (&TAG_GROUP, "group_id"),
        (&STAFF, "staff_id"),
    ];

    fn touched(events: &[LoggedEvent]) -> Touched {
        let mut keys = Touched::default();
        // A customer's detail tables share one set of keys, filled below.
        let mut details = Keys::new();
        for e in events {
            match &e.event {
                AnyEvent::Customer(event) => {
                    touch(keys.of::<CustomerRow>(), &e.tenant, &e.local_id);
                    if !changes_customer_row_only(event) {
                        touch(&mut details, &e.tenant, &e.local_id);
                    }
                }
                AnyEvent::Staff(StaffEvent::GroupTransferClaimed { .. }) | AnyEvent::Group(_) => {}
                AnyEvent::Staff(_) => touch(keys.of::<StaffRow>(), &e.tenant, &e.local_id),
                AnyEvent::TagLibrary(ev) => match ev {
                    TagLibraryEvent::TagGroupCreated { group, .. }
                    | TagLibraryEvent::TagGroupRenamed { group, .. }
                    | TagLibraryEvent::TagGroupDeleted { group, .. } => {
                        touch(keys.of::<TagGroupRow>(), &e.tenant, group.as_str())
                    }
                    TagLibraryEvent::TagCreated { tag, .. }
                    | TagLibraryEvent::TagRenamed { tag, .. }
                    | TagLibraryEvent::TagDeleted { tag, .. } => {
                        touch(keys.of::<TagRow>(), &e.tenant, tag.as_str())
                    }
                    TagLibraryEvent::TagGroupsOrdered { order, .. } => {
                        for (group, _) in order {
                            touch(keys.of::<TagGroupRow>(), &e.tenant, group.as_str());
                        }
                    }
                    TagLibraryEvent::TagsOrdered { order, .. } => {
                        for (tag, _) in order {
                            touch(keys.of::<TagRow>(), &e.tenant, tag.as_str());
                        }
                    }
                },
            }
        }
        if !details.is_empty() {
            *keys.of::<RelationRow>() = details.clone();
            *keys.of::<CustomerTagRow>() = details.clone();
            *keys.of::<CustomerGroupRow>() = details.clone();
            *keys.of::<CouponRow>() = details;
        }
        keys
    }

    fn load(&mut self, mut rows: Rows) {
        // Customers first: the detail rows attach to them.
        for c in rows.take_rows::<CustomerRow>() {
            let mut p = Portrait::new(&c.tenant_id, &c.customer_id, c.last_activity_at);
            let key = (c.tenant_id.clone(), c.customer_id.clone());
            p.customer = c;
            self.customers.insert(key, p);
        }
        for r in rows.take_rows::<RelationRow>() {
            if let Some(p) = self.portrait(&r.tenant_id, &r.customer_id) {
                p.relations.insert(r.staff_id.clone(), r);
            }
        }
        for t in rows.take_rows::<CustomerTagRow>() {
            if let Some(p) = self.portrait(&t.tenant_id, &t.customer_id) {
                p.tags.insert((t.staff_id.clone(), t.tag_id.clone()), t);
            }
        }
        for g in rows.take_rows::<CustomerGroupRow>() {
            if let Some(p) = self.portrait(&g.tenant_id, &g.customer_id) {
                p.groups.insert(g.group_id.clone(), g);
            }
        }
        for c in rows.take_rows::<CouponRow>() {
            if let Some(p) = self.portrait(&c.tenant_id, &c.customer_id) {
                p.coupons.insert(c.coupon_id.clone(), c);
            }
        }
        for t in rows.take_rows::<TagRow>() {
            self.tags.insert((t.tenant_id.clone(), t.tag_id.clone()), t);
        }
        for g in rows.take_rows::<TagGroupRow>() {
            self.tag_groups
                .insert((g.tenant_id.clone(), g.group_id.clone()), g);
        }
        for s in rows.take_rows::<StaffRow>() {
            self.staff
                .insert((s.tenant_id.clone(), s.staff_id.clone()), s);
        }
    }

    fn mend(&self) -> Vec<Mend> {
        let keys: Vec<&Key> = self.row_only.iter().collect();
        keys.chunks(MEND_ROWS)
            .map(|chunk| {
                let mut pieces = vec![MEND_HEAD];
                let mut binds = Vec::with_capacity(chunk.len() * 4);
                for (i, key) in chunk.iter().enumerate() {
                    let c = &self.customers[*key].customer;
                    if i > 0 {
                        pieces.push(MEND_NEXT_ROW);
                    }
                    pieces.extend([MEND_NEXT_VALUE; 3]);
                    binds.extend([
                        Val::Text(c.tenant_id.clone()),
                        Val::Text(c.customer_id.clone()),
                        Val::Text(c.stage.clone()),
                        Val::Time(c.last_activity_at),
                    ]);
                }
                pieces.push(MEND_TAIL);
                Mend { pieces, binds }
            })
            .collect()
    }

    fn rows(&self) -> Rows {
        let portraits = || self.customers.values();
        let mut rows = Rows::default();
        rows.put(portraits().map(|p| &p.customer));
        rows.put(portraits().flat_map(|p| p.relations.values()));
        rows.put(portraits().flat_map(|p| p.tags.values()));
        rows.put(portraits().flat_map(|p| p.groups.values()));
        rows.put(portraits().flat_map(|p| p.coupons.values()));
        rows.put(self.tags.values());
        rows.put(self.tag_groups.values());
        rows.put(self.staff.values());
        rows
    }

    fn apply(&mut self, e: &LoggedEvent) {
        let key = (e.tenant.clone(), e.local_id.clone());
        match &e.event {
            AnyEvent::Customer(event) => {
                if changes_customer_row_only(event) {
                    self.row_only.insert(key.clone());
                }
                self.customers
                    .entry(key)
                    .or_insert_with(|| Portrait::new(&e.tenant, &e.local_id, event.at()))
                    .apply(event, e.sequence);
            }
            AnyEvent::TagLibrary(event) => self.apply_library(&e.tenant, event),
            AnyEvent::Staff(event) => self.apply_staff(key, event),
            AnyEvent::Group(_) => {}
        }
    }
}

impl PortraitSet {
    fn portrait(&mut self, tenant: &str, customer: &str) -> Option<&mut Portrait> {
        self.customers
            .get_mut(&(tenant.to_string(), customer.to_string()))
    }

    fn apply_library(&mut self, tenant: &str, event: &TagLibraryEvent) {
        let key = |id: &str| (tenant.to_string(), id.to_string());
        match event {
            TagLibraryEvent::TagGroupCreated { group, name, .. } => {
                self.tag_groups.insert(
                    key(group.as_str()),
                    TagGroupRow {
                        tenant_id: tenant.to_string(),
                        group_id: group.to_string(),
                        name: name.clone(),
                        deleted: false,
                        sort_order: 0,
                    },
                );
            }
            TagLibraryEvent::TagGroupRenamed { group, name, .. } => {
                if let Some(g) = self.tag_groups.get_mut(&key(group.as_str())) {
                    g.name = name.clone();
                }
            }
            TagLibraryEvent::TagGroupDeleted { group, .. } => {
                if let Some(g) = self.tag_groups.get_mut(&key(group.as_str())) {
                    g.deleted = true;
                }
            }
            TagLibraryEvent::TagCreated {
                tag, group, name, ..
            } => {
                self.tags.insert(
                    key(tag.as_str()),
                    TagRow {
                        tenant_id: tenant.to_string(),
                        tag_id: tag.to_string(),
                        group_id: group.to_string(),
                        name: name.clone(),
                        deleted: false,
                        sort_order: 0,
                    },
                );
            }
            TagLibraryEvent::TagRenamed { tag, name, .. } => {
                if let Some(t) = self.tags.get_mut(&key(tag.as_str())) {
                    t.name = name.clone();
                }
            }
            TagLibraryEvent::TagDeleted { tag, .. } => {
                if let Some(t) = self.tags.get_mut(&key(tag.as_str())) {
                    t.deleted = true;
                }
            }
            TagLibraryEvent::TagGroupsOrdered { order, .. } => {
                for (group, n) in order {
                    if let Some(g) = self.tag_groups.get_mut(&key(group.as_str())) {
                        g.sort_order = i64::from(*n);
                    }
                }
            }
            TagLibraryEvent::TagsOrdered { order, .. } => {
                for (tag, n) in order {
                    if let Some(t) = self.tags.get_mut(&key(tag.as_str())) {
                        t.sort_order = i64::from(*n);
                    }
                }
            }
        }
    }

    fn apply_staff(&mut self, key: Key, event: &StaffEvent) {
        match event {
            StaffEvent::StaffRegistered {
                name,
                store,
                title,
                customer_limit,
                ..
            } => {
                self.staff.insert(
                    key.clone(),
                    StaffRow {
                        tenant_id: key.0,
                        staff_id: key.1,
                        name: name.clone(),
                        store_id: store.to_string(),
                        title: title.clone(),
                        customer_limit: i64::from(*customer_limit),
                        departed_at: None,
                    },
                );
            }
            StaffEvent::StaffMovedToStore { to, .. } => {
                if let Some(s) = self.staff.get_mut(&key) {
                    s.store_id = to.to_string();
                }
            }
            StaffEvent::CustomerLimitChanged { limit, .. } => {
                if let Some(s) = self.staff.get_mut(&key) {
                    s.customer_limit = i64::from(*limit);
                }
            }
            StaffEvent::StaffDeparted { at } => {
                if let Some(s) = self.staff.get_mut(&key) {
                    s.departed_at = Some(*at);
                }
            }
            StaffEvent::GroupTransferClaimed { .. } => {}
        }
    }
}
