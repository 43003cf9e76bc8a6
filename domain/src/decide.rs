//! One shape for every aggregate's rules, so code that drives aggregates in memory (the
//! fixture generator, tests) can treat them alike.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;

/// An aggregate whose rules are a pure function of its state, a command and an instant.
pub trait Decide: Aggregate {
    type Cmd;

    fn decide_at(
        &self,
        command: Self::Cmd,
        at: DateTime<Utc>,
    ) -> Result<Vec<Self::Event>, Self::Error>;
}

macro_rules! decide_via_inherent {
    ($aggregate:ty, $command:ty) => {
        impl Decide for $aggregate {
            type Cmd = $command;

            fn decide_at(
                &self,
                command: $command,
                at: DateTime<Utc>,
            ) -> Result<Vec<Self::Event>, Self::Error> {
                self.decide(command, at)
            }
        }
    };
}

decide_via_inherent!(crate::customer::Customer, crate::customer::CustomerCommand);
decide_via_inherent!(crate::group::CustomerGroup, crate::group::GroupCommand);
decide_via_inherent!(crate::staff::Staff, crate::staff::StaffCommand);
decide_via_inherent!(crate::tags::TagLibrary, crate::tags::TagLibraryCommand);
