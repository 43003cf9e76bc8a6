//! A customer's timeline entry, read from the customer's own stream, described for a
//! person. Personal data in events (a phone number) is never part of the description.

use chrono::{DateTime, Utc};
use domain::customer::CustomerEvent;

/// One event as a guide reads it.
#[derive(Debug, Clone, async_graphql::SimpleObject)]
pub struct TimelineEntry {
    /// Position of the event in the customer's stream (1 is the first).
    pub sequence: i32,
    pub occurred_at: DateTime<Utc>,
    /// The event's type, e.g. `Tagged`.
    pub kind: String,
    /// Who caused it (`staff:<userid>`, `integration:<name>`, `system:<job>`).
    pub actor: Option<String>,
    pub summary: String,
}

fn yuan(fen: i64) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

/// What happened, in a line.
pub fn describe(event: &CustomerEvent) -> (DateTime<Utc>, String) {
    use CustomerEvent as E;
    match event {
        E::FriendAdded {
            staff,
            add_way,
            channel_state,
            at,
        } => (
            *at,
            match channel_state {
                Some(state) => format!("added {staff} ({}, channel {state})", add_way.label()),
                None => format!("added {staff} ({})", add_way.label()),
            },
        ),
        E::FriendRemoved { staff, by, at } => {
            (*at, format!("relation with {staff} ended ({by:?})"))
        }
        E::ProfileUpdated { name, at, .. } => (*at, format!("profile updated: {name}")),
        E::Tagged { staff, tag, at } => (*at, format!("{staff} tagged {tag}")),
        E::Untagged { staff, tag, at } => (*at, format!("{staff} removed tag {tag}")),
        E::RemarkChanged {
            staff, remark, at, ..
        } => (*at, format!("{staff} set remark \"{remark}\"")),
        E::CouponIssued {
            coupon,
            campaign,
            value,
            at,
            ..
        } => (
            *at,
            format!(
                "coupon {coupon} of {campaign} issued ({})",
                yuan(value.fen())
            ),
        ),
        E::CouponRedeemed { coupon, order, at } => (
            *at,
            match order {
                Some(order) => format!("coupon {coupon} redeemed on order {order}"),
                None => format!("coupon {coupon} redeemed"),
            },
        ),
        E::CouponExpired { coupon, at } => (*at, format!("coupon {coupon} expired")),
        E::JoinedGroup { group, at, .. } => (*at, format!("joined group {group}")),
        E::LeftGroup { group, at, .. } => (*at, format!("left group {group}")),
        E::PurchaseRecorded {
            order,
            amount,
            store,
            at,
            ..
        } => (
            *at,
            format!("purchase {order} of {} at {store}", yuan(amount.fen())),
        ),
        E::MassMessageDelivered {
            message,
            sender,
            at,
        } => (*at, format!("mass message {message} from {sender}")),
        E::MomentDelivered { moment, sender, at } => {
            (*at, format!("Moment {moment} from {sender}"))
        }
        E::CampaignHeldOut { campaign, at } => (*at, format!("held out of campaign {campaign}")),
        E::WelcomeMessageSent {
            sender,
            channel,
            at,
        } => (
            *at,
            match channel {
                Some(state) => format!("welcome message from {sender} (channel {state})"),
                None => format!("welcome message from {sender}"),
            },
        ),
        E::HandoverRequested {
            from, to, kind, at, ..
        } => (
            *at,
            format!("handover from {from} to {to} requested ({kind:?})"),
        ),
        E::HandoverAccepted { from, to, at, .. } => {
            (*at, format!("handover from {from} to {to} accepted"))
        }
        E::HandoverRefused {
            from,
            to,
            reason,
            at,
            ..
        } => (
            *at,
            format!("handover from {from} to {to} refused ({reason:?})"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_update_never_shows_the_phone() {
        let event = CustomerEvent::ProfileUpdated {
            name: "王女士".into(),
            phone: Some("13800138000".into()),
            at: DateTime::UNIX_EPOCH,
            gender: None,
            avatar: None,
        };
        let (_, summary) = describe(&event);
        assert!(summary.contains("王女士"));
        assert!(!summary.contains("13800138000"));
    }
}
