//! One step through the engine's command services. Every step takes the same path: a
//! command on a stream with an idempotency key derived from the notice's, its answer
//! turned into the step's result. Handover conclusions first decide their command on
//! the customer's state; group memberships span two streams.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::customer::{
    AcceptTrigger, Customer, CustomerCommand, CustomerError, RefusalReason, RemovedBy,
};
use domain::group::GroupError;
use domain::stamp::{stream_id, Stamped, TAG_LIBRARY_LOCAL_ID};
use domain::tags::{TagLibraryCommand, TagLibraryError};
use domain::values::{ExternalUserId, GroupId, StaffId, TenantId};
use serde::Serialize;

use engine::app::Engine;
use engine::commands::{CommandError, CommandMeta, CommandService, MembershipError};

use super::reads::store_error;
use super::Step;
use crate::inbox::{self, InboxError};

/// How one step ended.
pub(crate) enum StepResult {
    Done,
    /// A business rejection: its stable code and message.
    Rejected(&'static str, String),
}

/// The library's code for "already deleted".
const DELETED: &str = "DELETED";

/// A domain error's stable code, as a failed row records it.
type Code<E> = fn(&E) -> &'static str;

/// A command's answer as the step's result. A store error stops the run, cause kept.
fn answered<T, E>(done: Result<T, CommandError<E>>, code: Code<E>) -> Result<StepResult, InboxError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match done {
        Ok(_) => Ok(StepResult::Done),
        Err(CommandError::Rejected(r)) => Ok(StepResult::Rejected(code(&r), r.to_string())),
        // The key is only reused when an earlier run applied this notice to the stream
        // with a command decided on an older state: the notice is already applied.
        Err(CommandError::IdempotencyKeyReused) => Ok(StepResult::Done),
        Err(other) => Err(InboxError::Commands(Box::new(other))),
    }
}

/// How a handover the notice reports ended, before it is matched to the engine's.
enum Handover {
    /// `DELETE_BY_TRANSFER`: the customer went from `staff` to the new owner.
    Completed { staff: StaffId },
    /// `transfer_fail`: the customer stays where it was.
    Failed {
        staff: StaffId,
        reason: RefusalReason,
    },
}

impl Handover {
    /// The command that concludes it on the customer's state: the engine's pending
    /// handover accepted or refused; a completed transfer the engine never started
    /// ends the relation as a transfer (never as churn).
    fn command(self, state: &Customer) -> Result<CustomerCommand, CustomerError> {
        match self {
            Self::Completed { staff } => {
                Ok(match state.pending_handover().filter(|p| p.from == staff) {
                    Some(pending) => CustomerCommand::AcceptHandover {
                        handover: pending.handover,
                        trigger: AcceptTrigger::Reported,
                    },
                    None => CustomerCommand::RemoveFriend {
                        staff,
                        by: RemovedBy::Transfer,
                    },
                })
            }
            Self::Failed { staff, reason } => {
                let pending = state
                    .pending_handover()
                    .filter(|p| p.to == staff || p.from == staff)
                    .ok_or(CustomerError::NoSuchHandover)?;
                Ok(CustomerCommand::RefuseHandover {
                    handover: pending.handover,
                    reason,
                })
            }
        }
    }
}

/// The steps of one notice: its tenant, time and request, and the idempotency key
/// every command derives its own from.
pub(crate) struct Run<'a> {
    pub engine: &'a Engine,
    pub tenant: &'a TenantId,
    pub at: DateTime<Utc>,
    pub meta: &'a CommandMeta,
    pub key: &'a str,
}

impl Run<'_> {
    /// Executes `step`.
    pub async fn execute(&self, step: Step) -> Result<StepResult, InboxError> {
        let engine = self.engine;
        match step {
            Step::Customer {
                customer,
                part,
                command,
            } => {
                let stream = self.stream(customer.as_str());
                self.send(
                    &engine.customers,
                    &stream,
                    command,
                    part,
                    CustomerError::code,
                )
                .await
            }
            Step::Group {
                group,
                part,
                command,
            } => {
                let stream = self.stream(group.as_str());
                self.send(&engine.groups, &stream, command, part, GroupError::code)
                    .await
            }
            Step::Tags { part, command } => {
                let stream = self.stream(TAG_LIBRARY_LOCAL_ID);
                let deleting = matches!(
                    command,
                    TagLibraryCommand::DeleteTag { .. } | TagLibraryCommand::DeleteGroup { .. }
                );
                match self
                    .send(&engine.tags, &stream, command, part, TagLibraryError::code)
                    .await?
                {
                    // Deleted already, here first (our own del_corp_tag, echoed): as WeCom
                    // says, nothing to record.
                    StepResult::Rejected(code, _) if deleting && code == DELETED => {
                        Ok(StepResult::Done)
                    }
                    other => Ok(other),
                }
            }
            Step::Directory(step) => self.directory(step).await,
            Step::TransferCompleted { customer, staff } => {
                self.conclude(&customer, Handover::Completed { staff })
                    .await
            }
            Step::TransferFailed {
                customer,
                staff,
                reason,
            } => {
                self.conclude(&customer, Handover::Failed { staff, reason })
                    .await
            }
            Step::Join {
                group,
                customer,
                scene,
            } => self.membership(&group, &customer, scene, true).await,
            Step::Leave {
                group,
                customer,
                scene,
            } => self.membership(&group, &customer, scene, false).await,
        }
    }

    fn stream(&self, local_id: &str) -> String {
        stream_id(self.tenant, local_id)
    }

    /// The request's metadata with the notice's key, or the key of one `part` of it.
    fn keyed(&self, part: Option<&str>) -> CommandMeta {
        let key = match part {
            Some(part) => format!("{}:{part}", self.key),
            None => self.key.to_owned(),
        };
        self.meta.clone().with_idempotency_key(key)
    }

    /// The path every command takes: `command` on `stream` at the notice's time.
    async fn send<A, C>(
        &self,
        service: &CommandService<A>,
        stream: &str,
        command: C,
        part: Option<String>,
        code: Code<A::Error>,
    ) -> Result<StepResult, InboxError>
    where
        A: Aggregate<Command = Stamped<C>, Services = ()>,
        A::Event: domain::pii::Personal,
        A::Error: Send + Sync + 'static,
        C: Clone + Serialize + Send + Sync,
    {
        let meta = self.keyed(part.as_deref());
        answered(
            service
                .execute(stream, Stamped::new(self.at, command), &meta)
                .await,
            code,
        )
    }

    /// A handover's conclusion, decided on the customer's state unless this notice was
    /// already applied to the stream (a redelivery must not decide again).
    async fn conclude(
        &self,
        customer: &ExternalUserId,
        handover: Handover,
    ) -> Result<StepResult, InboxError> {
        let stream = self.stream(customer.as_str());
        if inbox::key_used(&self.engine.db, Customer::TYPE, &stream, self.key).await? {
            return Ok(StepResult::Done);
        }
        let (state, _) = self
            .engine
            .customers
            .load(&stream)
            .await
            .map_err(store_error)?;
        match handover.command(&state) {
            Ok(command) => {
                self.send(
                    &self.engine.customers,
                    &stream,
                    command,
                    None,
                    CustomerError::code,
                )
                .await
            }
            Err(e) => answered::<(), _>(Err(CommandError::Rejected(e)), CustomerError::code),
        }
    }

    /// A customer joining (`joins`) or leaving a group: the group's stream, then the
    /// customer's, each keyed by the customer.
    async fn membership(
        &self,
        group: &GroupId,
        customer: &ExternalUserId,
        scene: u8,
        joins: bool,
    ) -> Result<StepResult, InboxError> {
        let meta = self.keyed(Some(customer.as_str()));
        let members = self.engine.membership();
        let done = if joins {
            members
                .join(self.tenant, group, customer, scene, self.at, &meta)
                .await
        } else {
            members
                .leave(self.tenant, group, customer, scene, self.at, &meta)
                .await
        };
        match done {
            Ok(()) => Ok(StepResult::Done),
            Err(MembershipError::Group(e)) => answered::<(), _>(Err(e), GroupError::code),
            Err(MembershipError::Customer(e)) => answered::<(), _>(Err(e), CustomerError::code),
        }
    }
}
