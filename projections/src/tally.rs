//! How many events of each tenant a projection has passed, and the last one: what a
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
        self.count(&event.tenant, event.checkpoint);
    }

    /// One row of `tenant` at `at`, parsed or not.
    pub fn count(&mut self, tenant: &str, at: Checkpoint) {
        if let Some(entry) = self.0.get_mut(tenant) {
            entry.0 += 1;
            entry.1 = entry.1.max(at);
        } else {
            self.0.insert(tenant.to_string(), (1, at));
        }
    }

    /// Adds another tally's counts (of later rows) to this one.
    pub fn merge(&mut self, other: TenantTally) {
        for (tenant, (n, at)) in other.0 {
            let entry = self.0.entry(tenant).or_insert((0, Checkpoint::START));
            entry.0 += n;
            entry.1 = entry.1.max(at);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, i64, Checkpoint)> {
        self.0.iter().map(|(t, (n, at))| (t.as_str(), *n, *at))
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
    fn given_two_pages_when_merged_then_counts_add_up_and_the_last_wins() {
        let mut first = TenantTally::default();
        first.count(
            "a",
            Checkpoint {
                txid: 1,
                position: 1,
            },
        );
        let mut second = TenantTally::default();
        second.count(
            "a",
            Checkpoint {
                txid: 2,
                position: 5,
            },
        );
        second.count(
            "b",
            Checkpoint {
                txid: 2,
                position: 6,
            },
        );
        first.merge(second);
        let rows: Vec<_> = first.iter().collect();
        assert_eq!(
            rows,
            vec![
                (
                    "a",
                    2,
                    Checkpoint {
                        txid: 2,
                        position: 5
                    }
                ),
                (
                    "b",
                    1,
                    Checkpoint {
                        txid: 2,
                        position: 6
                    }
                )
            ]
        );
    }

    #[test]
    fn given_events_of_two_tenants_when_tallied_then_each_counts_its_own_and_its_last() {
        let mut tally = TenantTally::default();
        for e in [event("a", 1), event("b", 2), event("a", 3)] {
            tally.add(&e);
        }
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
