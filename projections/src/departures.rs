//! The staff-departure reassignment view: per departed guide, the customers and groups
//! still to hand over, in flight (with the auto-accept time), done and refused; per
//! successor, what they received.

use std::collections::{BTreeMap, HashMap};

use domain::customer::{CustomerEvent, HandoverKind};
use domain::group::GroupEvent;
use domain::staff::StaffEvent;

use crate::log::{AnyEvent, LoggedEvent};
use crate::model::{touch, ReadModel, Rows, Touched};
use crate::table::{table_row, Table};

pub const NAME: &str = "staff_departures";
/// 2: an index for the auto-accept's scan of due handovers across tenants.
/// 3: the group notice (`rm_group_owner.notice`).
pub const VERSION: i64 = 3;

table_row! {
    /// One handover of one customer and where it stands.
    HandoverRow in HANDOVER = "rm_handover",
    key ["tenant_id", "customer_id", "handover_id"],
    indexes [
        ["tenant_id", "from_staff_id", "status"],
        ["tenant_id", "to_staff_id", "status"],
        ["status", "auto_accept_at"]
    ],
    {
        tenant_id: text,
        customer_id: text,
        handover_id: text,
        from_staff_id: text,
        to_staff_id: text,
        kind: text,
        status: text,
        requested_at: time,
        auto_accept_at: time,
        concluded_at: opt_time,
    }
}

table_row! {
    /// Who serves whom right now.
    ServesRow in SERVES = "rm_staff_customer",
    key ["tenant_id", "customer_id", "staff_id"],
    indexes [["tenant_id", "staff_id"]],
    {
        tenant_id: text,
        customer_id: text,
        staff_id: text,
        since: time,
    }
}

table_row! {
    DepartureStaffRow in STAFF = "rm_departure_staff",
    key ["tenant_id", "staff_id"],
    indexes [["tenant_id", "departed_at"]],
    {
        tenant_id: text,
        staff_id: text,
        name: text,
        store_id: text,
        departed_at: opt_time,
    }
}

table_row! {
    /// A customer group's owner, and who owned it before a transfer.
    GroupOwnerRow in GROUP_OWNER = "rm_group_owner",
    key ["tenant_id", "group_id"],
    indexes [["tenant_id", "owner_staff_id"], ["tenant_id", "previous_owner_id"]],
    {
        tenant_id: text,
        group_id: text,
        name: text,
        owner_staff_id: text,
        previous_owner_id: opt_text,
        transferred_at: opt_time,
        dismissed: bool,
        // The group notice (群公告), empty until one is set.
        notice: text,
    }
}

type Key = (String, String);

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Departures {
    handovers: BTreeMap<(String, String, String), HandoverRow>,
    serves: BTreeMap<(String, String, String), ServesRow>,
    staff: HashMap<Key, DepartureStaffRow>,
    groups: HashMap<Key, GroupOwnerRow>,
}

impl ReadModel for Departures {
    const NAME: &'static str = NAME;
    const VERSION: i64 = VERSION;
    const READS: &'static [&'static str] = &["Customer", "CustomerGroup", "Staff"];
    // Portraits show the group names kept here (rm_group_owner).
    const ANNOUNCES: crate::announce::Announces = crate::announce::Announces::OtherThanCustomers;
    const TABLES: &'static [(&'static Table, &'static str)] = &[
        (&HANDOVER, "customer_id"),
        (&SERVES, "customer_id"),
        (&STAFF, "staff_id"),
        (&GROUP_OWNER, "group_id"),
    ];

    fn touched(events: &[LoggedEvent]) -> Touched {
        // Only the rows an event changes: a handover job's thousands of requests and
        // its day of group claims would otherwise reload and rewrite rows they leave as
        // they are. `apply` writes nothing outside these.
        let mut keys = Touched::default();
        for e in events {
            let (tenant, id) = (&e.tenant, &e.local_id);
            match &e.event {
                AnyEvent::Customer(event) => match event {
                    CustomerEvent::FriendAdded { .. } | CustomerEvent::FriendRemoved { .. } => {
                        touch(keys.of::<ServesRow>(), tenant, id)
                    }
                    CustomerEvent::HandoverRequested { .. }
                    | CustomerEvent::HandoverRefused { .. } => {
                        touch(keys.of::<HandoverRow>(), tenant, id)
                    }
                    CustomerEvent::HandoverAccepted { .. } => {
                        touch(keys.of::<HandoverRow>(), tenant, id);
                        touch(keys.of::<ServesRow>(), tenant, id);
                    }
                    _ => {}
                },
                AnyEvent::Staff(
                    StaffEvent::CustomerLimitChanged { .. }
                    | StaffEvent::GroupTransferClaimed { .. },
                ) => {}
                AnyEvent::Staff(_) => touch(keys.of::<DepartureStaffRow>(), tenant, id),
                AnyEvent::Group(
                    GroupEvent::MemberAdmitted { .. } | GroupEvent::MemberRemoved { .. },
                ) => {}
                AnyEvent::Group(_) => touch(keys.of::<GroupOwnerRow>(), tenant, id),
                AnyEvent::TagLibrary(_) => {}
            }
        }
        keys
    }

    fn load(&mut self, mut rows: Rows) {
        for r in rows.take_rows::<HandoverRow>() {
            let key = (
                r.tenant_id.clone(),
                r.customer_id.clone(),
                r.handover_id.clone(),
            );
            self.handovers.insert(key, r);
        }
        for r in rows.take_rows::<ServesRow>() {
            let key = (
                r.tenant_id.clone(),
                r.customer_id.clone(),
                r.staff_id.clone(),
            );
            self.serves.insert(key, r);
        }
        for r in rows.take_rows::<DepartureStaffRow>() {
            self.staff
                .insert((r.tenant_id.clone(), r.staff_id.clone()), r);
        }
        for r in rows.take_rows::<GroupOwnerRow>() {
            self.groups
                .insert((r.tenant_id.clone(), r.group_id.clone()), r);
        }
    }

    fn apply(&mut self, e: &LoggedEvent) {
        let (tenant, id) = (e.tenant.clone(), e.local_id.clone());
        match &e.event {
            AnyEvent::Customer(event) => self.apply_customer(tenant, id, event),
            AnyEvent::Staff(event) => self.apply_staff((tenant, id), event),
            AnyEvent::Group(event) => self.apply_group((tenant, id), event),
            AnyEvent::TagLibrary(_) => {}
        }
    }

    fn rows(&self) -> Rows {
        let mut rows = Rows::default();
        rows.put(self.handovers.values());
        rows.put(self.serves.values());
        rows.put(self.staff.values());
        rows.put(self.groups.values());
        rows
    }
}

impl Departures {
    fn apply_customer(&mut self, tenant: String, customer: String, event: &CustomerEvent) {
        match event {
            CustomerEvent::FriendAdded { staff, at, .. } => {
                let row = ServesRow {
                    tenant_id: tenant.clone(),
                    customer_id: customer.clone(),
                    staff_id: staff.to_string(),
                    since: *at,
                };
                self.serves
                    .insert((tenant, customer, staff.to_string()), row);
            }
            CustomerEvent::FriendRemoved { staff, .. } => {
                self.serves.remove(&(tenant, customer, staff.to_string()));
            }
            CustomerEvent::HandoverRequested {
                handover,
                from,
                to,
                kind,
                at,
                auto_accept_at,
            } => {
                let row = HandoverRow {
                    tenant_id: tenant.clone(),
                    customer_id: customer.clone(),
                    handover_id: handover.to_string(),
                    from_staff_id: from.to_string(),
                    to_staff_id: to.to_string(),
                    kind: match kind {
                        HandoverKind::OnJob => "on_job".into(),
                        HandoverKind::Resigned => "resigned".into(),
                    },
                    status: "waiting".into(),
                    requested_at: *at,
                    auto_accept_at: *auto_accept_at,
                    concluded_at: None,
                };
                self.handovers
                    .insert((tenant, customer, handover.to_string()), row);
            }
            CustomerEvent::HandoverAccepted {
                handover, to, at, ..
            } => {
                if let Some(h) = self.handovers.get_mut(&(
                    tenant.clone(),
                    customer.clone(),
                    handover.to_string(),
                )) {
                    h.status = "accepted".into();
                    h.concluded_at = Some(*at);
                }
                let key = (tenant.clone(), customer.clone(), to.to_string());
                self.serves.entry(key).or_insert(ServesRow {
                    tenant_id: tenant,
                    customer_id: customer,
                    staff_id: to.to_string(),
                    since: *at,
                });
            }
            CustomerEvent::HandoverRefused {
                handover,
                reason,
                at,
                ..
            } => {
                if let Some(h) = self
                    .handovers
                    .get_mut(&(tenant, customer, handover.to_string()))
                {
                    h.status = reason.code();
                    h.concluded_at = Some(*at);
                }
            }
            _ => {}
        }
    }

    fn apply_staff(&mut self, key: Key, event: &StaffEvent) {
        match event {
            StaffEvent::StaffRegistered { name, store, .. } => {
                let row = DepartureStaffRow {
                    tenant_id: key.0.clone(),
                    staff_id: key.1.clone(),
                    name: name.clone(),
                    store_id: store.to_string(),
                    departed_at: None,
                };
                self.staff.insert(key, row);
            }
            StaffEvent::StaffMovedToStore { to, .. } => {
                if let Some(s) = self.staff.get_mut(&key) {
                    s.store_id = to.to_string();
                }
            }
            StaffEvent::StaffDeparted { at } => {
                if let Some(s) = self.staff.get_mut(&key) {
                    s.departed_at = Some(*at);
                }
            }
            StaffEvent::CustomerLimitChanged { .. } | StaffEvent::GroupTransferClaimed { .. } => {}
        }
    }

    fn apply_group(&mut self, key: Key, event: &GroupEvent) {
        match event {
            GroupEvent::GroupCreated { owner, name, .. } => {
                let row = GroupOwnerRow {
                    tenant_id: key.0.clone(),
                    group_id: key.1.clone(),
                    name: name.clone(),
                    owner_staff_id: owner.to_string(),
                    previous_owner_id: None,
                    transferred_at: None,
                    dismissed: false,
                    notice: String::new(),
                };
                self.groups.insert(key, row);
            }
            GroupEvent::OwnershipTransferred { from, to, at, .. } => {
                if let Some(g) = self.groups.get_mut(&key) {
                    g.previous_owner_id = Some(from.to_string());
                    g.owner_staff_id = to.to_string();
                    g.transferred_at = Some(*at);
                }
            }
            GroupEvent::GroupRenamed { name, .. } => {
                if let Some(g) = self.groups.get_mut(&key) {
                    g.name = name.clone();
                }
            }
            GroupEvent::GroupDismissed { .. } => {
                if let Some(g) = self.groups.get_mut(&key) {
                    g.dismissed = true;
                }
            }
            GroupEvent::NoticeChanged { notice, .. } => {
                if let Some(g) = self.groups.get_mut(&key) {
                    g.notice = notice.clone();
                }
            }
            GroupEvent::MemberAdmitted { .. } | GroupEvent::MemberRemoved { .. } => {}
        }
    }
}
