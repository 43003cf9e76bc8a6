//! What mutations answer: the change made, or the user errors that say why not.

use async_graphql::{ComplexObject, Context, SimpleObject};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::errors::ApiResult;
use crate::guard::caller;
use crate::reads;
use crate::types::{Customer, Job};
use crate::user_error::UserError;
use engine::auth::{customer_scope, Reach};
use engine::commands::Outcome;

/// What a customer mutation did.
#[derive(Debug, Clone, Default, SimpleObject, Serialize, Deserialize)]
#[graphql(complex)]
pub struct CustomerPayload {
    #[graphql(skip)]
    pub customer_id: Option<String>,
    /// The customer stream's version after the change.
    pub version: Option<i32>,
    /// The global position of the last event written: read models at or past it
    /// include the change.
    pub position: Option<String>,
    /// The coupon this request issued (issueCoupon).
    pub coupon_id: Option<String>,
    /// True when this answer is the replay of an earlier request with the same key.
    #[serde(default)]
    pub replayed: bool,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl CustomerPayload {
    /// The customer as the portrait shows it now (it may trail `position` briefly).
    async fn customer(&self, ctx: &Context<'_>) -> ApiResult<Option<Customer>> {
        let Some(id) = &self.customer_id else {
            return Ok(None);
        };
        let caller = caller(ctx)?;
        let reads = reads(ctx)?;
        let found = match reads
            .customer(&customer_scope(caller, Reach::Store), id)
            .await?
        {
            Some(found) => Some(found),
            None => {
                reads
                    .customer(&customer_scope(caller, Reach::Mine), id)
                    .await?
            }
        };
        Ok(found.map(Customer::new))
    }
}

impl CustomerPayload {
    /// The answer of a command that changed the customer `id`.
    pub(super) fn changed(id: String, outcome: &Outcome) -> Self {
        Self {
            customer_id: Some(id),
            version: version(outcome),
            position: position(outcome),
            replayed: outcome.replayed,
            ..Default::default()
        }
    }
}

/// What a tag library, group or staff mutation did.
#[derive(Debug, Clone, Default, SimpleObject, Serialize, Deserialize)]
pub struct ChangePayload {
    /// The id of what was created or changed.
    pub id: Option<String>,
    pub version: Option<i32>,
    pub position: Option<String>,
    #[serde(default)]
    pub replayed: bool,
    pub user_errors: Vec<UserError>,
}

impl ChangePayload {
    /// The answer of a command that created or changed `id`.
    pub(super) fn changed(id: String, outcome: &Outcome) -> Self {
        Self {
            id: Some(id),
            version: version(outcome),
            position: position(outcome),
            replayed: outcome.replayed,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, SimpleObject, Serialize, Deserialize)]
#[graphql(complex)]
pub struct JobPayload {
    #[graphql(skip)]
    pub job_id: Option<String>,
    #[serde(default)]
    pub replayed: bool,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl JobPayload {
    async fn job(&self, ctx: &Context<'_>) -> ApiResult<Option<Job>> {
        let Some(id) = &self.job_id else {
            return Ok(None);
        };
        let job = reads(ctx)?.job(id).await?;
        Ok(crate::subscription::visible(job, caller(ctx)?).map(Job))
    }
}

/// Payloads that can carry user errors and be replayed.
pub(super) trait Payload: Default + Serialize + DeserializeOwned {
    fn rejected(error: UserError) -> Self;
    fn mark_replayed(&mut self);
}

macro_rules! payload {
    ($($t:ty),*) => {$(
        impl $crate::mutation::payload::Payload for $t {
            fn rejected(error: UserError) -> Self {
                Self { user_errors: vec![error], ..Default::default() }
            }
            fn mark_replayed(&mut self) {
                self.replayed = true;
            }
        }
    )*};
}
pub(super) use payload;
payload!(CustomerPayload, ChangePayload, JobPayload);

fn position(outcome: &Outcome) -> Option<String> {
    outcome.position.map(|p| p.to_string())
}

fn version(outcome: &Outcome) -> Option<i32> {
    i32::try_from(outcome.version).ok()
}
