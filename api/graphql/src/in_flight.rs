//! Limits on requests running at once, per caller and per tenant. Rate limits count
//! requests over time; they do not stop one guide from opening fifty slow requests (or
//! ten sockets) together and holding every pooled database connection, which starved
//! every other tenant until the pool timed out. A request holds a permit of its caller
//! and one of its tenant while it runs; it waits briefly for them, then is refused with
//! `RATE_LIMITED`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use engine::auth::Caller;

/// How many requests may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightLimits {
    pub per_caller: usize,
    pub per_tenant: usize,
    /// How long a request waits for a permit before it is refused.
    pub wait: Duration,
}

impl InFlightLimits {
    /// A fifth of the pool per caller and half of it per tenant (at least one each):
    /// two tenants at their limit still leave connections for a third, and for the
    /// projector and the job runner.
    pub fn for_pool(connections: u32) -> Self {
        let connections = connections as usize;
        Self {
            per_caller: (connections / 5).max(1),
            per_tenant: (connections / 2).max(1),
            wait: Duration::from_secs(3),
        }
    }
}

/// Semaphores by key, created on first use and dropped when no request holds them, so
/// the map holds only callers with requests running.
#[derive(Debug)]
struct Gates<K> {
    size: usize,
    open: Mutex<HashMap<K, Arc<Semaphore>>>,
}

impl<K: Hash + Eq + Clone> Gates<K> {
    fn new(size: usize) -> Self {
        Self {
            size: size.max(1),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn gate(&self, key: &K) -> Arc<Semaphore> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.size)))
            .clone()
    }

    /// Forgets `key`'s semaphore once nobody holds or waits for it.
    fn tidy(&self, key: &K) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(gate) = open.get(key) {
            // Every holder and waiter keeps a clone; the map's own is the only one left.
            if Arc::strong_count(gate) == 1 {
                open.remove(key);
            }
        }
    }

    fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The live permits of the server.
#[derive(Debug)]
pub struct InFlight {
    limits: InFlightLimits,
    callers: Gates<(String, String)>,
    tenants: Gates<String>,
}

/// A running request's permits, given back when it is dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    owner: &'a InFlight,
    caller: Option<((String, String), OwnedSemaphorePermit)>,
    tenant: Option<(String, OwnedSemaphorePermit)>,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some((key, permit)) = self.caller.take() {
            drop(permit);
            self.owner.callers.tidy(&key);
        }
        if let Some((key, permit)) = self.tenant.take() {
            drop(permit);
            self.owner.tenants.tidy(&key);
        }
    }
}

impl InFlight {
    pub fn new(limits: InFlightLimits) -> Self {
        Self {
            limits,
            callers: Gates::new(limits.per_caller),
            tenants: Gates::new(limits.per_tenant),
        }
    }

    pub fn limits(&self) -> InFlightLimits {
        self.limits
    }

    /// Waits for `caller`'s permits; `None` when they did not come within the limits'
    /// wait.
    pub async fn enter(&self, caller: &Caller) -> Option<Permit<'_>> {
        let mut permit = Permit {
            owner: self,
            caller: None,
            tenant: None,
        };
        let caller_key = (caller.tenant.to_string(), caller.subject.clone());
        let tenant_key = caller.tenant.to_string();
        let entered = tokio::time::timeout(self.limits.wait, async {
            // The caller's own permit first: a caller at their limit waits without
            // taking a tenant permit a colleague could use.
            let gate = self.callers.gate(&caller_key);
            let held = gate.acquire_owned().await.ok()?;
            permit.caller = Some((caller_key.clone(), held));
            let gate = self.tenants.gate(&tenant_key);
            let held = gate.acquire_owned().await.ok()?;
            permit.tenant = Some((tenant_key.clone(), held));
            Some(())
        })
        .await;
        let entered = matches!(entered, Ok(Some(())));
        if !entered {
            // A waiter that timed out dropped its clone; forget gates nobody uses.
            drop(permit);
            self.callers.tidy(&caller_key);
            self.tenants.tidy(&tenant_key);
            return None;
        }
        Some(permit)
    }

    /// Callers and tenants with requests running (what the maps hold).
    pub fn tracked(&self) -> (usize, usize) {
        (self.callers.len(), self.tenants.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::values::TenantId;
    use engine::auth::{Credential, Role};

    fn caller(tenant: &str, subject: &str) -> Caller {
        Caller {
            tenant: TenantId::parse(tenant).unwrap(),
            subject: subject.into(),
            role: Role::Guide,
            stores: vec![],
            scopes: vec![],
            credential: Credential::Jwt,
        }
    }

    fn limits(per_caller: usize, per_tenant: usize) -> InFlightLimits {
        InFlightLimits {
            per_caller,
            per_tenant,
            wait: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn given_a_caller_at_their_limit_when_they_ask_again_then_they_are_refused_and_others_are_not(
    ) {
        let gates = InFlight::new(limits(2, 3));
        let guide = caller("acme", "g1");
        let first = gates.enter(&guide).await.unwrap();
        let _second = gates.enter(&guide).await.unwrap();
        assert!(gates.enter(&guide).await.is_none());
        assert!(gates.enter(&caller("acme", "g2")).await.is_some());
        drop(first);
        assert!(gates.enter(&guide).await.is_some());
    }

    #[tokio::test]
    async fn given_a_tenant_at_its_limit_when_another_tenant_asks_then_it_is_served() {
        let gates = InFlight::new(limits(5, 2));
        let _a = gates.enter(&caller("acme", "g1")).await.unwrap();
        let _b = gates.enter(&caller("acme", "g2")).await.unwrap();
        assert!(gates.enter(&caller("acme", "g3")).await.is_none());
        assert!(gates.enter(&caller("beta", "g1")).await.is_some());
    }

    #[tokio::test]
    async fn given_finished_requests_when_counted_then_no_gate_is_left_behind() {
        let gates = InFlight::new(limits(1, 1));
        for i in 0..100 {
            let permit = gates.enter(&caller("acme", &format!("g{i}"))).await;
            assert!(permit.is_some());
        }
        let held = gates.enter(&caller("acme", "x")).await.unwrap();
        assert!(gates.enter(&caller("acme", "x")).await.is_none());
        assert_eq!(gates.tracked(), (1, 1));
        drop(held);
        assert_eq!(gates.tracked(), (0, 0));
    }

    #[test]
    fn given_pool_sizes_when_limits_are_derived_then_each_gets_a_share_of_at_least_one() {
        assert_eq!(InFlightLimits::for_pool(10).per_caller, 2);
        assert_eq!(InFlightLimits::for_pool(10).per_tenant, 5);
        assert_eq!(InFlightLimits::for_pool(1).per_caller, 1);
        assert_eq!(InFlightLimits::for_pool(1).per_tenant, 1);
    }
}
