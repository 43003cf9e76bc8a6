//! Channel codes (渠道活码) and welcome messages (欢迎语) as operations read them.

use async_graphql::{Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use engine::channel_codes::{status, ChannelCode as Record};
use engine::reads::WelcomeRecord;

use crate::ids;

/// Where a channel code stands in WeCom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ChannelCodeStatus {
    /// Asked of WeCom, not answered yet (tried again until it is).
    Creating,
    /// WeCom made it: its QR image adds customers through it.
    Active,
    /// WeCom refused to make it; `error` says why.
    Refused,
    /// WeCom never answered, after every attempt.
    NoAnswer,
    /// Being deleted in WeCom.
    Disabling,
    /// Deleted in WeCom: its QR image no longer works; customers it brought keep it.
    Disabled,
}

impl ChannelCodeStatus {
    fn parse(s: &str) -> Self {
        match s {
            status::ACTIVE => Self::Active,
            status::REFUSED => Self::Refused,
            status::NO_ANSWER => Self::NoAnswer,
            status::DISABLING => Self::Disabling,
            status::DISABLED => Self::Disabled,
            _ => Self::Creating,
        }
    }
}

/// A 「联系我」 QR code made through WeCom, whose friend-adds are attributed to it.
#[derive(Debug, Clone)]
pub struct ChannelCode(pub Record);

#[Object]
impl ChannelCode {
    async fn id(&self) -> ID {
        ids::encode("ChannelCode", &self.0.state)
    }

    /// What a friend-add through the code carries (WeCom's `state`).
    async fn state(&self) -> &str {
        &self.0.state
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The guides who answer it (WeCom userids).
    async fn staff_ids(&self) -> Vec<String> {
        self.0.staff()
    }

    /// Customers are added without the guide confirming.
    async fn skip_verify(&self) -> bool {
        self.0.skip_verify
    }

    async fn status(&self) -> ChannelCodeStatus {
        ChannelCodeStatus::parse(&self.0.status)
    }

    /// WeCom's id for it.
    async fn config_id(&self) -> Option<&str> {
        self.0.config_id.as_deref()
    }

    /// The QR image to print or send, as WeCom serves it.
    async fn qr_code_url(&self) -> Option<&str> {
        self.0.qr_code.as_deref()
    }

    /// Why WeCom refused it, or did not answer.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.0.disabled_at
    }
}

/// The coupon a welcome comes with.
#[derive(Debug, Clone, SimpleObject)]
pub struct WelcomeCoupon {
    pub campaign_id: String,
    pub value_yuan: f64,
    pub valid_days: i32,
}

/// What a customer who has just added a guide is sent in the guide's name.
#[derive(Debug, Clone)]
pub struct WelcomeMessage(pub WelcomeRecord);

#[Object]
impl WelcomeMessage {
    /// The channel code's state, or null for the tenant's own.
    async fn channel_state(&self) -> Option<&str> {
        Some(self.0.state.as_str()).filter(|s| !s.is_empty())
    }

    async fn text(&self) -> &str {
        &self.0.text
    }

    /// The attachments as WeCom takes them (JSON).
    async fn attachments(&self) -> &str {
        &self.0.attachments
    }

    /// Issued to the customer once WeCom accepted the welcome.
    async fn coupon(&self) -> Option<WelcomeCoupon> {
        let r = &self.0;
        Some(WelcomeCoupon {
            campaign_id: r.coupon_campaign.clone()?,
            value_yuan: r.coupon_value_fen? as f64 / 100.0,
            valid_days: super::int(r.coupon_valid_days?),
        })
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
