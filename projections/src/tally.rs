//! How many events of each tenant a projection has applied, and the last one: what a
//! tenant's analysts are shown instead of the deployment's figures (which tell one
//! tenant how busy the others are). Kept in `projection_tenant_progress`, in the same
//! transaction as the projection's rows, so it is exactly as far as they are.

use std::collections::BTreeMap;

use crate::log::{Checkpoint, LoggedEvent};

/// Events and last checkpoint per tenant, for one batch or one whole rebuild. Grows
/// with the number of tenants, not with their data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantTally(BTreeMap<String, (i64, Checkpoint)>);

impl TenantTally {
    pub fn add(&mut self, event: &LoggedEvent) {
        let entry = self
            .0
            .entry(event.tenant.clone())
            .or_insert((0, Checkpoint::START));
        entry.0 += 1;
        entry.1 = entry.1.max(event.checkpoint);
    }

    pub fn of(events: &[LoggedEvent]) -> Self {
        let mut tally = Self::default();
        for e in events {
            tally.add(e);
        }
        tally
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, i64, Checkpoint)> {
        self.0.iter().map(|(t, (n, at))| (t.as_str(), *n, *at))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::AnyEvent;
    use domain::tags::TagLibraryEvent;

    fn event(tenant: &str, position: i64) -> LoggedEvent {
        LoggedEvent {
            checkpoint: Checkpoint { txid: 1, position },
            tenant: tenant.into(),
            local_id: "library".into(),
            sequence: position,
            event: AnyEvent::TagLibrary(TagLibraryEvent::TagGroupDeleted {
                group: domain::values::TagGroupId::parse("g").unwrap(),
                at: chrono::DateTime::UNIX_EPOCH,
            }),
        }
    }

    #[test]
    fn given_events_of_two_tenants_when_tallied_then_each_counts_its_own_and_its_last() {
        let tally = TenantTally::of(&[event("a", 1), event("b", 2), event("a", 3)]);
        let rows: Vec<_> = tally.iter().collect();
        assert_eq!(
            rows,
            vec![
                (
                    "a",
                    2,
                    Checkpoint {
                        txid: 1,
                        position: 3
                    }
                ),
                (
                    "b",
                    1,
                    Checkpoint {
                        txid: 1,
                        position: 2
                    }
                )
            ]
        );
    }
}
