//! Planning a campaign to an audience: a mass message (群发) or an enterprise Moment
//! (朋友圈). Who is sent it, by which guide, in WeCom-sized calls; who is held out to
//! measure what the campaign brought back; who is skipped, and why. Pure: the caller
//! looks up the facts (each customer's guides and what reached them lately) and runs
//! the plan call by call; the customer aggregate decides again when each delivery is
//! recorded.
//!
//! Every customer of the audience ends up exactly once: sent, held out or skipped with
//! its reason. Nothing is dropped silently.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::rules;
use crate::stamp::local_day;
use crate::values::{ExternalUserId, MessageId, StaffId};

/// What a campaign sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampaignKind {
    /// `externalcontact/add_msg_template`: one task per sending guide.
    MassMessage,
    /// `externalcontact/add_moment_task`: a post the guides publish to their customers.
    Moment,
}

/// A customer of the audience, with the facts the rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub customer: ExternalUserId,
    /// The guides the customer is a friend of, with when each relation began. Departed
    /// guides are left out by the caller: they can no longer send.
    pub guides: Vec<(StaffId, DateTime<Utc>)>,
    /// When campaigns of this kind reached the customer lately, or are about to (a
    /// running campaign's planned sends count as reached: two campaigns on one day
    /// must not both send).
    pub reached: Vec<DateTime<Utc>>,
}

/// Why a customer of the audience is not sent the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// No guide is a friend of the customer any more.
    NoGuide,
    /// A campaign of the same kind reached the customer on the tenant's same day (at
    /// most one mass message and one Moment a day, across all senders).
    ReachedToday,
}

impl SkipReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::NoGuide => "NO_GUIDE",
            Self::ReachedToday => "REACHED_TODAY",
        }
    }
}

/// How to plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub kind: CampaignKind,
    /// The campaign's message: it also seeds the holdout draw, so a re-plan draws the
    /// same customers.
    pub message: MessageId,
    pub send_at: DateTime<Utc>,
    pub time_zone: Tz,
    /// Share of the eligible audience held out, in thousandths (0..=1000).
    pub holdout_per_mille: u16,
    /// The guides the audience was chosen by (its staff filter): a customer served by
    /// one of them is sent by them.
    pub senders: BTreeSet<StaffId>,
}

/// One WeCom call: a guide's mass message to at most
/// [`rules::CUSTOMERS_PER_MASS_MESSAGE_TASK`] customers, or a guide's Moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub sender: StaffId,
    pub customers: Vec<ExternalUserId>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub calls: Vec<Call>,
    pub held_out: Vec<ExternalUserId>,
    pub skipped: Vec<(ExternalUserId, SkipReason)>,
}

impl Plan {
    pub fn sent(&self) -> usize {
        self.calls.iter().map(|c| c.customers.len()).sum()
    }
}

/// Plans `settings`' campaign to `audience` (a customer listed twice counts once).
pub fn plan(settings: &Settings, audience: &[Recipient]) -> Plan {
    let day = local_day(settings.send_at, settings.time_zone);
    let mut plan = Plan::default();
    let mut by_sender: BTreeMap<&StaffId, Vec<ExternalUserId>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for r in audience {
        if !seen.insert(&r.customer) {
            continue;
        }
        let Some(sender) = sender_of(r, &settings.senders) else {
            plan.skipped.push((r.customer.clone(), SkipReason::NoGuide));
            continue;
        };
        if r.reached
            .iter()
            .any(|t| local_day(*t, settings.time_zone) == day)
        {
            plan.skipped
                .push((r.customer.clone(), SkipReason::ReachedToday));
            continue;
        }
        if held_out(&settings.message, &r.customer, settings.holdout_per_mille) {
            plan.held_out.push(r.customer.clone());
            continue;
        }
        by_sender
            .entry(sender)
            .or_default()
            .push(r.customer.clone());
    }
    let per_call = customers_per_call(settings.kind);
    for (sender, customers) in by_sender {
        for chunk in customers.chunks(per_call) {
            plan.calls.push(Call {
                sender: sender.clone(),
                customers: chunk.to_vec(),
            });
        }
    }
    plan
}

/// Customers one WeCom call takes: a guide's mass-message task at most
/// [`rules::CUSTOMERS_PER_MASS_MESSAGE_TASK`]; a Moment is one post each guide publishes
/// to their customers, whatever their number.
pub fn customers_per_call(kind: CampaignKind) -> usize {
    match kind {
        CampaignKind::MassMessage => rules::CUSTOMERS_PER_MASS_MESSAGE_TASK,
        CampaignKind::Moment => usize::MAX,
    }
}

/// One guide per customer, so a customer served by two guides is sent once: one the
/// audience was chosen by, else the guide the customer befriended first (ties by id).
fn sender_of<'a>(r: &'a Recipient, preferred: &BTreeSet<StaffId>) -> Option<&'a StaffId> {
    let first = |guides: &mut dyn Iterator<Item = &'a (StaffId, DateTime<Utc>)>| {
        guides
            .min_by_key(|(staff, since)| (*since, staff))
            .map(|(staff, _)| staff)
    };
    first(&mut r.guides.iter().filter(|(s, _)| preferred.contains(s)))
        .or_else(|| first(&mut r.guides.iter()))
}

/// Whether `customer` falls in the campaign's holdout: a hash of the message and the
/// customer (FNV-1a, stable across builds and machines), so the draw is the same at
/// every re-plan and independent between campaigns.
fn held_out(message: &MessageId, customer: &ExternalUserId, per_mille: u16) -> bool {
    if per_mille == 0 {
        return false;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in message
        .as_str()
        .bytes()
        .chain([0])
        .chain(customer.as_str().bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % 1000 < u64::from(per_mille)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        SHANGHAI
            .with_ymd_and_hms(2026, 6, 18, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn guide(id: &str) -> StaffId {
        StaffId::parse(id).unwrap()
    }

    fn customer(id: &str) -> ExternalUserId {
        ExternalUserId::parse(id).unwrap()
    }

    fn recipient(id: &str, guides: &[(&str, u32)], reached: &[DateTime<Utc>]) -> Recipient {
        Recipient {
            customer: customer(id),
            guides: guides.iter().map(|(g, h)| (guide(g), at(*h, 0))).collect(),
            reached: reached.to_vec(),
        }
    }

    fn settings(send_at: DateTime<Utc>) -> Settings {
        Settings {
            kind: CampaignKind::MassMessage,
            message: MessageId::parse("m-618").unwrap(),
            send_at,
            time_zone: SHANGHAI,
            holdout_per_mille: 0,
            senders: BTreeSet::new(),
        }
    }

    #[test]
    fn given_a_customer_reached_by_another_campaign_today_when_planned_then_skipped_today() {
        // Given one customer a morning campaign reached, one it did not
        let audience = [
            recipient("wm-a", &[("g1", 1)], &[at(9, 0)]),
            recipient("wm-b", &[("g1", 1)], &[]),
        ];
        // when an evening campaign is planned
        let plan = plan(&settings(at(20, 0)), &audience);
        // then the first is skipped with the reason, the second sent
        assert_eq!(
            plan.skipped,
            vec![(customer("wm-a"), SkipReason::ReachedToday)]
        );
        assert_eq!(plan.calls.len(), 1);
        assert_eq!(plan.calls[0].customers, vec![customer("wm-b")]);
    }

    #[test]
    fn given_a_customer_reached_before_the_tenants_midnight_then_sent_just_after_it() {
        // Given a customer reached at 23:59 Shanghai time (15:59 UTC, the same UTC day)
        let late = at(23, 59);
        let audience = [recipient("wm-a", &[("g1", 1)], &[late])];
        // when planned at 00:01 the next Shanghai day
        let next = late + chrono::Duration::minutes(2);
        let plan = plan(&settings(next), &audience);
        // then it is sent: the day is the tenant's, not UTC's
        assert_eq!(plan.sent(), 1);
        // and a minute before midnight it is not.
        let before = super::plan(&settings(late + chrono::Duration::seconds(30)), &audience);
        assert_eq!(before.skipped.len(), 1);
    }

    #[test]
    fn given_a_customer_of_two_guides_then_sent_once_by_the_first_or_the_chosen_guide() {
        let audience = [recipient("wm-a", &[("g2", 3), ("g1", 5)], &[])];
        // By default: the guide befriended first.
        let plan1 = plan(&settings(at(12, 0)), &audience);
        assert_eq!(plan1.calls.len(), 1);
        assert_eq!(plan1.calls[0].sender, guide("g2"));
        // With the audience chosen by g1's customers: g1.
        let mut chosen = settings(at(12, 0));
        chosen.senders = [guide("g1")].into();
        let plan2 = plan(&chosen, &audience);
        assert_eq!(plan2.calls.len(), 1);
        assert_eq!(plan2.calls[0].sender, guide("g1"));
    }

    #[test]
    fn every_customer_ends_once_sent_held_out_or_skipped() {
        let mut audience: Vec<Recipient> = (0..5_000)
            .map(|i| {
                let g = format!("g{}", i % 7);
                let reached = if i % 11 == 0 { vec![at(8, 0)] } else { vec![] };
                let guides: &[(&str, u32)] = if i % 13 == 0 { &[] } else { &[(&g, 1)] };
                recipient(&format!("wm-{i}"), guides, &reached)
            })
            .collect();
        audience.push(audience[0].clone());
        let mut s = settings(at(12, 0));
        s.holdout_per_mille = 100;
        let plan = plan(&s, &audience);
        assert_eq!(
            plan.sent() + plan.held_out.len() + plan.skipped.len(),
            5_000
        );
        let no_guide = plan
            .skipped
            .iter()
            .filter(|(_, r)| *r == SkipReason::NoGuide)
            .count();
        assert_eq!(no_guide, (0..5_000).filter(|i| i % 13 == 0).count());
        // About a tenth of the eligible held out, the same draw every time.
        let eligible = plan.sent() + plan.held_out.len();
        let share = plan.held_out.len() as f64 / eligible as f64;
        assert!((0.07..0.13).contains(&share), "{share}");
        assert_eq!(super::plan(&s, &audience), plan);
    }

    #[test]
    fn a_guide_with_more_customers_than_one_task_takes_several_calls() {
        let n = rules::CUSTOMERS_PER_MASS_MESSAGE_TASK + 1;
        let audience: Vec<Recipient> = (0..n)
            .map(|i| recipient(&format!("wm-{i}"), &[("g1", 1)], &[]))
            .collect();
        let plan = plan(&settings(at(12, 0)), &audience);
        let sizes: Vec<usize> = plan.calls.iter().map(|c| c.customers.len()).collect();
        assert_eq!(sizes, vec![rules::CUSTOMERS_PER_MASS_MESSAGE_TASK, 1]);
        // A Moment is one post per guide, whatever the number of customers.
        let mut moment = settings(at(12, 0));
        moment.kind = CampaignKind::Moment;
        assert_eq!(super::plan(&moment, &audience).calls.len(), 1);
    }
}
