//! A `change_contact` step: a member of staff brought in line the way the directory
//! sync does it (the same decision, the same idempotency keys, so a notice and a sync
//! never apply one change twice), or a department stored.

use crate::directory::{
    apply, delete_department, mapping, upsert_department, Applied, DirectoryError, Listed,
};
use crate::inbox::InboxError;

use super::execute::{Run, StepResult};
use super::DirectoryStep;

fn failed(e: DirectoryError) -> InboxError {
    InboxError::Commands(Box::new(e))
}

impl Run<'_> {
    /// Executes a `change_contact` step.
    pub(super) async fn directory(&self, step: DirectoryStep) -> Result<StepResult, InboxError> {
        let (db, tenant) = (&self.engine.db, self.tenant);
        let (staff, listed) = match step {
            DirectoryStep::Department {
                id,
                name,
                parent,
                order,
            } => {
                upsert_department(db, tenant, id, name.as_deref(), parent, order, self.at)
                    .await
                    .map_err(failed)?;
                return Ok(StepResult::Done);
            }
            DirectoryStep::DepartmentDeleted { id } => {
                delete_department(db, tenant, id).await.map_err(failed)?;
                return Ok(StepResult::Done);
            }
            DirectoryStep::Gone { staff } => (staff, Listed::Gone),
            DirectoryStep::Staff {
                staff,
                name,
                department,
                title,
            } => {
                let mapped = mapping(db, tenant).await.map_err(failed)?;
                let listed = Listed::present(
                    staff.as_str(),
                    name.as_deref(),
                    department,
                    title.as_deref(),
                    &mapped,
                );
                (staff, listed)
            }
        };
        match apply(self.engine, tenant, &staff, &listed, self.at, "wecom")
            .await
            .map_err(failed)?
        {
            Applied::Changed | Applied::Unchanged => Ok(StepResult::Done),
            Applied::Refused(code) => Ok(StepResult::Rejected(
                code,
                format!("{staff}: the directory's change was refused"),
            )),
        }
    }
}
