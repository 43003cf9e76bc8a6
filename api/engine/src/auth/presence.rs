//! Staff known not to have departed, kept between requests (docs/adr/0026-staff-presence.md).
//!
//! Every request of a guide asks the log whether the guide has left; with portraits
//! served from memory, that question was all the work PostgreSQL still did per request
//! (BENCHMARKS.md, issue 19). A departure is rare and permanent, so "still here" is kept
//! here until the log says otherwise:
//! - A row trigger on `events` sends `NOTIFY scrm_departed` with the staff member's
//!   stream id inside the transaction that appends `StaffDeparted`, whoever appends it
//!   (a mutation, the WeCom directory sync, another server). It is delivered after that
//!   commit, to every listening server.
//! - A read takes a ticket before it asks the log and may keep "still here" only if no
//!   departure was heard since (the portrait cache's rule).
//! - Only while heard: when the listener's connection drops, everything is forgotten
//!   and every request asks the log again until it listens again. On a database without
//!   the trigger (a Citus coordinator, where row triggers fire on the workers) it never
//!   turns on.
//! - The process that marks a departure forgets it itself, so its own next request is
//!   refused without waiting for the notice.

use std::sync::RwLock;

/// The channel departures are announced on (migration 0019).
pub const CHANNEL: &str = "scrm_departed";

/// The trigger that announces them; without it nothing is kept.
pub const TRIGGER: &str = "events_staff_departed";

/// At most this many staff are remembered at once: a chain's whole staff, bounded.
const CAPACITY: u64 = 200_000;

#[derive(Debug, Default)]
struct Gate {
    /// Moves on every departure heard: an older ticket keeps nothing.
    epoch: u64,
    live: bool,
}

/// Taken before asking the log; see [`Presence::remember`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

/// Staff streams known to have no `StaffDeparted`, while departures are being heard.
pub struct Presence {
    present: moka::sync::Cache<String, ()>,
    gate: RwLock<Gate>,
    pub stats: crate::hearing::Lookups,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("live", &self.is_live())
            .finish_non_exhaustive()
    }
}

impl Default for Presence {
    fn default() -> Self {
        Self {
            present: moka::sync::Cache::new(CAPACITY),
            gate: RwLock::new(Gate::default()),
            stats: Default::default(),
        }
    }
}

impl Presence {
    fn read_gate(&self) -> std::sync::RwLockReadGuard<'_, Gate> {
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_gate(&self) -> std::sync::RwLockWriteGuard<'_, Gate> {
        self.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether departures are being heard, so "still here" may be answered from memory.
    pub fn is_live(&self) -> bool {
        self.read_gate().live
    }

    /// To be taken before asking the log about `stream`.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.read_gate().epoch)
    }

    /// Whether the staff member of `stream` is known to be still here.
    pub fn is_present(&self, stream: &str) -> bool {
        let gate = self.read_gate();
        let known = gate.live && self.present.contains_key(stream);
        self.stats.count(known.then_some(())).is_some()
    }

    /// Keeps that `stream` had not departed when the log was asked after `ticket`,
    /// unless a departure was heard since: the answer may predate it.
    pub fn remember(&self, ticket: Ticket, stream: &str) {
        let gate = self.read_gate();
        if gate.live && gate.epoch == ticket.0 {
            self.present.insert(stream.to_string(), ());
        }
    }

    /// The staff member of `stream` departed.
    pub fn forget(&self, stream: &str) {
        let mut gate = self.write_gate();
        gate.epoch += 1;
        self.present.invalidate(stream);
    }

    /// Starts or stops trusting memory; either way everything is forgotten, since what
    /// was said while nobody listened is lost.
    pub fn set_live(&self, live: bool) {
        let mut gate = self.write_gate();
        gate.epoch += 1;
        gate.live = live;
        self.present.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Presence {
        let presence = Presence::default();
        presence.set_live(true);
        presence
    }

    #[test]
    fn given_a_remembered_guide_when_asked_again_then_memory_answers() {
        let presence = live();
        let ticket = presence.ticket();
        presence.remember(ticket, "acme:g1");
        assert!(presence.is_present("acme:g1"));
        assert!(!presence.is_present("beta:g1"), "another tenant's stream");
    }

    #[test]
    fn given_a_departure_heard_during_the_read_when_remembered_then_nothing_is_kept() {
        let presence = live();
        let ticket = presence.ticket();
        presence.forget("acme:g1");
        presence.remember(ticket, "acme:g1");
        assert!(!presence.is_present("acme:g1"));
    }

    #[test]
    fn given_a_remembered_guide_when_their_departure_is_heard_then_the_log_is_asked() {
        let presence = live();
        let ticket = presence.ticket();
        presence.remember(ticket, "acme:g1");
        presence.remember(ticket, "acme:g2");
        presence.forget("acme:g1");
        assert!(!presence.is_present("acme:g1"));
        assert!(presence.is_present("acme:g2"), "a colleague stays known");
    }

    #[test]
    fn given_nobody_listening_when_asked_then_nothing_is_answered_from_memory() {
        let presence = Presence::default();
        let ticket = presence.ticket();
        presence.remember(ticket, "acme:g1");
        assert!(!presence.is_present("acme:g1"), "never live");

        let presence = live();
        let ticket = presence.ticket();
        presence.remember(ticket, "acme:g1");
        presence.set_live(false);
        assert!(!presence.is_present("acme:g1"), "deaf");
        presence.set_live(true);
        assert!(!presence.is_present("acme:g1"), "forgotten across the gap");
    }
}
