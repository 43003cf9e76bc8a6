//! Channel codes and welcome messages as operations read them, and the names that
//! attribute a friend-add's `state` to its channel.

use std::collections::HashMap;

use crate::channel_codes::{ChannelCode, COLUMNS};

use super::sql::fetch_all;
use super::{scoped, Arg, ReadError, Reads, Sql};

/// A welcome as the API shows it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WelcomeRecord {
    pub state: String,
    pub text: String,
    pub attachments: String,
    pub coupon_campaign: Option<String>,
    pub coupon_value_fen: Option<i64>,
    pub coupon_valid_days: Option<i64>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct NameRow {
    state: String,
    name: String,
}

impl Reads {
    /// The tenant's channel codes, newest first by state after `after`; disabled ones
    /// only when asked.
    pub async fn channel_codes(
        &self,
        include_disabled: bool,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<ChannelCode>, ReadError> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM channel_codes WHERE tenant_id = "
        ));
        sql.bind(Arg::Text(self.tenant.to_string()));
        if !include_disabled {
            sql.push(" AND status <> 'DISABLED'");
        }
        if let Some(after) = after {
            sql.push(" AND state > ").bind(Arg::Text(after));
        }
        sql.push(" ORDER BY state LIMIT ").bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            ChannelCode,
            &mut *conn
        )))
    }

    /// The channel code of `state`, disabled or not.
    pub async fn channel_code(&self, state: &str) -> Result<Option<ChannelCode>, ReadError> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM channel_codes WHERE tenant_id = "
        ));
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND state = ")
            .bind(Arg::Text(state.to_string()));
        let rows = scoped!(self, |conn| fetch_all!(sql, ChannelCode, &mut *conn));
        Ok(rows.into_iter().next())
    }

    /// The names of the channel codes among `states` (a friend-add's `state` that no
    /// code of ours made has none).
    pub async fn channel_names(
        &self,
        states: &[String],
    ) -> Result<HashMap<String, String>, ReadError> {
        if states.is_empty() {
            return Ok(HashMap::new());
        }
        let mut sql = Sql::new("SELECT state, name FROM channel_codes WHERE tenant_id = ");
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND state IN (");
        for (i, state) in states.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(Arg::Text(state.clone()));
        }
        sql.push(")");
        let rows = scoped!(self, |conn| fetch_all!(sql, NameRow, &mut *conn));
        Ok(rows.into_iter().map(|r| (r.state, r.name)).collect())
    }

    /// The welcome of `state` (`""`: the tenant's).
    pub async fn welcome_message(&self, state: &str) -> Result<Option<WelcomeRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT state, text, attachments, coupon_campaign, coupon_value_fen, \
             CAST(coupon_valid_days AS BIGINT) AS coupon_valid_days, updated_at \
             FROM welcome_messages WHERE tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND state = ")
            .bind(Arg::Text(state.to_string()));
        let rows = scoped!(self, |conn| fetch_all!(sql, WelcomeRecord, &mut *conn));
        Ok(rows.into_iter().next())
    }
}
