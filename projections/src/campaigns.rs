//! What campaigns brought back: for each campaign, the customers it reached and the ones
//! it held out, and each customer's orders and coupon redemptions by time, so that the
//! purchases and redemptions in any window after a campaign can be counted for both arms
//! at query time (the window is the reader's choice, not the fold's).
//!
//! Every row is keyed by customer and folded from that customer's own stream, so the
//! model rebuilds in partitions like the portrait. Times are also kept as Unix seconds:
//! a window is then integer arithmetic, the same on PostgreSQL and SQLite.

use std::collections::HashMap;

use domain::customer::CustomerEvent;

use crate::log::{AnyEvent, LoggedEvent};
use crate::model::{touch, ReadModel, Rows, Touched};
use crate::table::{table_row, Table};

pub const NAME: &str = "campaign_results";
pub const VERSION: i64 = 1;

/// The arm a customer is counted in.
pub const REACHED: &str = "reached";
pub const HELD_OUT: &str = "held_out";

table_row! {
    /// A customer a campaign reached (a delivery in their stream) or held out; `kind`
    /// is `mass_message` or `moment`, empty for a customer held out.
    MemberRow in MEMBER = "rm_campaign_member",
    key ["tenant_id", "customer_id", "campaign_id"],
    indexes [["tenant_id", "campaign_id", "arm"]],
    {
        tenant_id: text,
        customer_id: text,
        campaign_id: text,
        kind: text,
        arm: text,
        at: time,
        at_s: int,
    }
}

table_row! {
    /// One order of a customer, by time.
    PurchaseRow in PURCHASE = "rm_customer_purchase",
    key ["tenant_id", "customer_id", "order_id"],
    indexes [],
    {
        tenant_id: text,
        customer_id: text,
        order_id: text,
        amount_fen: int,
        at_s: int,
    }
}

table_row! {
    /// A coupon issued to a customer, its coupon campaign, and when it was redeemed.
    CouponUseRow in COUPON_USE = "rm_campaign_coupon",
    key ["tenant_id", "customer_id", "coupon_id"],
    indexes [],
    {
        tenant_id: text,
        customer_id: text,
        coupon_id: text,
        coupon_campaign_id: text,
        redeemed_s: opt_int,
    }
}

/// (tenant, customer, the row's own id).
type Key = (String, String, String);

#[derive(Debug, Default, Clone, PartialEq)]
pub struct CampaignResults {
    members: HashMap<Key, MemberRow>,
    purchases: HashMap<Key, PurchaseRow>,
    coupons: HashMap<Key, CouponUseRow>,
}

fn key(e: &LoggedEvent, id: &str) -> Key {
    (e.tenant.clone(), e.local_id.clone(), id.to_string())
}

impl CampaignResults {
    fn join(&mut self, e: &LoggedEvent, campaign: &str, kind: &str, arm: &str) {
        let AnyEvent::Customer(event) = &e.event else {
            return;
        };
        let at = event.at();
        // A customer is in a campaign once: the first record stands.
        self.members
            .entry(key(e, campaign))
            .or_insert_with(|| MemberRow {
                tenant_id: e.tenant.clone(),
                customer_id: e.local_id.clone(),
                campaign_id: campaign.to_string(),
                kind: kind.to_string(),
                arm: arm.to_string(),
                at,
                at_s: at.timestamp(),
            });
    }
}

impl ReadModel for CampaignResults {
    const NAME: &'static str = NAME;
    const VERSION: i64 = VERSION;
    const READS: &'static [&'static str] = &["Customer"];
    const TABLES: &'static [(&'static Table, &'static str)] = &[
        (&MEMBER, "customer_id"),
        (&PURCHASE, "customer_id"),
        (&COUPON_USE, "customer_id"),
    ];

    fn touched(events: &[LoggedEvent]) -> Touched {
        let mut keys = Touched::default();
        for e in events {
            let AnyEvent::Customer(event) = &e.event else {
                continue;
            };
            match event {
                CustomerEvent::MassMessageDelivered { .. }
                | CustomerEvent::MomentDelivered { .. }
                | CustomerEvent::CampaignHeldOut { .. } => {
                    touch(keys.of::<MemberRow>(), &e.tenant, &e.local_id)
                }
                CustomerEvent::PurchaseRecorded { .. } => {
                    touch(keys.of::<PurchaseRow>(), &e.tenant, &e.local_id)
                }
                CustomerEvent::CouponIssued { .. } | CustomerEvent::CouponRedeemed { .. } => {
                    touch(keys.of::<CouponUseRow>(), &e.tenant, &e.local_id)
                }
                _ => {}
            }
        }
        keys
    }

    fn load(&mut self, mut rows: Rows) {
        for r in rows.take_rows::<MemberRow>() {
            let k = (
                r.tenant_id.clone(),
                r.customer_id.clone(),
                r.campaign_id.clone(),
            );
            self.members.insert(k, r);
        }
        for r in rows.take_rows::<PurchaseRow>() {
            let k = (
                r.tenant_id.clone(),
                r.customer_id.clone(),
                r.order_id.clone(),
            );
            self.purchases.insert(k, r);
        }
        for r in rows.take_rows::<CouponUseRow>() {
            let k = (
                r.tenant_id.clone(),
                r.customer_id.clone(),
                r.coupon_id.clone(),
            );
            self.coupons.insert(k, r);
        }
    }

    fn apply(&mut self, e: &LoggedEvent) {
        let AnyEvent::Customer(event) = &e.event else {
            return;
        };
        match event {
            CustomerEvent::MassMessageDelivered { message, .. } => {
                self.join(e, message.as_str(), "mass_message", REACHED)
            }
            CustomerEvent::MomentDelivered { moment, .. } => {
                self.join(e, moment.as_str(), "moment", REACHED)
            }
            CustomerEvent::CampaignHeldOut { campaign, .. } => {
                self.join(e, campaign.as_str(), "", HELD_OUT)
            }
            CustomerEvent::PurchaseRecorded {
                order, amount, at, ..
            } => {
                self.purchases
                    .entry(key(e, order.as_str()))
                    .or_insert_with(|| PurchaseRow {
                        tenant_id: e.tenant.clone(),
                        customer_id: e.local_id.clone(),
                        order_id: order.to_string(),
                        amount_fen: amount.fen(),
                        at_s: at.timestamp(),
                    });
            }
            CustomerEvent::CouponIssued {
                coupon, campaign, ..
            } => {
                self.coupons
                    .entry(key(e, coupon.as_str()))
                    .or_insert_with(|| CouponUseRow {
                        tenant_id: e.tenant.clone(),
                        customer_id: e.local_id.clone(),
                        coupon_id: coupon.to_string(),
                        coupon_campaign_id: campaign.to_string(),
                        redeemed_s: None,
                    });
            }
            CustomerEvent::CouponRedeemed { coupon, at, .. } => {
                if let Some(c) = self.coupons.get_mut(&key(e, coupon.as_str())) {
                    c.redeemed_s = Some(at.timestamp());
                }
            }
            _ => {}
        }
    }

    fn rows(&self) -> Rows {
        let mut rows = Rows::default();
        rows.put(self.members.values());
        rows.put(self.purchases.values());
        rows.put(self.coupons.values());
        rows
    }
}
