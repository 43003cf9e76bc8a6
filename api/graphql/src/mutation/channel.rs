//! Channel codes (渠道活码) and welcome messages (欢迎语): made and deleted in WeCom while
//! the caller waits (WeCom's answer is what the code's row shows), and the welcome a
//! friend-add through them, or any other, is sent.

use async_graphql::{ComplexObject, Context, InputObject, Object, SimpleObject, ID};
use domain::values::CampaignId;
use engine::channel_codes::{self, NewChannelCode};
use engine::welcome::{self, WelcomeCoupon, WelcomeMessage as Welcome};
use serde::{Deserialize, Serialize};
use wecom::outbound::claimed::{send_now, HOLD};
use wecom::outbound::OutboundSettings;

use super::campaign::{attachments_of, CampaignLinkInput, CampaignMiniprogramInput};
use super::payload::payload;
use super::run::{keyed, once};
use crate::errors::{ApiError, ApiResult, Refusal};
use crate::guard::{caller, RoleGuard, OPERATIONS};
use crate::types::{ChannelCode, WelcomeMessage};
use crate::user_error::{UserError, UserErrorCode};
use crate::{ids, reads, state};

#[derive(Debug, Default)]
pub struct ChannelMutation;

/// The most WeCom takes in a welcome's text.
const MAX_TEXT_BYTES: usize = 4_000;
const MAX_VALID_DAYS: i32 = 365;

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct WelcomeCouponInput {
    pub campaign_id: String,
    pub value_yuan: f64,
    /// Days the coupon stays valid from the welcome (1 to 365).
    pub valid_days: i32,
}

/// A welcome: text, optional attachments, and an optional coupon issued once WeCom
/// accepted it.
#[derive(Debug, Clone, InputObject, Serialize)]
pub struct WelcomeInput {
    pub text: String,
    pub image_media_id: Option<String>,
    pub link: Option<CampaignLinkInput>,
    pub miniprogram: Option<CampaignMiniprogramInput>,
    pub coupon: Option<WelcomeCouponInput>,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct SetWelcomeMessageInput {
    /// The tenant's welcome; null removes it (friend-adds then get none, unless their
    /// channel code has its own).
    pub welcome: Option<WelcomeInput>,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct CreateChannelCodeInput {
    /// What operations call it (WeCom's remark; 1 to 30 characters), e.g. 南京西路店门口.
    pub name: String,
    /// The `state` friend-adds through it carry (1 to 30 letters, digits, '-' or '_');
    /// omitted: one is made up.
    pub state: Option<String>,
    /// The guides who answer it (WeCom userids): one makes a personal code, several a
    /// shared one WeCom spreads the adds across (at most 100).
    pub staff_ids: Vec<String>,
    /// Add without the guide confirming.
    #[graphql(default = true)]
    pub skip_verify: bool,
    /// The welcome customers added through it get instead of the tenant's.
    pub welcome: Option<WelcomeInput>,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct DisableChannelCodeInput {
    pub id: ID,
    pub idempotency_key: String,
}

keyed!(
    SetWelcomeMessageInput,
    CreateChannelCodeInput,
    DisableChannelCodeInput
);

/// What a channel code mutation did.
#[derive(Debug, Clone, Default, SimpleObject, Serialize, Deserialize)]
#[graphql(complex)]
pub struct ChannelCodePayload {
    #[graphql(skip)]
    pub state: Option<String>,
    #[serde(default)]
    pub replayed: bool,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl ChannelCodePayload {
    /// The code as it stands now: ACTIVE with its QR image once WeCom answered.
    async fn channel_code(&self, ctx: &Context<'_>) -> ApiResult<Option<ChannelCode>> {
        let Some(state) = &self.state else {
            return Ok(None);
        };
        Ok(reads(ctx)?.channel_code(state).await?.map(ChannelCode))
    }
}

/// What setWelcomeMessage did.
#[derive(Debug, Clone, Default, SimpleObject, Serialize, Deserialize)]
#[graphql(complex)]
pub struct WelcomeMessagePayload {
    #[serde(default)]
    pub replayed: bool,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl WelcomeMessagePayload {
    /// The tenant's welcome now (null when removed).
    async fn welcome_message(&self, ctx: &Context<'_>) -> ApiResult<Option<WelcomeMessage>> {
        let found = reads(ctx)?.welcome_message(welcome::TENANT).await?;
        Ok(found.map(WelcomeMessage))
    }
}

payload!(ChannelCodePayload, WelcomeMessagePayload);

fn invalid(path: &[&str], message: impl Into<String>) -> Refusal {
    UserError::new(path, UserErrorCode::InvalidInput, message).into()
}

/// The welcome `input` asks for, for `state`, or what to correct (under `at`).
fn welcome_of(
    input: &WelcomeInput,
    state: &str,
    at: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Welcome, Refusal> {
    let text = input.text.trim();
    if text.is_empty() {
        return Err(invalid(&["input", at, "text"], "say something"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(UserError::new(
            &["input", at, "text"],
            UserErrorCode::TextTooLong,
            format!("WeCom takes at most {MAX_TEXT_BYTES} bytes of text"),
        )
        .into());
    }
    let coupon = match &input.coupon {
        None => None,
        Some(c) => {
            if CampaignId::parse(c.campaign_id.as_str()).is_err() {
                return Err(invalid(
                    &["input", at, "coupon", "campaignId"],
                    "not a campaign id",
                ));
            }
            let fen = (c.value_yuan * 100.0).round();
            if !(fen.is_finite() && (1.0..=1e9).contains(&fen)) {
                return Err(invalid(
                    &["input", at, "coupon", "valueYuan"],
                    "a value of at least 0.01 yuan",
                ));
            }
            if !(1..=MAX_VALID_DAYS).contains(&c.valid_days) {
                return Err(invalid(
                    &["input", at, "coupon", "validDays"],
                    format!("1 to {MAX_VALID_DAYS} days"),
                ));
            }
            Some(WelcomeCoupon {
                campaign: c.campaign_id.clone(),
                value_fen: fen as i64,
                valid_days: c.valid_days,
            })
        }
    };
    Ok(Welcome {
        state: state.to_string(),
        text: text.to_string(),
        attachments: attachments_of(&input.image_media_id, &input.link, &input.miniprogram),
        coupon,
        updated_at: now,
    })
}

/// Channel codes are made in WeCom or not at all.
async fn require_wecom(ctx: &Context<'_>) -> Result<(), Refusal> {
    let tenant = &caller(ctx)?.tenant;
    if !engine::outbox::enabled(&state(ctx)?.engine.db, tenant).await? {
        return Err(ApiError::WecomNotConfigured.into());
    }
    Ok(())
}

/// Sends a claimed call now; if WeCom does not answer, the outbox's tick goes on.
async fn send(ctx: &Context<'_>, call: &engine::outbox::Call) -> Result<(), Refusal> {
    let state = state(ctx)?;
    let now = state.clock.now();
    send_now(
        &state.engine,
        &state.wecom,
        &OutboundSettings::default(),
        call,
        now,
    )
    .await
    .map_err(ApiError::internal)?;
    Ok(())
}

#[Object]
impl ChannelMutation {
    /// Sets (or, with a null welcome, removes) the tenant's welcome message: sent in the
    /// guide's name through WeCom to each customer who adds a guide, within WeCom's 20
    /// seconds, once; recorded in the customer's log when WeCom accepted it.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn set_welcome_message(
        &self,
        ctx: &Context<'_>,
        input: SetWelcomeMessageInput,
    ) -> ApiResult<WelcomeMessagePayload> {
        once(ctx, "setWelcomeMessage", input, |input, _key| async move {
            let tenant = &caller(ctx)?.tenant;
            let state = state(ctx)?;
            let db = &state.engine.db;
            match &input.welcome {
                Some(w) => {
                    let message = welcome_of(w, welcome::TENANT, "welcome", state.clock.now())?;
                    welcome::set(db, tenant, &message).await?;
                }
                None => {
                    welcome::clear(db, tenant, welcome::TENANT).await?;
                }
            }
            Ok(WelcomeMessagePayload::default())
        })
        .await
    }

    /// Makes a 「联系我」 QR code in WeCom (`add_contact_way`) whose friend-adds carry
    /// its state, so each customer it brings is attributed to it in the portrait and
    /// the funnel. Answers once WeCom did (the code ACTIVE with its QR image, or
    /// REFUSED with WeCom's reason); without an answer it stays CREATING and is asked
    /// again.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn create_channel_code(
        &self,
        ctx: &Context<'_>,
        input: CreateChannelCodeInput,
    ) -> ApiResult<ChannelCodePayload> {
        once(ctx, "createChannelCode", input, |input, key| async move {
            require_wecom(ctx).await?;
            let tenant = &caller(ctx)?.tenant;
            let state = state(ctx)?;
            let now = state.clock.now();
            let code = NewChannelCode {
                state: input
                    .state
                    .clone()
                    .unwrap_or_else(|| format!("cc{}", &key.replace('-', "")[..16])),
                name: input.name.clone(),
                staff_ids: input.staff_ids.clone(),
                skip_verify: input.skip_verify,
            };
            channel_codes::check(&code).map_err(|(field, why)| invalid(&["input", field], why))?;
            let welcome = input
                .welcome
                .as_ref()
                .map(|w| welcome_of(w, &code.state, "welcome", now))
                .transpose()?;
            let db = &state.engine.db;
            let Some(call) = channel_codes::create(db, tenant, &code, now, HOLD).await? else {
                return Err(UserError::new(
                    &["input", "state"],
                    UserErrorCode::Conflict,
                    format!("another channel code has the state {}", code.state),
                )
                .into());
            };
            if let Some(welcome) = &welcome {
                welcome::set(db, tenant, welcome).await?;
            }
            send(ctx, &call).await?;
            Ok(ChannelCodePayload {
                state: Some(code.state),
                ..Default::default()
            })
        })
        .await
    }

    /// Deletes an active channel code in WeCom (`del_contact_way`): its QR image stops
    /// adding customers. The code stays listed (DISABLED) and the customers it brought
    /// stay attributed to it.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn disable_channel_code(
        &self,
        ctx: &Context<'_>,
        input: DisableChannelCodeInput,
    ) -> ApiResult<ChannelCodePayload> {
        once(ctx, "disableChannelCode", input, |input, _key| async move {
            require_wecom(ctx).await?;
            let tenant = &caller(ctx)?.tenant;
            let state = state(ctx)?;
            let local = ids::decode("ChannelCode", &input.id)?;
            let db = &state.engine.db;
            let Some(code) = channel_codes::get(db, tenant, &local).await? else {
                return Err(UserError::new(
                    &["input", "id"],
                    UserErrorCode::NotFound,
                    "no such channel code",
                )
                .into());
            };
            let now = state.clock.now();
            let Some(call) = channel_codes::disable(db, tenant, &local, now, HOLD).await? else {
                return Err(UserError::new(
                    &["input", "id"],
                    UserErrorCode::Conflict,
                    format!(
                        "only an active code can be disabled; this one is {}",
                        code.status
                    ),
                )
                .into());
            };
            send(ctx, &call).await?;
            Ok(ChannelCodePayload {
                state: Some(local),
                ..Default::default()
            })
        })
        .await
    }
}
