//! Which customers a caller may see: the one policy every edge (GraphQL, CLI, jobs)
//! applies, so a role's reach is decided here and nowhere else.

use super::{Caller, Role};
use crate::reads::Scope;

/// How far a caller asks to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reach {
    /// A guide's own customers (the default for guides); everyone the caller may see
    /// for other roles.
    #[default]
    Mine,
    /// Customers of the caller's stores (guides and store managers).
    Store,
}

/// The customers `caller` may see when asking for `wanted`.
pub fn customer_scope(caller: &Caller, wanted: Reach) -> Scope {
    match (caller.role, wanted, caller.staff()) {
        (Role::Guide, Reach::Mine, Some(staff)) => Scope::Staff(staff),
        (Role::Guide, Reach::Mine, None) => Scope::Stores(Vec::new()),
        (Role::Guide | Role::StoreManager, _, _) => Scope::Stores(caller.stores.clone()),
        (Role::Operations | Role::Analyst | Role::Admin, _, _) => Scope::Tenant,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Credential;
    use domain::values::{StaffId, StoreId, TenantId};

    fn caller(role: Role, subject: &str) -> Caller {
        Caller {
            tenant: TenantId::parse("t1").unwrap(),
            subject: subject.to_string(),
            role,
            stores: vec![StoreId::parse("s1").unwrap()],
            scopes: Vec::new(),
            credential: Credential::Jwt,
        }
    }

    #[test]
    fn a_guide_sees_their_own_customers_or_their_stores() {
        let guide = caller(Role::Guide, "alice");
        let stores = Scope::Stores(vec![StoreId::parse("s1").unwrap()]);
        assert_eq!(
            customer_scope(&guide, Reach::Mine),
            Scope::Staff(StaffId::parse("alice").unwrap())
        );
        assert_eq!(customer_scope(&guide, Reach::Store), stores);
        let manager = caller(Role::StoreManager, "bob");
        assert_eq!(customer_scope(&manager, Reach::Mine), stores);
    }

    #[test]
    fn a_guide_without_a_valid_staff_id_sees_nobody() {
        let guide = caller(Role::Guide, "");
        assert_eq!(
            customer_scope(&guide, Reach::Mine),
            Scope::Stores(Vec::new())
        );
    }

    #[test]
    fn office_roles_see_the_whole_tenant() {
        for role in [Role::Operations, Role::Analyst, Role::Admin] {
            for reach in [Reach::Mine, Reach::Store] {
                assert_eq!(customer_scope(&caller(role, "x"), reach), Scope::Tenant);
            }
        }
    }
}
