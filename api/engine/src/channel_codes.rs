//! Channel codes (渠道活码): 「联系我」 QR codes made through WeCom's `add_contact_way`, each
//! with a `state` that every friend-add through it carries, so the customer is
//! attributed to the channel (docs/adr/0020-welcome-and-channel-codes.md). A code
//! exists when WeCom answered with its id and QR image; disabling it deletes it in
//! WeCom (`del_contact_way`: its QR image stops working) and keeps its row, so
//! customers added through it stay attributed by name.

use chrono::{DateTime, Duration, Utc};
use domain::values::TenantId;
use projections::on_pool;
use serde_json::{json, Value};

use crate::db::Database;
use crate::outbox::{self, Call};

/// The API's paths after `/cgi-bin/`.
pub const ADD_CONTACT_WAY: &str = "externalcontact/add_contact_way";
pub const DEL_CONTACT_WAY: &str = "externalcontact/del_contact_way";

/// WeCom's limit on a `state`.
pub const MAX_STATE_CHARS: usize = 30;
/// WeCom's limit on the guides of one multi-person code.
pub const MAX_STAFF: usize = 100;
/// What operations call it (WeCom's `remark` takes 30 characters).
pub const MAX_NAME_CHARS: usize = 30;

/// Where a code stands.
pub mod status {
    /// Asked of WeCom, not answered yet.
    pub const CREATING: &str = "CREATING";
    pub const ACTIVE: &str = "ACTIVE";
    /// WeCom would not make it; `error` says why.
    pub const REFUSED: &str = "REFUSED";
    /// WeCom never answered, after every attempt; `error` says what happened.
    pub const NO_ANSWER: &str = "NO_ANSWER";
    pub const DISABLING: &str = "DISABLING";
    pub const DISABLED: &str = "DISABLED";
}

/// The subject of a code's calls, for operations to find them.
pub fn subject(state: &str) -> String {
    format!("channel:{state}")
}

/// A code as operations ask for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChannelCode {
    pub state: String,
    pub name: String,
    pub staff_ids: Vec<String>,
    /// Customers are added without the guide confirming.
    pub skip_verify: bool,
}

/// What is wrong with a requested code, naming the field. Pure.
pub fn check(code: &NewChannelCode) -> Result<(), (&'static str, String)> {
    let state_ok = code
        .state
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if code.state.is_empty() || code.state.chars().count() > MAX_STATE_CHARS || !state_ok {
        return Err((
            "state",
            format!("1 to {MAX_STATE_CHARS} letters, digits, '-' or '_'"),
        ));
    }
    let name = code.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(("name", format!("1 to {MAX_NAME_CHARS} characters")));
    }
    if code.staff_ids.is_empty() || code.staff_ids.len() > MAX_STAFF {
        return Err(("staffIds", format!("1 to {MAX_STAFF} guides")));
    }
    Ok(())
}

/// `add_contact_way`'s body: a QR code (scene 2), for one guide (type 1) or several
/// (type 2, WeCom spreads the adds among them). Pure.
pub fn create_request(code: &NewChannelCode) -> Value {
    let kind = if code.staff_ids.len() == 1 { 1 } else { 2 };
    json!({
        "type": kind,
        "scene": 2,
        "remark": code.name.trim(),
        "skip_verify": code.skip_verify,
        "state": code.state,
        "user": code.staff_ids,
    })
}

/// A code as the engine keeps it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChannelCode {
    pub state: String,
    pub name: String,
    /// A JSON array of WeCom userids.
    pub staff_ids: String,
    pub skip_verify: bool,
    pub config_id: Option<String>,
    pub qr_code: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

impl ChannelCode {
    pub fn staff(&self) -> Vec<String> {
        serde_json::from_str(&self.staff_ids).unwrap_or_default()
    }
}

pub const COLUMNS: &str = "state, name, staff_ids, skip_verify, config_id, qr_code, status, \
    error, created_at, updated_at, disabled_at";

/// The code of `state`.
pub async fn get(
    db: &Database,
    tenant: &TenantId,
    state: &str,
) -> Result<Option<ChannelCode>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM channel_codes WHERE tenant_id = $1 AND state = $2");
    on_pool!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(state)
            .fetch_optional(pool)
            .await
    })
}

/// Writes the code (`CREATING`) and its `add_contact_way` call, claimed by the caller
/// to send now. `None` when the state is taken.
pub async fn create(
    db: &Database,
    tenant: &TenantId,
    code: &NewChannelCode,
    now: DateTime<Utc>,
    hold: Duration,
) -> Result<Option<Call>, sqlx::Error> {
    let call = Call {
        tenant: tenant.clone(),
        call_id: outbox::call_id(&["add_contact_way", tenant.as_str(), &code.state]),
        api: ADD_CONTACT_WAY.into(),
        subject: Some(subject(&code.state)),
        request: create_request(code),
    };
    let staff = Value::from(code.staff_ids.clone()).to_string();
    macro_rules! run {
        ($pool:ident, $claim:path) => {{
            let mut tx = $pool.begin().await?;
            let written = sqlx::query(
                "INSERT INTO channel_codes (tenant_id, state, name, staff_ids, skip_verify, \
                 status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(&code.state)
            .bind(code.name.trim())
            .bind(&staff)
            .bind(code.skip_verify)
            .bind(status::CREATING)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if written.rows_affected() == 0 {
                return Ok(None);
            }
            $claim(&mut tx, &call, now, now + hold).await?;
            tx.commit().await?;
        }};
    }
    match db {
        Database::Postgres(pool) => run!(pool, outbox::claim_pg),
        Database::Sqlite(pool) => run!(pool, outbox::claim_sqlite),
    }
    Ok(Some(call))
}

/// Marks an active code `DISABLING` and writes its `del_contact_way` call, claimed by
/// the caller. `None` when there is nothing to delete in WeCom (not active).
pub async fn disable(
    db: &Database,
    tenant: &TenantId,
    state: &str,
    now: DateTime<Utc>,
    hold: Duration,
) -> Result<Option<Call>, sqlx::Error> {
    let Some(code) = get(db, tenant, state).await? else {
        return Ok(None);
    };
    let (Some(config_id), status::ACTIVE) = (code.config_id, code.status.as_str()) else {
        return Ok(None);
    };
    let call = Call {
        tenant: tenant.clone(),
        call_id: outbox::call_id(&["del_contact_way", tenant.as_str(), state, &config_id]),
        api: DEL_CONTACT_WAY.into(),
        subject: Some(subject(state)),
        request: json!({ "config_id": config_id }),
    };
    macro_rules! run {
        ($pool:ident, $claim:path) => {{
            let mut tx = $pool.begin().await?;
            let moved = sqlx::query(
                "UPDATE channel_codes SET status = $3, error = NULL, updated_at = $4 \
                 WHERE tenant_id = $1 AND state = $2 AND status = $5",
            )
            .bind(tenant.as_str())
            .bind(state)
            .bind(status::DISABLING)
            .bind(now)
            .bind(status::ACTIVE)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() == 0 {
                return Ok(None);
            }
            $claim(&mut tx, &call, now, now + hold).await?;
            tx.commit().await?;
        }};
    }
    match db {
        Database::Postgres(pool) => run!(pool, outbox::claim_pg),
        Database::Sqlite(pool) => run!(pool, outbox::claim_sqlite),
    }
    Ok(Some(call))
}

/// What WeCom's answer to one of a code's calls does to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// `add_contact_way` made it.
    Created { config_id: String, qr_code: String },
    /// `del_contact_way` deleted it.
    Deleted,
    /// WeCom refused the call (`errcode` and message): a refused creation leaves the
    /// code `REFUSED`, a refused deletion leaves it `ACTIVE`.
    Refused(String),
}

/// Reads WeCom's answer to `api`. Pure.
pub fn answered(api: &str, answer: &Value) -> Answered {
    let errcode = answer["errcode"].as_i64().unwrap_or(0);
    if errcode != 0 {
        let message = answer["errmsg"].as_str().unwrap_or_default();
        return Answered::Refused(format!("WECOM_{errcode} {message}"));
    }
    if api == DEL_CONTACT_WAY {
        return Answered::Deleted;
    }
    match (answer["config_id"].as_str(), answer["qr_code"].as_str()) {
        (Some(config_id), Some(qr_code)) => Answered::Created {
            config_id: config_id.into(),
            qr_code: qr_code.into(),
        },
        _ => Answered::Refused("WECOM_ANSWER without config_id or qr_code".into()),
    }
}

/// Applies WeCom's answer to a call of the code `state`.
pub async fn apply(
    db: &Database,
    tenant: &str,
    state: &str,
    api: &str,
    answer: &Value,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (set, values): (&str, [Option<String>; 3]) = match answered(api, answer) {
        Answered::Created { config_id, qr_code } => (
            "status = $3, config_id = $4, qr_code = $5, error = NULL",
            [Some(status::ACTIVE.into()), Some(config_id), Some(qr_code)],
        ),
        Answered::Deleted => (
            "status = $3, disabled_at = $6, error = NULL",
            [Some(status::DISABLED.into()), None, None],
        ),
        Answered::Refused(error) => {
            let back = if api == DEL_CONTACT_WAY {
                status::ACTIVE
            } else {
                status::REFUSED
            };
            (
                "status = $3, error = $4",
                [Some(back.into()), Some(error), None],
            )
        }
    };
    let sql = format!(
        "UPDATE channel_codes SET {set}, updated_at = $6 WHERE tenant_id = $1 AND state = $2"
    );
    let [status, a, b] = values;
    on_pool!(db, |pool| {
        sqlx::query(&sql)
            .bind(tenant)
            .bind(state)
            .bind(status.as_deref())
            .bind(a.as_deref())
            .bind(b.as_deref())
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// No answer came to a code's call after every attempt: a creation ends `NO_ANSWER`, a
/// deletion leaves the code `ACTIVE`; `error` says what happened.
pub async fn gave_up(
    db: &Database,
    tenant: &str,
    state: &str,
    api: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let back = if api == DEL_CONTACT_WAY {
        status::ACTIVE
    } else {
        status::NO_ANSWER
    };
    on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE channel_codes SET status = $3, error = $4, updated_at = $5 \
             WHERE tenant_id = $1 AND state = $2",
        )
        .bind(tenant)
        .bind(state)
        .bind(back)
        .bind(error)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// The state a call about a code is for (its subject). Pure.
pub fn state_of(subject: Option<&str>) -> Option<&str> {
    subject?.strip_prefix("channel:")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(state: &str, staff: usize) -> NewChannelCode {
        NewChannelCode {
            state: state.into(),
            name: "南京西路店门口".into(),
            staff_ids: (0..staff).map(|i| format!("g{i}")).collect(),
            skip_verify: true,
        }
    }

    #[test]
    fn a_code_is_checked_against_wecoms_limits() {
        assert_eq!(check(&code("store-01", 1)), Ok(()));
        assert_eq!(check(&code("", 1)).unwrap_err().0, "state");
        assert_eq!(check(&code(&"s".repeat(31), 1)).unwrap_err().0, "state");
        assert_eq!(check(&code("门店", 1)).unwrap_err().0, "state");
        assert_eq!(check(&code("s", 0)).unwrap_err().0, "staffIds");
        assert_eq!(check(&code("s", 101)).unwrap_err().0, "staffIds");
        let mut unnamed = code("s", 1);
        unnamed.name = "  ".into();
        assert_eq!(check(&unnamed).unwrap_err().0, "name");
    }

    #[test]
    fn one_guide_makes_a_single_code_and_several_a_shared_one() {
        assert_eq!(create_request(&code("s", 1))["type"], 1);
        let shared = create_request(&code("s", 3));
        assert_eq!(shared["type"], 2);
        assert_eq!(shared["user"], json!(["g0", "g1", "g2"]));
        assert_eq!(shared["state"], "s");
        assert_eq!(shared["scene"], 2);
    }

    #[test]
    fn wecoms_answers_move_a_code() {
        let made =
            json!({ "errcode": 0, "errmsg": "ok", "config_id": "c1", "qr_code": "http://q" });
        assert_eq!(
            answered(ADD_CONTACT_WAY, &made),
            Answered::Created {
                config_id: "c1".into(),
                qr_code: "http://q".into()
            }
        );
        let ok = json!({ "errcode": 0, "errmsg": "ok" });
        assert_eq!(answered(DEL_CONTACT_WAY, &ok), Answered::Deleted);
        assert!(matches!(
            answered(ADD_CONTACT_WAY, &ok),
            Answered::Refused(_)
        ));
        let refused = json!({ "errcode": 40098, "errmsg": "not verified" });
        assert_eq!(
            answered(ADD_CONTACT_WAY, &refused),
            Answered::Refused("WECOM_40098 not verified".into())
        );
        assert_eq!(state_of(Some("channel:s1")), Some("s1"));
        assert_eq!(state_of(Some("woA")), None);
    }
}
