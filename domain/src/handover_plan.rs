//! Planning a one-click handover (一键继承) of everything one member of staff holds:
//! which successor takes which customer and group, in which WeCom-sized batch, on which
//! day. Pure: the caller looks up the facts (who the customers are, their handover
//! history, the successors' loads, how many group transfers today already used) and
//! runs the plan batch by batch.
//!
//! Every customer and group of the input ends up exactly once in the plan: in a batch,
//! or among the skipped with the rule that stops it and the status WeCom reports for it.
//! Nothing is dropped silently. The rules are the aggregates' own (a customer's
//! 2-in-90-days, a group's 2-in-90-days, the successor's limit); the plan applies them
//! early, on the facts it is given, and the aggregates decide again when each command
//! runs.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};

use crate::customer::CustomerError;
use crate::group::GroupError;
use crate::rules;
use crate::values::{ExternalUserId, GroupId, StaffId};

/// WeCom's `status` of one customer's transfer (`transfer_result`). Customers the plan
/// or the aggregate refuses get the status WeCom gives for the same refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransferStatus {
    /// 1: the successor took over.
    Accepted = 1,
    /// 2: waiting for the customer (or for a day with group transfers left).
    Waiting = 2,
    /// 3: the customer refused.
    Refused = 3,
    /// 4: the successor is at their customer limit.
    SuccessorAtLimit = 4,
    /// 5: no transfer was recorded.
    NoRecord = 5,
}

impl TransferStatus {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status of a customer whose handover request was refused with `error`: one
    /// already in flight is still waiting (on that other handover); a full successor is
    /// 4; anything else never became a transfer.
    pub fn of_customer_refusal(error: &CustomerError) -> Self {
        match error {
            CustomerError::HandoverInFlight => Self::Waiting,
            CustomerError::SuccessorAtLimit(_) => Self::SuccessorAtLimit,
            _ => Self::NoRecord,
        }
    }
}

/// A customer the departing staff member serves, with the facts the rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerFacts {
    pub customer: ExternalUserId,
    /// A handover of this customer is waiting for an answer.
    pub in_handover: bool,
    /// Handovers of this customer requested within the last [`rules::handover_period`].
    pub recent_handovers: usize,
    /// Other staff who already serve the customer: none of them can take it over.
    pub also_served_by: BTreeSet<StaffId>,
}

/// A customer group the departing staff member owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFacts {
    pub group: GroupId,
    /// Ownership transfers within the last [`rules::handover_period`].
    pub recent_transfers: usize,
}

/// Someone who can take customers over, with their load now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Successor {
    pub staff: StaffId,
    /// Customers they serve now.
    pub customers: u32,
    pub limit: u32,
}

/// How customers are spread over the successors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Everything to the one successor given.
    Single,
    /// Each customer to the successor with the lowest share of their limit in use, so
    /// the successors end up about equally full; groups in turn.
    Balanced,
}

/// What a plan is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInput {
    pub from: StaffId,
    pub successors: Vec<Successor>,
    pub strategy: Strategy,
    pub customers: Vec<CustomerFacts>,
    pub groups: Vec<GroupFacts>,
    /// The tenant-local day the plan starts on ...
    pub today: NaiveDate,
    /// ... and the groups already transferred away from `from` that day.
    pub groups_claimed_today: usize,
    /// Only these customers, and no groups (an on-job handover of a chosen few); `None`
    /// is everything `from` holds. A chosen customer `from` does not serve is reported,
    /// not dropped.
    pub only: Option<BTreeSet<ExternalUserId>>,
}

/// Up to [`rules::WECOM_BATCH_SIZE`] customers for one successor: one WeCom call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerBatch {
    pub to: StaffId,
    pub customers: Vec<ExternalUserId>,
}

/// Up to [`rules::WECOM_BATCH_SIZE`] groups for one successor, due on `day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBatch {
    pub to: StaffId,
    pub day: NaiveDate,
    pub groups: Vec<GroupId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedCustomer {
    pub customer: ExternalUserId,
    pub reason: CustomerError,
}

impl SkippedCustomer {
    pub fn status(&self) -> TransferStatus {
        TransferStatus::of_customer_refusal(&self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedGroup {
    pub group: GroupId,
    pub reason: GroupError,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandoverPlan {
    pub customer_batches: Vec<CustomerBatch>,
    pub customers_skipped: Vec<SkippedCustomer>,
    pub group_batches: Vec<GroupBatch>,
    pub groups_skipped: Vec<SkippedGroup>,
}

impl HandoverPlan {
    /// Customers that will be asked to move.
    pub fn customers_planned(&self) -> usize {
        self.customer_batches
            .iter()
            .map(|b| b.customers.len())
            .sum()
    }

    pub fn groups_planned(&self) -> usize {
        self.group_batches.iter().map(|b| b.groups.len()).sum()
    }
}

/// Why no plan can be made at all (as opposed to one customer being skipped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("a handover needs at least one successor")]
    NoSuccessor,
    #[error("the successor must differ from the staff member handing over ({0})")]
    SameStaff(StaffId),
    #[error("the single strategy takes exactly one successor, not {0}")]
    SingleNeedsOneSuccessor(usize),
    #[error("successor {0} is listed twice")]
    DuplicateSuccessor(StaffId),
}

impl PlanError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSuccessor => "NO_SUCCESSOR",
            Self::SameStaff(_) => "SAME_STAFF",
            Self::SingleNeedsOneSuccessor(_) => "SINGLE_NEEDS_ONE_SUCCESSOR",
            Self::DuplicateSuccessor(_) => "DUPLICATE_SUCCESSOR",
        }
    }
}

/// Plans the handover described by `input`. Customers and groups are taken in id order,
/// so the same input always gives the same plan.
pub fn plan(input: &PlanInput) -> Result<HandoverPlan, PlanError> {
    check_successors(input)?;
    let mut out = HandoverPlan::default();
    plan_customers(input, &mut out);
    plan_groups(input, &mut out);
    Ok(out)
}

fn check_successors(input: &PlanInput) -> Result<(), PlanError> {
    if input.successors.is_empty() {
        return Err(PlanError::NoSuccessor);
    }
    if input.strategy == Strategy::Single && input.successors.len() != 1 {
        return Err(PlanError::SingleNeedsOneSuccessor(input.successors.len()));
    }
    let mut seen = BTreeSet::new();
    for s in &input.successors {
        if s.staff == input.from {
            return Err(PlanError::SameStaff(s.staff.clone()));
        }
        if !seen.insert(&s.staff) {
            return Err(PlanError::DuplicateSuccessor(s.staff.clone()));
        }
    }
    Ok(())
}

/// Whether `a` has a smaller share of its limit in use than `b` (ties: fewer
/// customers, then the order given). Cross-multiplied, so no rounding.
fn less_full(a: &Successor, b: &Successor) -> bool {
    let (ua, ub) = (
        u64::from(a.customers) * u64::from(b.limit.max(1)),
        u64::from(b.customers) * u64::from(a.limit.max(1)),
    );
    ua < ub || (ua == ub && a.customers < b.customers)
}

fn plan_customers(input: &PlanInput, out: &mut HandoverPlan) {
    let mut load: Vec<Successor> = input.successors.clone();
    let mut assigned: Vec<Vec<ExternalUserId>> = vec![Vec::new(); load.len()];
    let mut customers: Vec<&CustomerFacts> = input
        .customers
        .iter()
        .filter(|c| {
            input
                .only
                .as_ref()
                .is_none_or(|only| only.contains(&c.customer))
        })
        .collect();
    if let Some(only) = &input.only {
        for chosen in only {
            if !input.customers.iter().any(|c| c.customer == *chosen) {
                out.customers_skipped.push(SkippedCustomer {
                    customer: chosen.clone(),
                    reason: CustomerError::NotAFriend(input.from.clone()),
                });
            }
        }
    }
    customers.sort_by(|a, b| a.customer.cmp(&b.customer));
    customers.dedup_by(|a, b| a.customer == b.customer);
    for facts in customers {
        match choose(&load, facts) {
            Ok(i) => {
                load[i].customers += 1;
                assigned[i].push(facts.customer.clone());
            }
            Err(reason) => out.customers_skipped.push(SkippedCustomer {
                customer: facts.customer.clone(),
                reason,
            }),
        }
    }
    for (successor, customers) in load.iter().zip(assigned) {
        for chunk in customers.chunks(rules::WECOM_BATCH_SIZE) {
            out.customer_batches.push(CustomerBatch {
                to: successor.staff.clone(),
                customers: chunk.to_vec(),
            });
        }
    }
}

/// The successor (index into `load`) for one customer, or the rule that stops it. The
/// customer's own rules come first: they hold whoever the successor would be.
fn choose(load: &[Successor], facts: &CustomerFacts) -> Result<usize, CustomerError> {
    if facts.in_handover {
        return Err(CustomerError::HandoverInFlight);
    }
    if facts.recent_handovers >= rules::HANDOVERS_PER_PERIOD {
        return Err(CustomerError::HandoverLimitReached);
    }
    let eligible: Vec<usize> = (0..load.len())
        .filter(|&i| !facts.also_served_by.contains(&load[i].staff))
        .collect();
    let Some(&first) = eligible.first() else {
        return Err(CustomerError::SuccessorAlreadyFriend(load[0].staff.clone()));
    };
    eligible
        .iter()
        .copied()
        .filter(|&i| load[i].customers < load[i].limit)
        .reduce(|best, i| {
            if less_full(&load[i], &load[best]) {
                i
            } else {
                best
            }
        })
        .ok_or_else(|| CustomerError::SuccessorAtLimit(load[first].staff.clone()))
}

fn plan_groups(input: &PlanInput, out: &mut HandoverPlan) {
    if input.only.is_some() {
        return;
    }
    let per_day = rules::GROUP_TRANSFERS_PER_OWNER_PER_DAY;
    let mut groups: Vec<&GroupFacts> = input.groups.iter().collect();
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    groups.dedup_by(|a, b| a.group == b.group);
    let mut taken = vec![0usize; input.successors.len()];
    // (day, successor) -> groups, in day order.
    let mut due: BTreeMap<(NaiveDate, usize), Vec<GroupId>> = BTreeMap::new();
    let mut planned = 0usize;
    for facts in groups {
        if facts.recent_transfers >= rules::GROUP_TRANSFERS_PER_PERIOD {
            out.groups_skipped.push(SkippedGroup {
                group: facts.group.clone(),
                reason: GroupError::TransferLimitReached,
            });
            continue;
        }
        // Groups carry no load to balance on: they go round the successors in turn.
        let to = (0..taken.len())
            .min_by_key(|&i| (taken[i], i))
            .expect("successors checked");
        taken[to] += 1;
        let days_later = (input.groups_claimed_today + planned) / per_day;
        let day = input
            .today
            .checked_add_days(Days::new(days_later as u64))
            .unwrap_or(input.today);
        due.entry((day, to)).or_default().push(facts.group.clone());
        planned += 1;
    }
    for ((day, to), groups) in due {
        for chunk in groups.chunks(rules::WECOM_BATCH_SIZE) {
            out.group_batches.push(GroupBatch {
                to: input.successors[to].staff.clone(),
                day,
                groups: chunk.to_vec(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ------------------------------------------------------------ helpers

    fn staff(id: &str) -> StaffId {
        StaffId::parse(id).unwrap()
    }

    fn customer(n: usize) -> ExternalUserId {
        ExternalUserId::parse(format!("wm{n:05}")).unwrap()
    }

    fn group(n: usize) -> GroupId {
        GroupId::parse(format!("wr{n:05}")).unwrap()
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    fn fresh(n: usize) -> CustomerFacts {
        CustomerFacts {
            customer: customer(n),
            in_handover: false,
            recent_handovers: 0,
            also_served_by: BTreeSet::new(),
        }
    }

    fn successor(id: &str, customers: u32, limit: u32) -> Successor {
        Successor {
            staff: staff(id),
            customers,
            limit,
        }
    }

    /// Given: `customers` fresh customers and `groups` groups of `leaver`, nothing
    /// claimed today, one roomy successor.
    fn given(customers: usize, groups: usize) -> PlanInput {
        PlanInput {
            from: staff("leaver"),
            successors: vec![successor("next", 0, 20_000)],
            strategy: Strategy::Single,
            customers: (0..customers).map(fresh).collect(),
            groups: (0..groups)
                .map(|n| GroupFacts {
                    group: group(n),
                    recent_transfers: 0,
                })
                .collect(),
            today: day(10),
            groups_claimed_today: 0,
            only: None,
        }
    }

    fn balanced(mut input: PlanInput, successors: Vec<Successor>) -> PlanInput {
        input.strategy = Strategy::Balanced;
        input.successors = successors;
        input
    }

    /// Customer -> successor, over all batches.
    fn assignments(plan: &HandoverPlan) -> BTreeMap<ExternalUserId, StaffId> {
        plan.customer_batches
            .iter()
            .flat_map(|b| b.customers.iter().map(|c| (c.clone(), b.to.clone())))
            .collect()
    }

    fn received(plan: &HandoverPlan, to: &str) -> usize {
        plan.customer_batches
            .iter()
            .filter(|b| b.to == staff(to))
            .map(|b| b.customers.len())
            .sum()
    }

    // ------------------------------------------------------------ customers

    #[test]
    fn one_successor_takes_every_customer_in_batches_of_at_most_100() {
        let plan = plan(&given(250, 0)).unwrap();
        let sizes: Vec<usize> = plan
            .customer_batches
            .iter()
            .map(|b| b.customers.len())
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        assert!(plan.customer_batches.iter().all(|b| b.to == staff("next")));
        assert!(plan.customers_skipped.is_empty());
        assert_eq!(plan.customers_planned(), 250);
    }

    #[test]
    fn every_customer_is_planned_or_skipped_exactly_once() {
        let mut input = given(1_000, 0);
        input.successors[0].limit = 700;
        for (n, c) in input.customers.iter_mut().enumerate() {
            c.in_handover = n % 7 == 0;
            c.recent_handovers = usize::from(n % 11 == 0) * 2;
        }
        // A duplicate in the input is one customer, not two.
        input.customers.push(fresh(1));
        let plan = plan(&input).unwrap();
        let mut seen: Vec<ExternalUserId> = assignments(&plan).into_keys().collect();
        seen.extend(plan.customers_skipped.iter().map(|s| s.customer.clone()));
        seen.sort();
        let expected: Vec<ExternalUserId> = (0..1_000).map(customer).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn customers_the_rules_hold_back_are_reported_with_wecom_statuses() {
        // Given: one customer already in a handover, one handed over twice in 90 days,
        // one the successor already serves, and a successor with room for one more.
        let mut input = given(4, 0);
        input.successors = vec![successor("next", 4_999, 5_000)];
        input.customers[0].in_handover = true;
        input.customers[1].recent_handovers = 2;
        input.customers[2].also_served_by.insert(staff("next"));
        input.customers.push(fresh(4));
        // When
        let plan = plan(&input).unwrap();
        // Then: customer 3 takes the last place; customer 4 finds the successor full.
        let skipped: Vec<(ExternalUserId, CustomerError, u8)> = plan
            .customers_skipped
            .iter()
            .map(|s| (s.customer.clone(), s.reason.clone(), s.status().code()))
            .collect();
        assert_eq!(
            skipped,
            vec![
                (customer(0), CustomerError::HandoverInFlight, 2),
                (customer(1), CustomerError::HandoverLimitReached, 5),
                (
                    customer(2),
                    CustomerError::SuccessorAlreadyFriend(staff("next")),
                    5
                ),
                (
                    customer(4),
                    CustomerError::SuccessorAtLimit(staff("next")),
                    4
                ),
            ]
        );
        assert_eq!(
            assignments(&plan),
            BTreeMap::from([(customer(3), staff("next"))])
        );
    }

    #[test]
    fn one_handover_in_the_last_90_days_still_allows_another() {
        let mut input = given(1, 0);
        input.customers[0].recent_handovers = 1;
        assert_eq!(plan(&input).unwrap().customers_planned(), 1);
    }

    #[test]
    fn balanced_fills_the_emptiest_successor_first_until_all_are_level() {
        // Given: a has 300 of 5,000, b has 0 of 5,000, c has 100 of 5,000.
        let input = balanced(
            given(600, 0),
            vec![
                successor("a", 300, 5_000),
                successor("b", 0, 5_000),
                successor("c", 100, 5_000),
            ],
        );
        // When
        let plan = plan(&input).unwrap();
        // Then: 1,000 customers in all, about 333 each.
        let ends: Vec<usize> = [("a", 300), ("b", 0), ("c", 100)]
            .iter()
            .map(|(s, had)| had + received(&plan, s))
            .collect();
        assert_eq!(ends.iter().sum::<usize>(), 1_000);
        assert!(ends.iter().all(|&n| (333..=334).contains(&n)), "{ends:?}");
        assert!(plan
            .customer_batches
            .iter()
            .all(|b| b.customers.len() <= rules::WECOM_BATCH_SIZE));
    }

    #[test]
    fn balanced_weighs_load_against_each_successors_limit() {
        // Given: both empty, one with four times the other's limit.
        let input = balanced(
            given(500, 0),
            vec![successor("small", 0, 1_000), successor("large", 0, 4_000)],
        );
        let plan = plan(&input).unwrap();
        assert_eq!(received(&plan, "small"), 100);
        assert_eq!(received(&plan, "large"), 400);
    }

    #[test]
    fn balanced_never_passes_a_limit_and_reports_what_does_not_fit() {
        let input = balanced(
            given(50, 0),
            vec![successor("a", 18, 20), successor("b", 5, 30)],
        );
        let plan = plan(&input).unwrap();
        assert_eq!(received(&plan, "a"), 2);
        assert_eq!(received(&plan, "b"), 25);
        assert_eq!(plan.customers_skipped.len(), 23);
        assert!(plan.customers_skipped.iter().all(|s| matches!(
            s.reason,
            CustomerError::SuccessorAtLimit(_)
        ) && s.status()
            == TransferStatus::SuccessorAtLimit));
    }

    #[test]
    fn balanced_passes_over_a_successor_who_already_serves_the_customer() {
        let mut input = balanced(
            given(1, 0),
            vec![successor("a", 0, 100), successor("b", 50, 100)],
        );
        input.customers[0].also_served_by.insert(staff("a"));
        let plan = plan(&input).unwrap();
        assert_eq!(
            assignments(&plan),
            BTreeMap::from([(customer(0), staff("b"))])
        );
    }

    #[test]
    fn the_same_input_gives_the_same_plan() {
        let mut input = balanced(
            given(300, 40),
            vec![successor("a", 10, 100), successor("b", 10, 500)],
        );
        let first = plan(&input).unwrap();
        input.customers.reverse();
        input.groups.reverse();
        assert_eq!(plan(&input).unwrap(), first);
    }

    // ------------------------------------------------------------ groups

    #[test]
    fn at_most_300_groups_a_day_the_rest_on_the_following_days() {
        // Given 650 groups and nothing claimed today.
        let plan = plan(&given(0, 650)).unwrap();
        let mut per_day: BTreeMap<NaiveDate, usize> = BTreeMap::new();
        for b in &plan.group_batches {
            assert!(b.groups.len() <= rules::WECOM_BATCH_SIZE);
            *per_day.entry(b.day).or_default() += b.groups.len();
        }
        assert_eq!(
            per_day,
            BTreeMap::from([(day(10), 300), (day(11), 300), (day(12), 50)])
        );
        assert_eq!(plan.groups_planned(), 650);
    }

    #[test]
    fn transfers_already_claimed_today_count_against_the_day() {
        let mut input = given(0, 120);
        input.groups_claimed_today = 250;
        let plan = plan(&input).unwrap();
        let today: usize = plan
            .group_batches
            .iter()
            .filter(|b| b.day == day(10))
            .map(|b| b.groups.len())
            .sum();
        assert_eq!(today, 50);
        assert_eq!(plan.groups_planned(), 120);
        // Batches come in day order.
        assert!(plan.group_batches.windows(2).all(|w| w[0].day <= w[1].day));
    }

    #[test]
    fn a_group_transferred_twice_in_90_days_is_reported_not_planned() {
        let mut input = given(0, 3);
        input.groups[1].recent_transfers = 2;
        let plan = plan(&input).unwrap();
        assert_eq!(
            plan.groups_skipped,
            vec![SkippedGroup {
                group: group(1),
                reason: GroupError::TransferLimitReached
            }]
        );
        assert_eq!(plan.groups_planned(), 2);
    }

    #[test]
    fn balanced_groups_go_round_the_successors() {
        let input = balanced(
            given(0, 5),
            vec![successor("a", 0, 10), successor("b", 0, 10)],
        );
        let plan = plan(&input).unwrap();
        let count = |s: &str| -> usize {
            plan.group_batches
                .iter()
                .filter(|b| b.to == staff(s))
                .map(|b| b.groups.len())
                .sum()
        };
        assert_eq!((count("a"), count("b")), (3, 2));
    }

    // ------------------------------------------------------------ whole plan

    #[test]
    fn a_plan_needs_successors_other_than_the_leaver() {
        let mut input = given(1, 1);
        input.successors.clear();
        assert_eq!(plan(&input), Err(PlanError::NoSuccessor));

        let mut input = given(1, 1);
        input.successors = vec![successor("leaver", 0, 10)];
        assert_eq!(plan(&input), Err(PlanError::SameStaff(staff("leaver"))));

        let mut input = given(1, 1);
        input.successors.push(successor("other", 0, 10));
        assert_eq!(plan(&input), Err(PlanError::SingleNeedsOneSuccessor(2)));

        let input = balanced(
            given(1, 1),
            vec![successor("a", 0, 10), successor("a", 0, 10)],
        );
        assert_eq!(plan(&input), Err(PlanError::DuplicateSuccessor(staff("a"))));
    }

    #[test]
    fn refusals_map_to_wecom_statuses() {
        use CustomerError as E;
        let s = |e: E| TransferStatus::of_customer_refusal(&e).code();
        assert_eq!(s(E::HandoverInFlight), 2);
        assert_eq!(s(E::SuccessorAtLimit(staff("x"))), 4);
        assert_eq!(s(E::HandoverLimitReached), 5);
        assert_eq!(s(E::SameStaff), 5);
        assert_eq!(s(E::NotAFriend(staff("x"))), 5);
        assert_eq!(TransferStatus::Accepted.code(), 1);
        assert_eq!(TransferStatus::Refused.code(), 3);
    }

    #[test]
    fn a_chosen_few_move_alone_and_a_stranger_among_them_is_reported() {
        // Given 5 customers and 2 groups, when operations choose customers 1 and 3 and
        // one the leaver does not serve,
        let mut input = given(5, 2);
        input.only = Some(BTreeSet::from([customer(1), customer(3), customer(99)]));
        let plan = plan(&input).unwrap();
        // then only those two move, no group moves, and the stranger is reported.
        assert_eq!(
            assignments(&plan).into_keys().collect::<Vec<_>>(),
            vec![customer(1), customer(3)]
        );
        assert_eq!(plan.groups_planned(), 0);
        assert!(plan.groups_skipped.is_empty());
        assert_eq!(plan.customers_skipped.len(), 1);
        assert_eq!(plan.customers_skipped[0].customer, customer(99));
        assert_eq!(
            plan.customers_skipped[0].reason,
            CustomerError::NotAFriend(staff("leaver"))
        );
    }
}
