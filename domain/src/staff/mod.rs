//! The Staff aggregate: one member of staff, their store, customer limit, departure,
//! and the groups moved away from them per day (the 300-a-day rule counts here,
//! because it is a limit per original owner).

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::stamp::{local_day, Stamped};
use crate::values::{GroupId, StoreId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StaffCommand {
    Register {
        name: String,
        store: StoreId,
        title: String,
    },
    MoveToStore {
        store: StoreId,
    },
    SetCustomerLimit {
        limit: u32,
    },
    MarkDeparted,
    /// Reserve one of today's group transfers away from this (original) owner.
    ClaimGroupTransfer {
        group: GroupId,
        time_zone: Tz,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StaffEvent {
    StaffRegistered {
        name: String,
        store: StoreId,
        title: String,
        customer_limit: u32,
        at: DateTime<Utc>,
    },
    StaffMovedToStore {
        from: StoreId,
        to: StoreId,
        at: DateTime<Utc>,
    },
    CustomerLimitChanged {
        limit: u32,
        at: DateTime<Utc>,
    },
    StaffDeparted {
        at: DateTime<Utc>,
    },
    GroupTransferClaimed {
        group: GroupId,
        /// The tenant-local day the claim counts against.
        day: NaiveDate,
        at: DateTime<Utc>,
    },
}

impl StaffEvent {
    pub fn name(&self) -> &'static str {
        match self {
            Self::StaffRegistered { .. } => "StaffRegistered",
            Self::StaffMovedToStore { .. } => "StaffMovedToStore",
            Self::CustomerLimitChanged { .. } => "CustomerLimitChanged",
            Self::StaffDeparted { .. } => "StaffDeparted",
            Self::GroupTransferClaimed { .. } => "GroupTransferClaimed",
        }
    }
}

crate::decide::published_event!(StaffEvent);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaffError {
    #[error("the staff member is already registered")]
    AlreadyRegistered,
    #[error("no such staff member")]
    UnknownStaff,
    #[error("the staff member has left the company")]
    Departed,
    #[error("the staff member already works at that store")]
    SameStore,
    #[error("customer limit must be between 1 and {max}, not {got}")]
    InvalidCustomerLimit { got: u32, max: u32 },
    #[error("{0} groups were already transferred away from this owner today")]
    DailyGroupTransferLimit(usize),
    #[error("name must not be empty")]
    EmptyName,
}

error_codes!(StaffError {
    AlreadyRegistered => "STAFF_ALREADY_REGISTERED",
    UnknownStaff => "UNKNOWN_STAFF",
    Departed => "STAFF_DEPARTED",
    SameStore => "SAME_STORE",
    InvalidCustomerLimit { .. } => "INVALID_CUSTOMER_LIMIT",
    DailyGroupTransferLimit(_) => "DAILY_GROUP_TRANSFER_LIMIT",
    EmptyName => "EMPTY_NAME",
});

/// Days of group-transfer claims remembered: enough for a claim recorded out of order.
const CLAIM_DAYS_KEPT: usize = 7;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Staff {
    registered: bool,
    store: Option<StoreId>,
    customer_limit: u32,
    departed_at: Option<DateTime<Utc>>,
    /// Groups claimed per tenant-local day, for the newest [`CLAIM_DAYS_KEPT`] days.
    claims: BTreeMap<NaiveDate, BTreeSet<GroupId>>,
}

impl Staff {
    pub fn store(&self) -> Option<&StoreId> {
        self.store.as_ref()
    }

    pub fn customer_limit(&self) -> u32 {
        self.customer_limit
    }

    pub fn departed_at(&self) -> Option<DateTime<Utc>> {
        self.departed_at
    }

    /// Whether the staff member was ever registered.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// Groups transferred away from this owner on tenant-local `day` (0 for a day older
    /// than the claims kept).
    pub fn groups_claimed_on(&self, day: NaiveDate) -> usize {
        self.claims.get(&day).map_or(0, BTreeSet::len)
    }

    /// Decides what `command`, arriving at `at`, makes happen. Pure.
    pub fn decide(
        &self,
        command: StaffCommand,
        at: DateTime<Utc>,
    ) -> Result<Vec<StaffEvent>, StaffError> {
        if let StaffCommand::Register { name, store, title } = command {
            if self.registered {
                return Err(StaffError::AlreadyRegistered);
            }
            if name.trim().is_empty() {
                return Err(StaffError::EmptyName);
            }
            return Ok(vec![StaffEvent::StaffRegistered {
                name,
                store,
                title,
                customer_limit: rules::DEFAULT_CUSTOMER_LIMIT,
                at,
            }]);
        }
        if !self.registered {
            return Err(StaffError::UnknownStaff);
        }
        match command {
            StaffCommand::Register { .. } => unreachable!("handled above"),
            StaffCommand::MoveToStore { store } => {
                self.on_job()?;
                let from = self.store.clone().ok_or(StaffError::UnknownStaff)?;
                if from == store {
                    return Err(StaffError::SameStore);
                }
                Ok(vec![StaffEvent::StaffMovedToStore {
                    from,
                    to: store,
                    at,
                }])
            }
            StaffCommand::SetCustomerLimit { limit } => {
                self.on_job()?;
                if limit == 0 || limit > rules::MAX_CUSTOMER_LIMIT {
                    return Err(StaffError::InvalidCustomerLimit {
                        got: limit,
                        max: rules::MAX_CUSTOMER_LIMIT,
                    });
                }
                Ok(vec![StaffEvent::CustomerLimitChanged { limit, at }])
            }
            StaffCommand::MarkDeparted => {
                self.on_job()?;
                Ok(vec![StaffEvent::StaffDeparted { at }])
            }
            StaffCommand::ClaimGroupTransfer { group, time_zone } => {
                let day = local_day(at, time_zone);
                let claimed = self.claims.get(&day);
                if claimed.is_some_and(|c| c.contains(&group)) {
                    // Claiming the same group twice in a day is a retry, not a new transfer.
                    return Ok(vec![]);
                }
                let claimed_today = claimed.map_or(0, BTreeSet::len);
                if claimed_today >= rules::GROUP_TRANSFERS_PER_OWNER_PER_DAY {
                    return Err(StaffError::DailyGroupTransferLimit(claimed_today));
                }
                Ok(vec![StaffEvent::GroupTransferClaimed { group, day, at }])
            }
        }
    }

    fn on_job(&self) -> Result<(), StaffError> {
        match self.departed_at {
            Some(_) => Err(StaffError::Departed),
            None => Ok(()),
        }
    }
}

impl Aggregate for Staff {
    /// Stored in `events.aggregate_type`. Never rename.
    const TYPE: &'static str = "Staff";
    type Command = Stamped<StaffCommand>;
    type Event = StaffEvent;
    type Error = StaffError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), StaffError> {
        crate::decide::handle(self, command, sink).await
    }

    fn apply(&mut self, event: StaffEvent) {
        match event {
            StaffEvent::StaffRegistered {
                store,
                customer_limit,
                ..
            } => {
                self.registered = true;
                self.store = Some(store);
                self.customer_limit = customer_limit;
            }
            StaffEvent::StaffMovedToStore { to, .. } => self.store = Some(to),
            StaffEvent::CustomerLimitChanged { limit, .. } => self.customer_limit = limit,
            StaffEvent::StaffDeparted { at } => self.departed_at = Some(at),
            StaffEvent::GroupTransferClaimed { group, day, .. } => {
                self.claims.entry(day).or_default().insert(group);
                while self.claims.len() > CLAIM_DAYS_KEPT {
                    self.claims.pop_first();
                }
            }
        }
    }
}
