//! One shape for every aggregate's rules, so code that drives aggregates in memory (the
//! fixture generator, tests) can treat them alike.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

use crate::stamp::Stamped;

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

/// The body of every aggregate's `handle`: decide, then write each event to the sink
/// (which applies it), so cqrs-es sees exactly what the pure function decided.
pub async fn handle<A>(
    aggregate: &mut A,
    command: Stamped<A::Cmd>,
    sink: &EventSink<A>,
) -> Result<(), A::Error>
where
    A: Decide,
{
    for event in aggregate.decide_at(command.command, command.at)? {
        sink.write(event, aggregate).await;
    }
    Ok(())
}

/// Implements cqrs-es's `DomainEvent` for an event enum with a `name()` method: the stable
/// name is the stored event type, and every payload starts at version 1.0.
macro_rules! published_event {
    ($event:ty) => {
        impl cqrs_es::DomainEvent for $event {
            fn event_type(&self) -> String {
                self.name().to_string()
            }

            fn event_version(&self) -> String {
                "1.0".to_string()
            }
        }
    };
}
pub(crate) use published_event;
