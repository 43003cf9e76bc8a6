//! The Customer aggregate: one stream per tenant + WeCom `external_userid`. It holds
//! every relation with staff, tags, coupons, group memberships, orders, deliveries
//! and handovers of one customer, and the rules whose data lives there.

mod command;
mod decide;
mod error;
mod event;
mod import;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use command::{AcceptTrigger, CustomerCommand, ImportedRelation, Profile, TagState};
pub use decide::check_handover_kind;
pub use error::CustomerError;
pub use event::{AddWay, CustomerEvent, HandoverKind, RefusalReason, RemovedBy};

use crate::stamp::Stamped;
use crate::values::{CampaignId, CouponId, GroupId, Money, OrderId, StaffId, TagId};

/// One staff member's relation with the customer (WeCom `follow_user`): each has its
/// own remark, description and tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relation {
    pub added_at: DateTime<Utc>,
    pub add_way: AddWay,
    pub remark: String,
    pub description: String,
    pub tags: BTreeSet<TagId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CouponStatus {
    Issued,
    Redeemed,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coupon {
    pub campaign: CampaignId,
    pub value: Money,
    pub expires_at: DateTime<Utc>,
    pub status: CouponStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingHandover {
    pub handover: Uuid,
    pub from: StaffId,
    pub to: StaffId,
    pub kind: HandoverKind,
    pub auto_accept_at: DateTime<Utc>,
}

/// The newest deliveries of one kind (mass message or Moment), oldest first. At most one
/// is accepted per day, so the newest [`Deliveries::KEPT`] cover more than a week: a
/// delivery recorded out of order still meets any other of its day here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deliveries(Vec<DateTime<Utc>>);

impl Deliveries {
    const KEPT: usize = 8;

    fn record(&mut self, at: DateTime<Utc>) {
        let i = self.0.partition_point(|t| *t <= at);
        self.0.insert(i, at);
        if self.0.len() > Self::KEPT {
            self.0.remove(0);
        }
    }

    /// Whether a delivery at `at` can be checked against the ones kept.
    fn covers(&self, at: DateTime<Utc>) -> bool {
        self.0.len() < Self::KEPT || self.0.first().is_some_and(|oldest| at >= *oldest)
    }

    fn any_on_day_of(&self, at: DateTime<Utc>, tz: chrono_tz::Tz) -> bool {
        let day = crate::stamp::local_day(at, tz);
        self.0
            .iter()
            .any(|t| crate::stamp::local_day(*t, tz) == day)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    known: bool,
    /// The last profile recorded, so an import through a second relation does not
    /// record the same one again.
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    phone: Option<String>,
    relations: BTreeMap<StaffId, Relation>,
    coupons: BTreeMap<CouponId, Coupon>,
    groups: BTreeSet<GroupId>,
    orders: BTreeSet<OrderId>,
    mass_messages: Deliveries,
    moments: Deliveries,
    pending_handover: Option<PendingHandover>,
    /// When each handover of this customer was requested (for the 90-day rule).
    handovers_requested_at: Vec<DateTime<Utc>>,
    /// Erased (PIPL): nothing that identifies them is recorded any more.
    #[serde(default)]
    erased: bool,
}

impl Customer {
    pub fn is_known(&self) -> bool {
        self.known
    }

    pub fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }

    pub fn relation(&self, staff: &StaffId) -> Option<&Relation> {
        self.relations.get(staff)
    }

    pub fn staff(&self) -> impl Iterator<Item = &StaffId> {
        self.relations.keys()
    }

    pub fn coupon(&self, coupon: &CouponId) -> Option<&Coupon> {
        self.coupons.get(coupon)
    }

    pub fn groups(&self) -> &BTreeSet<GroupId> {
        &self.groups
    }

    pub fn pending_handover(&self) -> Option<&PendingHandover> {
        self.pending_handover.as_ref()
    }

    pub fn is_erased(&self) -> bool {
        self.erased
    }

    pub fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }

    /// Every relation, by staff.
    pub fn relations(&self) -> impl Iterator<Item = (&StaffId, &Relation)> {
        self.relations.iter()
    }
}

impl Aggregate for Customer {
    /// Stored in `events.aggregate_type`. Never rename.
    const TYPE: &'static str = "Customer";
    type Command = Stamped<CustomerCommand>;
    type Event = CustomerEvent;
    type Error = CustomerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), CustomerError> {
        crate::decide::handle(self, command, sink).await
    }

    fn apply(&mut self, event: CustomerEvent) {
        self.known = true;
        match event {
            CustomerEvent::FriendAdded {
                staff, add_way, at, ..
            } => {
                self.relations.insert(
                    staff,
                    Relation {
                        added_at: at,
                        add_way,
                        remark: String::new(),
                        description: String::new(),
                        tags: BTreeSet::new(),
                    },
                );
            }
            CustomerEvent::FriendRemoved { staff, .. } => {
                self.relations.remove(&staff);
            }
            CustomerEvent::ProfileUpdated {
                name,
                phone,
                gender,
                avatar,
                ..
            } => {
                self.phone = phone;
                self.profile = Some(Profile {
                    name,
                    gender,
                    avatar,
                });
            }
            CustomerEvent::Tagged { staff, tag, .. } => {
                if let Some(relation) = self.relations.get_mut(&staff) {
                    relation.tags.insert(tag);
                }
            }
            CustomerEvent::Untagged { staff, tag, .. } => {
                if let Some(relation) = self.relations.get_mut(&staff) {
                    relation.tags.remove(&tag);
                }
            }
            CustomerEvent::RemarkChanged {
                staff,
                remark,
                description,
                ..
            } => {
                if let Some(relation) = self.relations.get_mut(&staff) {
                    relation.remark = remark;
                    relation.description = description;
                }
            }
            CustomerEvent::CouponIssued {
                coupon,
                campaign,
                value,
                expires_at,
                ..
            } => {
                self.coupons.insert(
                    coupon,
                    Coupon {
                        campaign,
                        value,
                        expires_at,
                        status: CouponStatus::Issued,
                    },
                );
            }
            CustomerEvent::CouponRedeemed { coupon, .. } => {
                if let Some(c) = self.coupons.get_mut(&coupon) {
                    c.status = CouponStatus::Redeemed;
                }
            }
            CustomerEvent::CouponExpired { coupon, .. } => {
                if let Some(c) = self.coupons.get_mut(&coupon) {
                    c.status = CouponStatus::Expired;
                }
            }
            CustomerEvent::JoinedGroup { group, .. } => {
                self.groups.insert(group);
            }
            CustomerEvent::LeftGroup { group, .. } => {
                self.groups.remove(&group);
            }
            CustomerEvent::PurchaseRecorded { order, .. } => {
                self.orders.insert(order);
            }
            CustomerEvent::MassMessageDelivered { at, .. } => {
                self.mass_messages.record(at);
            }
            CustomerEvent::MomentDelivered { at, .. } => {
                self.moments.record(at);
            }
            CustomerEvent::CampaignHeldOut { .. } | CustomerEvent::WelcomeMessageSent { .. } => {}
            CustomerEvent::HandoverRequested {
                handover,
                from,
                to,
                kind,
                at,
                auto_accept_at,
            } => {
                self.handovers_requested_at.push(at);
                self.pending_handover = Some(PendingHandover {
                    handover,
                    from,
                    to,
                    kind,
                    auto_accept_at,
                });
            }
            CustomerEvent::HandoverAccepted { from, to, at, .. } => {
                self.pending_handover = None;
                // The successor takes over the relation with its remark and tags; the
                // old relation is ended by the FriendRemoved{by: Transfer} that follows.
                if let Some(moved) = self.relations.get(&from).cloned() {
                    let successor = self.relations.entry(to).or_insert(Relation {
                        added_at: at,
                        add_way: AddWay::ADMIN_ASSIGNED,
                        remark: String::new(),
                        description: String::new(),
                        tags: BTreeSet::new(),
                    });
                    if successor.remark.is_empty() {
                        successor.remark = moved.remark;
                        successor.description = moved.description;
                    }
                    successor.tags.extend(moved.tags);
                }
            }
            CustomerEvent::HandoverRefused { .. } => {
                self.pending_handover = None;
            }
            CustomerEvent::CustomerErased { .. } => {
                self.erased = true;
                self.profile = None;
                self.phone = None;
                for relation in self.relations.values_mut() {
                    relation.remark.clear();
                    relation.description.clear();
                }
            }
        }
    }
}
