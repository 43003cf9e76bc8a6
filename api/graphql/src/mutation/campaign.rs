//! Campaigns: a mass message (群发) or an enterprise Moment (朋友圈) to an audience
//! chosen with the customer list's filters, sent through WeCom as a job.

use async_graphql::{Context, Enum, InputObject, Object};
use chrono::{DateTime, Duration, Utc};
use engine::auth::{customer_scope, Reach};
use engine::campaign::{CampaignInput, KindInput, KIND as KIND_CAMPAIGN};
use engine::reads::{CustomerFilter as Filter, Scope};
use serde::Serialize;
use serde_json::json;

use super::payload::JobPayload;
use super::run::{heavy, keyed, once, start_job};
use crate::errors::{ApiError, ApiResult, Refusal};
use crate::guard::{caller, RoleGuard, CAMPAIGNERS};
use crate::query::CustomerFilter;
use crate::state;
use crate::user_error::{UserError, UserErrorCode};

#[derive(Debug, Default)]
pub struct CampaignMutation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
pub enum CampaignKind {
    /// 群发: each guide's customers get the message in a one-to-one chat once the guide
    /// confirms the task in WeCom (at most one a day per customer).
    MassMessage,
    /// 朋友圈: a post each guide publishes to their customers' Moments (at most one a
    /// day per customer).
    Moment,
}

/// A link card (WeCom's `link` attachment).
#[derive(Debug, Clone, InputObject, Serialize)]
pub struct CampaignLinkInput {
    pub title: String,
    pub url: String,
    pub picture_url: Option<String>,
    pub description: Option<String>,
}

/// A mini-program card (WeCom's `miniprogram` attachment).
#[derive(Debug, Clone, InputObject, Serialize)]
pub struct CampaignMiniprogramInput {
    pub title: String,
    /// The cover image, uploaded to WeCom's media store.
    pub picture_media_id: String,
    pub appid: String,
    pub page: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct StartCampaignInput {
    /// What operations call it (at most 100 characters): guides read it in the
    /// timelines of the customers it reached.
    pub name: Option<String>,
    pub kind: CampaignKind,
    /// The message (at most 4,000 bytes, as WeCom takes it).
    pub text: String,
    /// An image uploaded to WeCom's media store.
    pub image_media_id: Option<String>,
    pub link: Option<CampaignLinkInput>,
    pub miniprogram: Option<CampaignMiniprogramInput>,
    /// The coupon campaign whose redemptions measure what this campaign brought back.
    pub coupon_campaign_id: Option<String>,
    /// Who is sent it: the customer list's filters, within the caller's reach (the
    /// tenant for operations, their stores for a store manager). With `staffId` the
    /// customers that guide serves are sent by that guide.
    pub audience: Option<CustomerFilter>,
    /// When to send; omitted: now. At most 30 days ahead.
    pub send_at: Option<DateTime<Utc>>,
    /// The share of the audience held out (not sent) to measure the uplift, in
    /// thousandths: 0 (none, the default) to 500.
    #[graphql(default)]
    pub holdout_per_mille: i32,
    pub idempotency_key: String,
}

keyed!(StartCampaignInput);

/// The most WeCom takes in a message's text.
const MAX_TEXT_BYTES: usize = 4_000;
const MAX_HOLDOUT_PER_MILLE: i32 = 500;
const MAX_NAME_CHARS: usize = 100;

fn invalid(field: &str, message: impl Into<String>) -> Refusal {
    UserError::new(&["input", field], UserErrorCode::InvalidInput, message).into()
}

/// The WeCom-shaped attachments of a campaign or a welcome.
pub(super) fn attachments_of(
    image_media_id: &Option<String>,
    link: &Option<CampaignLinkInput>,
    miniprogram: &Option<CampaignMiniprogramInput>,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    if let Some(media_id) = image_media_id {
        out.push(json!({ "msgtype": "image", "image": { "media_id": media_id } }));
    }
    if let Some(link) = link {
        out.push(json!({ "msgtype": "link", "link": {
            "title": link.title, "url": link.url,
            "picurl": link.picture_url, "desc": link.description } }));
    }
    if let Some(card) = miniprogram {
        out.push(json!({ "msgtype": "miniprogram", "miniprogram": {
            "title": card.title, "pic_media_id": card.picture_media_id,
            "appid": card.appid, "page": card.page } }));
    }
    out
}

/// Checks a campaign request: the job's input, or the refusal that says what to correct.
async fn campaign_input(
    ctx: &Context<'_>,
    input: &StartCampaignInput,
) -> Result<CampaignInput, Refusal> {
    let caller = caller(ctx)?;
    let state = state(ctx)?;
    if !engine::outbox::enabled(&state.engine.db, &caller.tenant).await? {
        // A campaign is sent by WeCom or not at all: nothing is recorded as sent
        // without WeCom's answer.
        return Err(ApiError::WecomNotConfigured.into());
    }
    let text = input.text.trim();
    let attachments = attachments_of(&input.image_media_id, &input.link, &input.miniprogram);
    if text.is_empty() && attachments.is_empty() {
        return Err(invalid("text", "say something: a text or an attachment"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(UserError::new(
            &["input", "text"],
            UserErrorCode::TextTooLong,
            format!("WeCom takes at most {MAX_TEXT_BYTES} bytes of text"),
        )
        .into());
    }
    let name = input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > MAX_NAME_CHARS) {
        return Err(invalid(
            "name",
            format!("name it in at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if !(0..=MAX_HOLDOUT_PER_MILLE).contains(&input.holdout_per_mille) {
        return Err(invalid(
            "holdoutPerMille",
            format!("hold out between 0 and {MAX_HOLDOUT_PER_MILLE} in a thousand"),
        ));
    }
    let now = state.clock.now();
    let send_at = input.send_at.unwrap_or(now).max(now);
    if send_at > now + Duration::days(30) {
        return Err(invalid("sendAt", "schedule at most 30 days ahead"));
    }
    let filter = Filter::from(input.audience.clone().unwrap_or_default());
    let stores = match customer_scope(caller, Reach::Store) {
        Scope::Tenant => None,
        Scope::Stores(stores) => Some(stores.iter().map(ToString::to_string).collect()),
        Scope::Staff(_) => return Err(ApiError::Forbidden.into()),
    };
    Ok(CampaignInput {
        name: name.map(str::to_string),
        kind: match input.kind {
            CampaignKind::MassMessage => KindInput::MassMessage,
            CampaignKind::Moment => KindInput::Moment,
        },
        text: text.to_string(),
        attachments,
        coupon_campaign: input.coupon_campaign_id.clone(),
        filter,
        stores,
        send_at,
        holdout_per_mille: u16::try_from(input.holdout_per_mille).unwrap_or(0),
    })
}

#[Object]
impl CampaignMutation {
    /// Sends a mass message or a Moment to an audience through WeCom, as a job: the
    /// audience is planned when the send time comes (each customer by one guide, at most
    /// one of each kind a day, a holdout share kept back), WeCom is asked guide by guide,
    /// and each customer's outcome is what WeCom reports (`job.outcomes`,
    /// `job.wecomCalls`). Starting again with the same key returns that job.
    #[graphql(guard = "RoleGuard(CAMPAIGNERS)")]
    async fn start_campaign(
        &self,
        ctx: &Context<'_>,
        input: StartCampaignInput,
    ) -> ApiResult<JobPayload> {
        once(ctx, "startCampaign", input, |input, key| async move {
            heavy(ctx)?;
            let job = campaign_input(ctx, &input).await?;
            start_job(ctx, &key, KIND_CAMPAIGN, &serde_json::to_value(&job)?, None).await
        })
        .await
    }
}
