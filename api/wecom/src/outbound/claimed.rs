//! Calls sent the moment they are written, by whoever wrote them (`outbox::claim_*`):
//! a welcome message, whose code WeCom honours once and for 20 seconds, and a channel
//! code, whose QR image an operator is waiting for. The tick leaves a claimed call
//! alone for the hold; after that it is an ordinary call whose answer was lost.

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use domain::customer::CustomerCommand;
use domain::stamp::{stream_id, Stamped};
use domain::values::{CampaignId, CouponId, Money, StaffId, TenantId};
use engine::app::Engine;
use engine::channel_codes;
use engine::commands::{Actor, CommandError, CommandMeta};
use engine::outbox::{self, Call, CallStatus, DueCall};
use engine::welcome::{self, WelcomeSend};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{send_as_is, send_one, OutboundError, OutboundSettings, Sent};
use crate::client::{ClientError, TenantApi, WecomApi};

/// How long a claimed call is left to its writer before the tick takes it as lost.
pub const HOLD: chrono::Duration = chrono::Duration::minutes(5);

/// The tries a welcome gets, and how long after the first the last may start: inside
/// WeCom's 20 seconds, with room for the answer.
const WELCOME_TRIES: u32 = 3;
const WELCOME_WINDOW: StdDuration = StdDuration::from_secs(15);

/// Sends `call`, just claimed, once now. `true` when WeCom answered (the answer is
/// applied and kept); otherwise the call waits for the tick like any other.
pub async fn send_now(
    engine: &Engine,
    api: &WecomApi,
    settings: &OutboundSettings,
    call: &Call,
    now: DateTime<Utc>,
) -> Result<bool, OutboundError> {
    let due = DueCall {
        tenant: call.tenant.to_string(),
        call_id: call.call_id.clone(),
        api: call.api.clone(),
        subject: call.subject.clone(),
        request: call.request.clone(),
        // Claimed `sending` so the tick keeps off; this is its first attempt.
        status: CallStatus::Pending,
        attempts: 0,
    };
    send_one(engine, api, settings, &due, now).await
}

/// A welcome: tried again at once while WeCom is busy or silent, inside the window. A
/// code WeCom honours once cannot be sent twice, so trying again is safe.
pub(super) async fn send_welcome(
    wecom: &TenantApi<'_>,
    db: &engine::db::Database,
    call: &DueCall,
    now: DateTime<Utc>,
) -> Result<Sent, OutboundError> {
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        match send_as_is(wecom, db, call, now).await? {
            Sent::Later(error) => {
                let delay = StdDuration::from_secs(1 << (tries - 1));
                if tries >= WELCOME_TRIES || started.elapsed() + delay > WELCOME_WINDOW {
                    return Ok(Sent::GiveUp(format!("NO_ANSWER: {error}")));
                }
                tracing::info!(call = %call.call_id, %error, tries, "a welcome is tried again");
                tokio::time::sleep(delay).await;
            }
            answered => return Ok(answered),
        }
    }
}

/// WeCom accepted the welcome: the customer's stream records it, and the welcome's
/// coupon, if it has one, is issued. Refused: the row says why.
pub(super) async fn apply_welcome(
    engine: &Engine,
    tenant: &TenantId,
    call: &DueCall,
    answer: &Value,
    now: DateTime<Utc>,
) -> Result<(), OutboundError> {
    let db = &engine.db;
    let Some(sent) = welcome::sent_in(db, tenant.as_str(), &call.call_id).await? else {
        return Ok(());
    };
    let errcode = answer["errcode"].as_i64().unwrap_or(0);
    if errcode != 0 {
        let outcome = format!("WECOM_{errcode}");
        welcome::conclude(db, tenant.as_str(), &call.call_id, &outcome, now).await?;
        return Ok(());
    }
    let outcome = match record_welcome(engine, tenant, &call.call_id, &sent, now).await? {
        Ok(()) => "SENT".to_string(),
        // WeCom sent it; the log could not take it (the relation ended meanwhile).
        Err(code) => format!("SENT_NOT_RECORDED {code}"),
    };
    welcome::conclude(db, tenant.as_str(), &call.call_id, &outcome, now).await?;
    Ok(())
}

/// The commands an accepted welcome makes, keyed by its call. `Err` carries the
/// domain's code when it refused them.
async fn record_welcome(
    engine: &Engine,
    tenant: &TenantId,
    call_id: &str,
    sent: &WelcomeSend,
    now: DateTime<Utc>,
) -> Result<Result<(), String>, OutboundError> {
    let Ok(sender) = StaffId::parse(sent.staff.as_str()) else {
        return Ok(Err("INVALID_STAFF".into()));
    };
    let mut commands = vec![(
        format!("welcome:{call_id}"),
        CustomerCommand::RecordWelcome {
            sender: sender.clone(),
            channel: sent.state.clone(),
        },
    )];
    if let Some(coupon) = &sent.coupon {
        let (Ok(campaign), Ok(value)) = (
            CampaignId::parse(coupon.campaign.as_str()),
            Money::from_fen(coupon.value_fen),
        ) else {
            return Ok(Err("INVALID_COUPON".into()));
        };
        let id = format!("welcome-{}", &call_id.replace('-', "")[..20]);
        commands.push((
            format!("welcome-coupon:{call_id}"),
            CustomerCommand::IssueCoupon {
                coupon: CouponId::parse(id).map_err(|e| OutboundError::Command(e.to_string()))?,
                campaign,
                value,
                expires_at: now + chrono::Duration::days(i64::from(coupon.valid_days)),
                staff: Some(sender),
            },
        ));
    }
    let stream = stream_id(tenant, &sent.customer);
    for (key, command) in commands {
        let meta = CommandMeta::new(
            tenant.clone(),
            Actor::integration("wecom"),
            Uuid::new_v5(&Uuid::NAMESPACE_OID, call_id.as_bytes()),
        )
        .with_idempotency_key(key);
        match engine
            .customers
            .execute(&stream, Stamped::new(now, command), &meta)
            .await
        {
            Ok(_) => {}
            Err(CommandError::Rejected(e)) => return Ok(Err(e.code().to_string())),
            Err(e) => return Err(OutboundError::Command(e.to_string())),
        }
    }
    Ok(Ok(()))
}

/// A channel code's creation. One whose answer was lost is looked for among the codes
/// WeCom made in the last week, by its state, before it is asked for again: a second
/// code would be a second QR image for one channel.
pub(super) async fn send_contact_way(
    wecom: &TenantApi<'_>,
    db: &engine::db::Database,
    call: &DueCall,
    now: DateTime<Utc>,
) -> Result<Sent, OutboundError> {
    if call.status == CallStatus::Sending {
        let state = call.request["state"].as_str().unwrap_or_default();
        match made_before(wecom, state, now).await {
            Ok(Some(found)) => {
                outbox::sending(db, call, now).await?;
                return Ok(Sent::Answer(json!({ "errcode": 0, "errmsg": "ok",
                    "config_id": found.config_id, "qr_code": found.qr_code,
                    "found_again": true })));
            }
            Ok(None) => {}
            Err(e) => return Ok(Sent::Later(e)),
        }
    }
    send_as_is(wecom, db, call, now).await
}

async fn made_before(
    wecom: &TenantApi<'_>,
    state: &str,
    now: DateTime<Utc>,
) -> Result<Option<crate::client::contact_way::ContactWay>, ClientError> {
    let start = (now - chrono::Duration::days(7)).timestamp();
    for id in wecom.contact_way_ids(start, now.timestamp()).await? {
        let way = wecom.contact_way(&id).await?;
        if way.state == state {
            return Ok(Some(way));
        }
    }
    Ok(None)
}

/// A call given up without an answer: a welcome's row and a channel code say so.
pub(super) async fn gave_up(
    db: &engine::db::Database,
    call: &DueCall,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), OutboundError> {
    match call.api.as_str() {
        welcome::SEND_WELCOME => {
            welcome::conclude(db, &call.tenant, &call.call_id, "NO_ANSWER", now).await?;
        }
        channel_codes::ADD_CONTACT_WAY | channel_codes::DEL_CONTACT_WAY => {
            if let Some(state) = channel_codes::state_of(call.subject.as_deref()) {
                channel_codes::gave_up(db, &call.tenant, state, &call.api, error, now).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// WeCom's answer to a channel code's call, on the code's row.
pub(super) async fn apply_contact_way(
    db: &engine::db::Database,
    call: &DueCall,
    answer: &Value,
    now: DateTime<Utc>,
) -> Result<(), OutboundError> {
    if let Some(state) = channel_codes::state_of(call.subject.as_deref()) {
        channel_codes::apply(db, &call.tenant, state, &call.api, answer, now).await?;
    }
    Ok(())
}
