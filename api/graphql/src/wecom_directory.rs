//! The corp's WeCom departments for operations, with the store each one is.

use async_graphql::Object;

use engine::reads::DepartmentRecord;
use wecom::directory::unmapped_store;

/// A department of the corp's WeCom directory.
pub struct WecomDepartment(pub DepartmentRecord);

#[Object]
impl WecomDepartment {
    /// WeCom's department id.
    async fn department_id(&self) -> i64 {
        self.0.department_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// 0 for the root department.
    async fn parent_id(&self) -> i64 {
        self.0.parent_id
    }
    async fn order(&self) -> i64 {
        self.0.sort_order
    }
    /// The store operations mapped it to; null while unmapped.
    async fn store_id(&self) -> Option<&str> {
        self.0.store_id.as_deref()
    }
    /// The store its staff work in: the mapped one, else `dept-<id>`.
    async fn staff_store_id(&self) -> String {
        self.0
            .store_id
            .clone()
            .unwrap_or_else(|| unmapped_store(self.0.department_id).to_string())
    }
}
