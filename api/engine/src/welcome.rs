//! Welcome messages (欢迎语): what a customer who has just added a guide is sent in the
//! guide's name, through WeCom's `send_welcome_msg` and the welcome code of the friend-add
//! notice (docs/adr/0020-welcome-and-channel-codes.md).
//!
//! The tenant has one welcome (state `""`) and each channel code may have its own (its
//! state): a friend-add through a channel code gets the code's welcome, any other the
//! tenant's. WeCom accepts a code once and for 20 seconds only, so the call is not left
//! to the outbox's tick: whoever writes the call's row sends it at once ([`claim`]).

use chrono::{DateTime, Duration, Utc};
use domain::values::TenantId;
use projections::on_pool;
use serde_json::{json, Value};

use crate::db::Database;
use crate::outbox::{self, Call};

/// The API's path after `/cgi-bin/`.
pub const SEND_WELCOME: &str = "externalcontact/send_welcome_msg";

/// The state of the tenant's own welcome.
pub const TENANT: &str = "";

/// A coupon the welcome comes with: issued to the customer once WeCom accepted the
/// welcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeCoupon {
    pub campaign: String,
    pub value_fen: i64,
    pub valid_days: i32,
}

/// What a welcome says.
#[derive(Debug, Clone, PartialEq)]
pub struct WelcomeMessage {
    /// [`TENANT`] or a channel code's state.
    pub state: String,
    pub text: String,
    /// WeCom-shaped attachments (image, link, mini-program card).
    pub attachments: Vec<Value>,
    pub coupon: Option<WelcomeCoupon>,
    pub updated_at: DateTime<Utc>,
}

impl WelcomeMessage {
    /// `send_welcome_msg`'s body for `code`. Pure.
    pub fn request(&self, code: &str) -> Value {
        let mut body = json!({ "welcome_code": code, "text": { "content": self.text } });
        if !self.attachments.is_empty() {
            body["attachments"] = Value::Array(self.attachments.clone());
        }
        body
    }
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i32>,
    DateTime<Utc>,
);

fn from_row((state, text, attachments, campaign, value, days, updated_at): Row) -> WelcomeMessage {
    let coupon = match (campaign, value, days) {
        (Some(campaign), Some(value_fen), Some(valid_days)) => Some(WelcomeCoupon {
            campaign,
            value_fen,
            valid_days,
        }),
        _ => None,
    };
    WelcomeMessage {
        state,
        text,
        attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        coupon,
        updated_at,
    }
}

const COLUMNS: &str = "state, text, attachments, coupon_campaign, coupon_value_fen, \
    CAST(coupon_valid_days AS INTEGER), updated_at";

/// Sets the welcome of `message.state` (the tenant's or a channel code's).
pub async fn set(
    db: &Database,
    tenant: &TenantId,
    message: &WelcomeMessage,
) -> Result<(), sqlx::Error> {
    let coupon = message.coupon.as_ref();
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO welcome_messages (tenant_id, state, text, attachments, coupon_campaign, \
             coupon_value_fen, coupon_valid_days, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant_id, state) DO UPDATE SET text = excluded.text, \
             attachments = excluded.attachments, coupon_campaign = excluded.coupon_campaign, \
             coupon_value_fen = excluded.coupon_value_fen, \
             coupon_valid_days = excluded.coupon_valid_days, updated_at = excluded.updated_at",
        )
        .bind(tenant.as_str())
        .bind(&message.state)
        .bind(&message.text)
        .bind(Value::Array(message.attachments.clone()).to_string())
        .bind(coupon.map(|c| c.campaign.as_str()))
        .bind(coupon.map(|c| c.value_fen))
        .bind(coupon.map(|c| c.valid_days))
        .bind(message.updated_at)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// Removes the welcome of `state`: friend-adds through it get the tenant's, or none.
pub async fn clear(db: &Database, tenant: &TenantId, state: &str) -> Result<bool, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query("DELETE FROM welcome_messages WHERE tenant_id = $1 AND state = $2")
            .bind(tenant.as_str())
            .bind(state)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() > 0)
    })
}

/// The welcome a friend-add through channel `state` gets: the channel's own, else the
/// tenant's, else none.
pub async fn for_add(
    db: &Database,
    tenant: &TenantId,
    state: Option<&str>,
) -> Result<Option<WelcomeMessage>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM welcome_messages WHERE tenant_id = $1 AND state IN ($2, '') \
         ORDER BY state DESC LIMIT 1"
    );
    let row: Option<Row> = on_pool!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(state.unwrap_or(TENANT))
            .fetch_optional(pool)
            .await
    })?;
    Ok(row.map(from_row))
}

/// The welcome of exactly `state`.
pub async fn get(
    db: &Database,
    tenant: &TenantId,
    state: &str,
) -> Result<Option<WelcomeMessage>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM welcome_messages WHERE tenant_id = $1 AND state = $2");
    let row: Option<Row> = on_pool!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(state)
            .fetch_optional(pool)
            .await
    })?;
    Ok(row.map(from_row))
}

/// One friend-add's welcome, as its notice asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeAsked {
    pub tenant: TenantId,
    pub customer: String,
    pub staff: String,
    /// The channel code's state the add carried.
    pub state: Option<String>,
    /// WeCom's welcome code.
    pub code: String,
    /// When WeCom sent the notice: the code's 20 seconds run from about then.
    pub notice_at: DateTime<Utc>,
}

/// The call for `asked`'s welcome: one per welcome code.
pub fn call(asked: &WelcomeAsked, message: &WelcomeMessage) -> Call {
    Call {
        tenant: asked.tenant.clone(),
        call_id: outbox::call_id(&["welcome", asked.tenant.as_str(), &asked.code]),
        api: SEND_WELCOME.to_string(),
        subject: Some(asked.customer.clone()),
        request: message.request(&asked.code),
    }
}

/// Writes the welcome's call and its row in one transaction, claimed by the caller
/// (`sending`, left alone by the outbox's tick for `hold`). `None` when the code's
/// call exists already: another delivery of the notice, or another server, has it.
pub async fn claim(
    db: &Database,
    asked: &WelcomeAsked,
    message: &WelcomeMessage,
    now: DateTime<Utc>,
    hold: Duration,
) -> Result<Option<Call>, sqlx::Error> {
    let call = call(asked, message);
    let coupon = message.coupon.as_ref();
    macro_rules! run {
        ($pool:ident, $claim:path) => {{
            let mut tx = $pool.begin().await?;
            if !$claim(&mut tx, &call, now, now + hold).await? {
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO welcome_sends (tenant_id, call_id, customer_id, staff_id, state, \
                 coupon_campaign, coupon_value_fen, coupon_valid_days, outcome, notice_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'SENDING', $9, $10)",
            )
            .bind(asked.tenant.as_str())
            .bind(&call.call_id)
            .bind(&asked.customer)
            .bind(&asked.staff)
            .bind(asked.state.as_deref())
            .bind(coupon.map(|c| c.campaign.as_str()))
            .bind(coupon.map(|c| c.value_fen))
            .bind(coupon.map(|c| c.valid_days))
            .bind(asked.notice_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }};
    }
    match db {
        Database::Postgres(pool) => run!(pool, outbox::claim_pg),
        Database::Sqlite(pool) => run!(pool, outbox::claim_sqlite),
    }
    Ok(Some(call))
}

/// A welcome's row: whom it was for and what comes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeSend {
    pub customer: String,
    pub staff: String,
    pub state: Option<String>,
    pub coupon: Option<WelcomeCoupon>,
    pub outcome: String,
    pub notice_at: DateTime<Utc>,
}

type SendRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i32>,
    String,
    DateTime<Utc>,
);

/// The row of the welcome sent in call `call_id`.
pub async fn sent_in(
    db: &Database,
    tenant: &str,
    call_id: &str,
) -> Result<Option<WelcomeSend>, sqlx::Error> {
    let row: Option<SendRow> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT customer_id, staff_id, state, coupon_campaign, coupon_value_fen, \
             CAST(coupon_valid_days AS INTEGER), outcome, notice_at FROM welcome_sends \
             WHERE tenant_id = $1 AND call_id = $2",
        )
        .bind(tenant)
        .bind(call_id)
        .fetch_optional(pool)
        .await
    })?;
    Ok(row.map(
        |(customer, staff, state, campaign, value, days, outcome, notice_at)| WelcomeSend {
            customer,
            staff,
            state,
            coupon: match (campaign, value, days) {
                (Some(campaign), Some(value_fen), Some(valid_days)) => Some(WelcomeCoupon {
                    campaign,
                    value_fen,
                    valid_days,
                }),
                _ => None,
            },
            outcome,
            notice_at,
        },
    ))
}

/// Records how the welcome of call `call_id` ended: `SENT`, `WECOM_<errcode>` or
/// `NO_ANSWER`.
pub async fn conclude(
    db: &Database,
    tenant: &str,
    call_id: &str,
    outcome: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE welcome_sends SET outcome = $3, updated_at = $4 \
             WHERE tenant_id = $1 AND call_id = $2",
        )
        .bind(tenant)
        .bind(call_id)
        .bind(outcome)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(code: &str) -> WelcomeAsked {
        WelcomeAsked {
            tenant: TenantId::parse("t1").unwrap(),
            customer: "wm1".into(),
            staff: "zhangsan".into(),
            state: None,
            code: code.into(),
            notice_at: DateTime::from_timestamp(0, 0).unwrap(),
        }
    }

    fn message(attachments: Vec<Value>) -> WelcomeMessage {
        WelcomeMessage {
            state: TENANT.into(),
            text: "欢迎光临".into(),
            attachments,
            coupon: None,
            updated_at: DateTime::from_timestamp(0, 0).unwrap(),
        }
    }

    #[test]
    fn one_welcome_code_is_one_call_and_the_body_is_wecoms() {
        let m = message(vec![]);
        assert_eq!(
            call(&asked("C1"), &m).call_id,
            call(&asked("C1"), &m).call_id
        );
        assert_ne!(
            call(&asked("C1"), &m).call_id,
            call(&asked("C2"), &m).call_id
        );
        assert_eq!(
            m.request("C1"),
            json!({ "welcome_code": "C1", "text": { "content": "欢迎光临" } })
        );
        let link = json!({ "msgtype": "link", "link": { "title": "t", "url": "https://x" } });
        let with = message(vec![link.clone()]).request("C1");
        assert_eq!(with["attachments"], json!([link]));
    }
}
