//! Portraits kept in memory between requests (docs/adr/0025-portrait-cache.md).
//!
//! At store opening a guide opens the same customers' portraits again and again, and a
//! portrait read from PostgreSQL costs about as much CPU there as the whole request
//! costs the server (BENCHMARKS.md, issue 19). A portrait is kept here, as the
//! projection's rows showed it, until a commit that changed them is announced
//! ([`projections::announce`]): by any process's projector or rebuild, on PostgreSQL's
//! `NOTIFY`, which arrives after that commit.
//!
//! What keeps it right:
//! - **Nothing stale is put back.** A read takes a ticket before it reads the database
//!   and may store what it read only if no change was announced since. A change and a
//!   store never interleave (one lock: writers forget, readers store).
//! - **Read your writes.** A mutation that waited for the projection to apply its event
//!   forgets that customer itself, without waiting for the announcement.
//! - **Only while it hears.** Portraits are served from here only while the listener is
//!   connected; when its connection drops, everything is forgotten and the cache is off
//!   until it listens again.
//! - **Scope is checked per request** against the relations kept with the portrait, as
//!   the SQL predicate checks them; the database still reads as the tenant's role (RLS).
//! - **Bounded:** by bytes, least recently and least frequently used first.

use projections::announce::Change;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{CustomerRecord, PortraitParts, PortraitWants, Scope};

/// A portrait as the read model showed it.
pub type Portrait = (CustomerRecord, PortraitParts);

/// The default bound of a server's portrait cache.
pub const DEFAULT_BYTES: u64 = 64 * 1024 * 1024;

/// Portraits of one customer, one per set of parts asked for.
#[derive(Debug)]
struct Entry {
    /// The tenant's generation when it was read.
    generation: u64,
    variants: Vec<(PortraitWants, Arc<Portrait>)>,
    bytes: u32,
}

/// Different questions about one customer kept at once; a fifth replaces the oldest.
const VARIANTS: usize = 4;

#[derive(Debug, Default)]
struct Gate {
    /// Moves on every change announced: a ticket older than it stores nothing.
    epoch: u64,
    /// Moves when all of a tenant's portraits are forgotten at once.
    generations: HashMap<String, u64>,
    /// Whether announcements are being heard.
    live: bool,
}

/// Taken before a read of the database; see [`PortraitCache::put`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

pub struct PortraitCache {
    entries: Option<moka::sync::Cache<(String, String), Arc<Entry>>>,
    gate: RwLock<Gate>,
    pub stats: crate::hearing::Lookups,
}

impl std::fmt::Debug for PortraitCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortraitCache")
            .field("enabled", &self.entries.is_some())
            .field("live", &self.is_live())
            .finish_non_exhaustive()
    }
}

impl PortraitCache {
    /// A cache holding up to about `bytes` of portraits; 0 turns it off. It serves
    /// nothing until [`crate::hearing::listen`] hears announcements.
    pub fn new(bytes: u64) -> Self {
        let entries = (bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_: &(String, String), entry: &Arc<Entry>| entry.bytes)
                .build()
        });
        Self {
            entries,
            gate: RwLock::new(Gate::default()),
            stats: Default::default(),
        }
    }

    /// Whether it was given any room at all.
    pub fn is_enabled(&self) -> bool {
        self.entries.is_some()
    }

    /// Whether portraits are being served from memory.
    pub fn is_live(&self) -> bool {
        self.entries.is_some() && self.read_gate().live
    }

    fn read_gate(&self) -> std::sync::RwLockReadGuard<'_, Gate> {
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_gate(&self) -> std::sync::RwLockWriteGuard<'_, Gate> {
        self.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    /// To be taken before reading a portrait that may be stored.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.read_gate().epoch)
    }

    /// The portrait of `customer` with the parts `wants` names, if kept.
    pub fn get(&self, tenant: &str, customer: &str, wants: PortraitWants) -> Option<Arc<Portrait>> {
        let entries = self.entries.as_ref()?;
        let gate = self.read_gate();
        if !gate.live {
            return None;
        }
        let found = entries
            .get(&(tenant.to_string(), customer.to_string()))
            .filter(|e| e.generation == gate.generations.get(tenant).copied().unwrap_or(0))
            .and_then(|e| {
                e.variants
                    .iter()
                    .find(|(w, _)| *w == wants)
                    .map(|(_, p)| p.clone())
            });
        self.stats.count(found)
    }

    /// Keeps `portrait`, read after `ticket` was taken, unless a change was announced
    /// since: then the read may have seen the rows before that change.
    pub fn put(
        &self,
        ticket: Ticket,
        tenant: &str,
        customer: &str,
        wants: PortraitWants,
        portrait: Arc<Portrait>,
    ) {
        let Some(entries) = &self.entries else { return };
        let gate = self.read_gate();
        if !gate.live || gate.epoch != ticket.0 {
            return;
        }
        let generation = gate.generations.get(tenant).copied().unwrap_or(0);
        let key = (tenant.to_string(), customer.to_string());
        let mut variants = entries
            .get(&key)
            .filter(|e| e.generation == generation)
            .map(|e| e.variants.clone())
            .unwrap_or_default();
        variants.retain(|(w, _)| *w != wants);
        if variants.len() >= VARIANTS {
            variants.remove(0);
        }
        variants.push((wants, portrait));
        let bytes = variants.iter().map(|(_, p)| weight(p)).sum::<u32>();
        entries.insert(
            key,
            Arc::new(Entry {
                generation,
                variants,
                bytes,
            }),
        );
    }

    /// Forgets what `changes` changed.
    pub fn forget(&self, changes: &[Change]) {
        let Some(entries) = &self.entries else { return };
        let mut gate = self.write_gate();
        gate.epoch += 1;
        for change in changes {
            match change {
                Change::Customer { tenant, customer } => {
                    entries.invalidate(&(tenant.clone(), customer.clone()));
                }
                Change::Tenant(tenant) => {
                    *gate.generations.entry(tenant.clone()).or_default() += 1;
                }
                Change::All => entries.invalidate_all(),
            }
        }
    }

    /// Forgets one customer: a mutation does this once the projection has its event.
    pub fn forget_customer(&self, tenant: &str, customer: &str) {
        self.forget(&[Change::Customer {
            tenant: tenant.to_string(),
            customer: customer.to_string(),
        }]);
    }

    /// Starts or stops serving from memory; either way everything is forgotten.
    pub fn set_live(&self, live: bool) {
        let mut gate = self.write_gate();
        gate.epoch += 1;
        gate.live = live;
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }
}

/// Roughly the bytes a portrait holds: its text, and a little for each record.
fn weight((customer, parts): &Portrait) -> u32 {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let mut bytes = 256 + text(&customer.name) + text(&customer.phone);
    bytes += parts.relations.as_ref().map_or(0, |r| {
        r.iter()
            .map(|r| 160 + r.remark.len() + r.description.len() + text(&r.staff_name))
            .sum()
    });
    bytes += parts.tags.as_ref().map_or(0, |t| t.len() * 160);
    bytes += parts.groups.as_ref().map_or(0, |g| g.len() * 200);
    bytes += parts.coupons.as_ref().map_or(0, |c| c.len() * 160);
    bytes += parts.timeline.as_ref().map_or(0, |t| {
        t.iter()
            .map(|t| 96 + t.payload.len() + t.metadata.len() + t.event_type.len())
            .sum()
    });
    bytes += parts.names.as_ref().map_or(0, |n| {
        [&n.staff, &n.tags, &n.groups]
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| 64 + k.len() + v.len())
            .sum()
    });
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Whether the caller's `scope` reaches a customer with these relations: the same rule
/// as the SQL predicate (`Reads::scope_predicate`), on the relations kept with the
/// portrait.
pub fn reaches(scope: &Scope, portrait: &Portrait) -> bool {
    let relations = portrait.1.relations.as_deref().unwrap_or_default();
    match scope {
        Scope::Tenant => true,
        Scope::Staff(staff) => relations.iter().any(|r| r.staff_id == staff.as_str()),
        Scope::Stores(stores) => relations.iter().any(|r| {
            r.store_id
                .as_deref()
                .is_some_and(|s| stores.iter().any(|store| store.as_str() == s))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn portrait(name: &str, staff: &str, store: &str) -> Arc<Portrait> {
        let customer = CustomerRecord {
            customer_id: "wm-1".into(),
            name: Some(name.into()),
            phone: None,
            erased_at: None,
            first_added_at: None,
            first_staff_id: None,
            add_way: None,
            channel_state: None,
            stage: "acquired".into(),
            purchases: 0,
            total_fen: 0,
            first_purchase_at: None,
            last_purchase_at: None,
            coupons_issued: 0,
            coupons_redeemed: 0,
            coupons_expired: 0,
            last_activity_at: Utc.timestamp_opt(0, 0).unwrap(),
            version: 1,
        };
        let relation = super::super::RelationRecord {
            staff_id: staff.into(),
            staff_name: None,
            store_id: Some(store.into()),
            added_at: Utc.timestamp_opt(0, 0).unwrap(),
            add_way: 1,
            remark: String::new(),
            description: String::new(),
        };
        let parts = PortraitParts {
            relations: Some(vec![relation]),
            ..Default::default()
        };
        Arc::new((customer, parts))
    }

    fn live() -> PortraitCache {
        let cache = PortraitCache::new(1 << 20);
        cache.set_live(true);
        cache
    }

    const ALL: PortraitWants = PortraitWants {
        relations: true,
        tags: true,
        groups: true,
        coupons: true,
        timeline: Some(21),
    };

    #[test]
    fn given_a_stored_portrait_when_asked_again_then_it_is_served() {
        let cache = live();
        let ticket = cache.ticket();
        cache.put(ticket, "acme", "wm-1", ALL, portrait("王芳", "g1", "s1"));
        let got = cache.get("acme", "wm-1", ALL).unwrap();
        assert_eq!(got.0.name.as_deref(), Some("王芳"));
        assert!(cache.get("beta", "wm-1", ALL).is_none(), "another tenant");
        let fewer = PortraitWants {
            timeline: None,
            ..ALL
        };
        assert!(cache.get("acme", "wm-1", fewer).is_none(), "other parts");
    }

    #[test]
    fn given_a_change_announced_during_a_read_when_stored_then_it_is_not_kept() {
        let cache = live();
        let ticket = cache.ticket();
        cache.forget_customer("acme", "wm-other");
        cache.put(ticket, "acme", "wm-1", ALL, portrait("old", "g1", "s1"));
        assert!(cache.get("acme", "wm-1", ALL).is_none());
    }

    #[test]
    fn given_kept_portraits_when_a_customer_tenant_or_everything_changes_then_they_are_forgotten() {
        let cache = live();
        for customer in ["wm-1", "wm-2"] {
            let ticket = cache.ticket();
            cache.put(ticket, "acme", customer, ALL, portrait("x", "g1", "s1"));
        }
        let ticket = cache.ticket();
        cache.put(ticket, "beta", "wm-1", ALL, portrait("x", "g1", "s1"));
        cache.forget(&[Change::Customer {
            tenant: "acme".into(),
            customer: "wm-1".into(),
        }]);
        assert!(cache.get("acme", "wm-1", ALL).is_none());
        assert!(cache.get("acme", "wm-2", ALL).is_some());
        cache.forget(&[Change::Tenant("acme".into())]);
        assert!(cache.get("acme", "wm-2", ALL).is_none());
        assert!(cache.get("beta", "wm-1", ALL).is_some());
        cache.forget(&[Change::All]);
        assert!(cache.get("beta", "wm-1", ALL).is_none());
    }

    #[test]
    fn given_a_cache_not_hearing_announcements_when_asked_then_it_serves_and_keeps_nothing() {
        let cache = PortraitCache::new(1 << 20);
        let ticket = cache.ticket();
        cache.put(ticket, "acme", "wm-1", ALL, portrait("x", "g1", "s1"));
        assert!(cache.get("acme", "wm-1", ALL).is_none());
        let cache = live();
        let ticket = cache.ticket();
        cache.put(ticket, "acme", "wm-1", ALL, portrait("x", "g1", "s1"));
        cache.set_live(false);
        cache.set_live(true);
        assert!(
            cache.get("acme", "wm-1", ALL).is_none(),
            "forgotten while deaf"
        );
    }

    #[test]
    fn given_a_portrait_when_scopes_ask_then_only_its_guides_and_their_stores_reach_it() {
        use domain::values::{StaffId, StoreId};
        let p = portrait("x", "guide-1", "store-1");
        let staff = |s: &str| Scope::Staff(StaffId::parse(s).unwrap());
        let stores =
            |s: &[&str]| Scope::Stores(s.iter().map(|s| StoreId::parse(*s).unwrap()).collect());
        assert!(reaches(&Scope::Tenant, &p));
        assert!(reaches(&staff("guide-1"), &p));
        assert!(!reaches(&staff("guide-2"), &p));
        assert!(reaches(&stores(&["store-2", "store-1"]), &p));
        assert!(!reaches(&stores(&["store-2"]), &p));
        assert!(!reaches(&stores(&[]), &p));
    }
}
