//! The welcome a friend-add asks for: a notice with a `WelcomeCode` gets the welcome of
//! the channel code it came through, else the tenant's, sent through
//! `send_welcome_msg` as the notice is processed (the endpoint starts processing as
//! soon as the notice is stored), once per code however often WeCom delivers the
//! notice (docs/adr/0020-welcome-and-channel-codes.md).

use chrono::{DateTime, Utc};
use domain::values::TenantId;
use engine::app::Engine;
use engine::welcome::{self, WelcomeAsked};

use crate::client::WecomApi;
use crate::notice::{Notice, NoticeKind};
use crate::outbound::claimed::{send_now, HOLD};
use crate::outbound::{OutboundError, OutboundSettings};

/// The welcome `notice` asks for, if it is a friend-add with a welcome code. Pure.
pub fn asked(tenant: &TenantId, notice: &Notice) -> Option<WelcomeAsked> {
    let NoticeKind::ContactAdded {
        staff_id,
        external_user_id,
        state,
        welcome_code: Some(code),
        ..
    } = &notice.kind
    else {
        return None;
    };
    Some(WelcomeAsked {
        tenant: tenant.clone(),
        customer: external_user_id.clone(),
        staff: staff_id.clone(),
        state: state.clone().filter(|s| !s.is_empty()),
        code: code.clone(),
        notice_at: DateTime::from_timestamp(notice.envelope.time(), 0).unwrap_or_default(),
    })
}

/// How a friend-add's welcome went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeted {
    /// No welcome code, no welcome set, or no WeCom API to send it with.
    Nothing,
    /// The code's call was written before: that writer sends it.
    AlreadyAsked,
    /// Sent now; `true` when WeCom answered (accepted or refused: the row says which).
    Sent(bool),
}

/// Sends the welcome `notice` asks for.
pub async fn greet(
    engine: &Engine,
    api: &WecomApi,
    tenant: &TenantId,
    notice: &Notice,
    now: DateTime<Utc>,
) -> Result<Greeted, OutboundError> {
    let Some(asked) = asked(tenant, notice) else {
        return Ok(Greeted::Nothing);
    };
    let db = &engine.db;
    let Some(message) = welcome::for_add(db, tenant, asked.state.as_deref()).await? else {
        return Ok(Greeted::Nothing);
    };
    if !engine::outbox::enabled(db, tenant).await? {
        return Ok(Greeted::Nothing);
    }
    let Some(call) = welcome::claim(db, &asked, &message, now, HOLD).await? else {
        return Ok(Greeted::AlreadyAsked);
    };
    let answered = send_now(engine, api, &OutboundSettings::default(), &call, now).await?;
    tracing::info!(%tenant, customer = %asked.customer, staff = %asked.staff, answered,
        "welcome message sent");
    Ok(Greeted::Sent(answered))
}
