//! The customer's rules as one pure function: state + command + instant -> events.

use chrono::{DateTime, Utc};

use super::{
    AcceptTrigger, CouponStatus, Customer, CustomerCommand, CustomerError, CustomerEvent,
    HandoverKind, RefusalReason, RemovedBy, TagState,
};
use crate::pii::Personal;
use crate::rules;
use crate::values::StaffId;

type Decision = Result<Vec<CustomerEvent>, CustomerError>;

fn check_len(field: &'static str, text: &str, max: usize) -> Result<(), CustomerError> {
    let chars = text.chars().count();
    if chars > max {
        return Err(CustomerError::TextTooLong { field, chars, max });
    }
    Ok(())
}

impl Customer {
    /// Decides what `command`, arriving at `at`, makes happen. Pure: no clock, no I/O.
    /// Once the customer is erased, whatever is still recorded of them (a WeCom notice,
    /// an import) is recorded without what identifies them.
    pub fn decide(&self, command: CustomerCommand, at: DateTime<Utc>) -> Decision {
        let mut events = self.decide_rules(command, at)?;
        if self.erased {
            for e in &mut events {
                e.strip_personal_data();
            }
        }
        Ok(events)
    }

    fn decide_rules(&self, command: CustomerCommand, at: DateTime<Utc>) -> Decision {
        use CustomerCommand as C;
        if !self.known && !matches!(command, C::AddFriend { .. } | C::ImportRelation(_)) {
            return Err(CustomerError::UnknownCustomer);
        }
        match command {
            C::AddFriend {
                staff,
                add_way,
                channel_state,
            } => {
                if self.relations.contains_key(&staff) {
                    return Err(CustomerError::AlreadyFriend(staff));
                }
                Ok(vec![CustomerEvent::FriendAdded {
                    staff,
                    add_way,
                    channel_state,
                    at,
                }])
            }
            C::RemoveFriend { staff, by } => self.remove_friend(staff, by, at),
            C::ImportRelation(relation) => Ok(self.import_relation(relation, at)),
            C::UpdateProfile { name, phone } => {
                if name.trim().is_empty() {
                    return Err(CustomerError::EmptyName);
                }
                check_len("name", &name, rules::CUSTOMER_NAME_MAX_CHARS)?;
                Ok(vec![CustomerEvent::ProfileUpdated {
                    name,
                    phone,
                    at,
                    gender: None,
                    avatar: None,
                }])
            }
            C::Tag {
                staff,
                tag,
                tag_state,
            } => {
                let relation = self.friend(&staff)?;
                match tag_state {
                    TagState::Active => {}
                    TagState::Deleted => return Err(CustomerError::TagDeleted(tag)),
                    TagState::Unknown => return Err(CustomerError::UnknownTag(tag)),
                }
                if relation.tags.contains(&tag) {
                    return Err(CustomerError::AlreadyTagged { staff, tag });
                }
                Ok(vec![CustomerEvent::Tagged { staff, tag, at }])
            }
            C::Untag { staff, tag } => {
                // Untagging needs no library lookup: a deleted tag may still be removed.
                if !self.friend(&staff)?.tags.contains(&tag) {
                    return Err(CustomerError::NotTagged { staff, tag });
                }
                Ok(vec![CustomerEvent::Untagged { staff, tag, at }])
            }
            C::ChangeRemark {
                staff,
                remark,
                description,
            } => {
                self.friend(&staff)?;
                check_len("remark", &remark, rules::REMARK_MAX_CHARS)?;
                check_len("description", &description, rules::DESCRIPTION_MAX_CHARS)?;
                Ok(vec![CustomerEvent::RemarkChanged {
                    staff,
                    remark,
                    description,
                    at,
                }])
            }
            C::IssueCoupon {
                coupon,
                campaign,
                value,
                expires_at,
                staff,
            } => {
                if self.coupons.contains_key(&coupon) {
                    return Err(CustomerError::CouponAlreadyIssued(coupon));
                }
                if expires_at <= at {
                    return Err(CustomerError::CouponExpiresBeforeIssue(coupon));
                }
                Ok(vec![CustomerEvent::CouponIssued {
                    coupon,
                    campaign,
                    value,
                    expires_at,
                    staff,
                    at,
                }])
            }
            C::RedeemCoupon { coupon, order } => {
                let issued = self
                    .coupons
                    .get(&coupon)
                    .ok_or_else(|| CustomerError::CouponNotIssued(coupon.clone()))?;
                match issued.status {
                    CouponStatus::Redeemed => Err(CustomerError::CouponAlreadyRedeemed(coupon)),
                    CouponStatus::Expired => Err(CustomerError::CouponExpired(coupon)),
                    CouponStatus::Issued if at >= issued.expires_at => {
                        Err(CustomerError::CouponExpired(coupon))
                    }
                    CouponStatus::Issued => {
                        Ok(vec![CustomerEvent::CouponRedeemed { coupon, order, at }])
                    }
                }
            }
            C::ExpireCoupon { coupon } => {
                let issued = self
                    .coupons
                    .get(&coupon)
                    .ok_or_else(|| CustomerError::CouponNotIssued(coupon.clone()))?;
                match issued.status {
                    CouponStatus::Redeemed => Err(CustomerError::CouponAlreadyRedeemed(coupon)),
                    CouponStatus::Expired => Err(CustomerError::CouponExpired(coupon)),
                    CouponStatus::Issued if at < issued.expires_at => {
                        Err(CustomerError::CouponNotYetExpired(coupon))
                    }
                    CouponStatus::Issued => Ok(vec![CustomerEvent::CouponExpired { coupon, at }]),
                }
            }
            C::RecordGroupJoin { group, join_scene } => {
                if self.groups.contains(&group) {
                    return Err(CustomerError::AlreadyInGroup(group));
                }
                Ok(vec![CustomerEvent::JoinedGroup {
                    group,
                    join_scene,
                    at,
                }])
            }
            C::RecordGroupLeave { group, quit_scene } => {
                if !self.groups.contains(&group) {
                    return Err(CustomerError::NotInGroup(group));
                }
                Ok(vec![CustomerEvent::LeftGroup {
                    group,
                    quit_scene,
                    at,
                }])
            }
            C::RecordPurchase {
                order,
                amount,
                store,
                staff,
            } => {
                if self.orders.contains(&order) {
                    return Err(CustomerError::DuplicateOrder(order));
                }
                Ok(vec![CustomerEvent::PurchaseRecorded {
                    order,
                    amount,
                    store,
                    staff,
                    at,
                }])
            }
            C::DeliverMassMessage {
                message,
                sender,
                time_zone,
            } => {
                if !self.mass_messages.covers(at) {
                    return Err(CustomerError::DeliveryTooLate);
                }
                if self.mass_messages.any_on_day_of(at, time_zone) {
                    return Err(CustomerError::MassMessageDailyLimit);
                }
                Ok(vec![CustomerEvent::MassMessageDelivered {
                    message,
                    sender,
                    at,
                }])
            }
            C::DeliverMoment {
                moment,
                sender,
                time_zone,
            } => {
                if !self.moments.covers(at) {
                    return Err(CustomerError::DeliveryTooLate);
                }
                if self.moments.any_on_day_of(at, time_zone) {
                    return Err(CustomerError::MomentDailyLimit);
                }
                Ok(vec![CustomerEvent::MomentDelivered { moment, sender, at }])
            }
            C::HoldOutOfCampaign { campaign } => {
                Ok(vec![CustomerEvent::CampaignHeldOut { campaign, at }])
            }
            C::RecordWelcome { sender, channel } => {
                // WeCom gives a welcome code only for a friend-add, and the add is
                // applied before the welcome goes out.
                self.friend(&sender)?;
                Ok(vec![CustomerEvent::WelcomeMessageSent {
                    sender,
                    channel,
                    at,
                }])
            }
            C::RequestHandover {
                handover,
                from,
                to,
                kind,
                from_departed_at,
                successor_at_limit,
            } => {
                self.friend(&from)?;
                if from == to {
                    return Err(CustomerError::SameStaff);
                }
                if self.relations.contains_key(&to) {
                    return Err(CustomerError::SuccessorAlreadyFriend(to));
                }
                if self.pending_handover.is_some() {
                    return Err(CustomerError::HandoverInFlight);
                }
                let since = at - rules::handover_period();
                let recent = self
                    .handovers_requested_at
                    .iter()
                    .filter(|t| **t > since)
                    .count();
                if recent >= rules::HANDOVERS_PER_PERIOD {
                    return Err(CustomerError::HandoverLimitReached);
                }
                check_handover_kind(kind, &from, from_departed_at, at)?;
                if successor_at_limit {
                    return Err(CustomerError::SuccessorAtLimit(to));
                }
                Ok(vec![CustomerEvent::HandoverRequested {
                    handover,
                    from,
                    to,
                    kind,
                    at,
                    auto_accept_at: at + rules::handover_window(),
                }])
            }
            C::AcceptHandover { handover, trigger } => {
                let pending = self.pending(handover)?;
                if trigger == AcceptTrigger::WindowElapsed && at < pending.auto_accept_at {
                    return Err(CustomerError::HandoverWindowOpen);
                }
                Ok(vec![
                    CustomerEvent::HandoverAccepted {
                        handover,
                        from: pending.from.clone(),
                        to: pending.to.clone(),
                        at,
                    },
                    CustomerEvent::FriendRemoved {
                        staff: pending.from.clone(),
                        by: RemovedBy::Transfer,
                        at,
                    },
                ])
            }
            C::RefuseHandover { handover, reason } => {
                let pending = self.pending(handover)?;
                let mut events = vec![CustomerEvent::HandoverRefused {
                    handover,
                    from: pending.from.clone(),
                    to: pending.to.clone(),
                    reason,
                    at,
                }];
                // A customer who refuses to follow a departed guide's successor is lost;
                // an on-job refusal leaves them with their guide.
                if pending.kind == HandoverKind::Resigned
                    && reason == RefusalReason::CustomerRefused
                {
                    events.push(CustomerEvent::FriendRemoved {
                        staff: pending.from.clone(),
                        by: RemovedBy::Customer,
                        at,
                    });
                }
                Ok(events)
            }
            C::Erase { reason } => {
                if self.erased {
                    return Err(CustomerError::AlreadyErased);
                }
                if reason.trim().is_empty() {
                    return Err(CustomerError::EmptyReason);
                }
                check_len("reason", &reason, rules::ERASURE_REASON_MAX_CHARS)?;
                Ok(vec![CustomerEvent::CustomerErased { reason, at }])
            }
        }
    }

    fn friend(&self, staff: &StaffId) -> Result<&super::Relation, CustomerError> {
        self.relations
            .get(staff)
            .ok_or_else(|| CustomerError::NotAFriend(staff.clone()))
    }

    fn pending(&self, handover: uuid::Uuid) -> Result<&super::PendingHandover, CustomerError> {
        self.pending_handover
            .as_ref()
            .filter(|p| p.handover == handover)
            .ok_or(CustomerError::NoSuchHandover)
    }

    fn remove_friend(&self, staff: StaffId, by: RemovedBy, at: DateTime<Utc>) -> Decision {
        self.friend(&staff)?;
        let mut events = Vec::new();
        if let Some(pending) = self.pending_handover.as_ref().filter(|p| p.from == staff) {
            // The relation being handed over can only end through the handover, except
            // when the customer deletes the guide: that is a refusal.
            if by != RemovedBy::Customer {
                return Err(CustomerError::RelationInHandover(staff));
            }
            events.push(CustomerEvent::HandoverRefused {
                handover: pending.handover,
                from: pending.from.clone(),
                to: pending.to.clone(),
                reason: RefusalReason::CustomerRefused,
                at,
            });
        }
        events.push(CustomerEvent::FriendRemoved { staff, by, at });
        Ok(events)
    }
}

/// Whether a handover of `kind` may start at `at` from `from`, who left at
/// `departed_at` if they did: on the job only while employed, resigned only after a
/// departure that has happened and is at most a year old. Also what the API checks
/// before it starts a handover job, so the two cannot drift apart.
pub fn check_handover_kind(
    kind: HandoverKind,
    from: &StaffId,
    departed_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Result<(), CustomerError> {
    match (kind, departed_at) {
        (HandoverKind::OnJob, Some(_)) => Err(CustomerError::StaffDeparted(from.clone())),
        (HandoverKind::Resigned, None) => Err(CustomerError::StaffNotDeparted(from.clone())),
        // A departure dated later than now (a clock ahead, a notice from the future)
        // has not happened yet.
        (HandoverKind::Resigned, Some(left)) if left > at => {
            Err(CustomerError::StaffNotDeparted(from.clone()))
        }
        (HandoverKind::Resigned, Some(left)) if at - left > rules::resigned_handover_max_age() => {
            Err(CustomerError::DepartureTooOld(from.clone()))
        }
        _ => Ok(()),
    }
}
