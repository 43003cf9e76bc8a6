//! What a campaign brought back, as operations and analysts read it.

use async_graphql::{Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use engine::campaign::{CampaignInput, KindInput};
use engine::reads::{CampaignArmRecord, JobRecord};

use super::{int, Job, JobStatus};
use crate::ids;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum CampaignChannel {
    MassMessage,
    Moment,
}

fn channel(kind: &KindInput) -> CampaignChannel {
    match kind {
        KindInput::MassMessage => CampaignChannel::MassMessage,
        KindInput::Moment => CampaignChannel::Moment,
    }
}

/// A campaign as the list of them shows it: what to pick one by before asking for its
/// results.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub job: JobRecord,
    pub input: CampaignInput,
}

#[Object]
impl Campaign {
    /// The campaign's job id: what `campaignResults(id:)` and `job(id:)` take.
    async fn id(&self) -> ID {
        ids::encode("Job", &self.job.job_id)
    }
    async fn channel(&self) -> CampaignChannel {
        channel(&self.input.kind)
    }
    /// What the guides send: campaigns have no name of their own.
    async fn text(&self) -> &str {
        &self.input.text
    }
    async fn status(&self) -> JobStatus {
        JobStatus::of(&self.job.status)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.job.created_at
    }
    async fn send_at(&self) -> DateTime<Utc> {
        self.input.send_at
    }
    async fn coupon_campaign_id(&self) -> Option<&str> {
        self.input.coupon_campaign.as_deref()
    }
    /// Its share held out, in thousandths.
    async fn holdout_per_mille(&self) -> i32 {
        i32::from(self.input.holdout_per_mille)
    }
}

/// One arm of a campaign and what its customers did in the window after it.
#[derive(Debug, Clone, Default, PartialEq, SimpleObject)]
pub struct CampaignArm {
    pub customers: i32,
    /// Customers with at least one order in the window.
    pub buyers: i32,
    pub orders: i32,
    /// What those orders came to, in fen.
    pub amount_fen: String,
    /// Customers who redeemed a coupon of the campaign's coupon campaign in the window.
    pub coupon_redeemers: i32,
    /// Buyers per customer (0 without customers).
    pub conversion_rate: f64,
    /// Redeemers per customer (0 without customers).
    pub redemption_rate: f64,
}

fn rate(n: i64, of: i64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

impl From<&CampaignArmRecord> for CampaignArm {
    fn from(r: &CampaignArmRecord) -> Self {
        Self {
            customers: int(r.customers),
            buyers: int(r.buyers),
            orders: int(r.orders),
            amount_fen: r.amount_fen.to_string(),
            coupon_redeemers: int(r.redeemers),
            conversion_rate: rate(r.buyers, r.customers),
            redemption_rate: rate(r.redeemers, r.customers),
        }
    }
}

/// A campaign's results: who it reached, whom it held out, and the difference.
#[derive(Debug, Clone)]
pub struct CampaignResults {
    pub job: JobRecord,
    pub input: CampaignInput,
    pub window_days: i32,
    pub reached: CampaignArm,
    pub held_out: Option<CampaignArm>,
}

impl CampaignResults {
    pub fn new(
        job: JobRecord,
        input: CampaignInput,
        window_days: i32,
        arms: &[CampaignArmRecord],
    ) -> Self {
        let arm = |name: &str| arms.iter().find(|a| a.arm == name).map(CampaignArm::from);
        Self {
            reached: arm(projections::campaigns::REACHED).unwrap_or_default(),
            held_out: arm(projections::campaigns::HELD_OUT),
            job,
            input,
            window_days,
        }
    }
}

#[Object]
impl CampaignResults {
    /// The campaign's job: its status, and each customer's outcome counted by code
    /// (`DELIVERED`, `HELD_OUT`, `REACHED_TODAY`, `NOT_FRIEND`, ...).
    async fn job(&self) -> Job {
        Job(self.job.clone())
    }

    async fn channel(&self) -> CampaignChannel {
        channel(&self.input.kind)
    }

    /// What operations named it; null for a campaign started without a name.
    async fn name(&self) -> Option<&str> {
        self.input.name.as_deref()
    }

    async fn text(&self) -> &str {
        &self.input.text
    }

    async fn coupon_campaign_id(&self) -> Option<&str> {
        self.input.coupon_campaign.as_deref()
    }

    /// Days after each customer was reached (or held out) that count.
    async fn window_days(&self) -> i32 {
        self.window_days
    }

    /// The customers the campaign reached (a delivery WeCom reported).
    async fn reached(&self) -> &CampaignArm {
        &self.reached
    }

    /// The customers kept back to compare with; null without a holdout.
    async fn held_out(&self) -> Option<&CampaignArm> {
        self.held_out.as_ref()
    }

    /// The reached arm's conversion rate less the held-out arm's: what the campaign
    /// added; null without a holdout.
    async fn conversion_uplift(&self) -> Option<f64> {
        let held = self.held_out.as_ref()?;
        Some(self.reached.conversion_rate - held.conversion_rate)
    }

    /// The same for coupon redemptions.
    async fn redemption_uplift(&self) -> Option<f64> {
        let held = self.held_out.as_ref()?;
        Some(self.reached.redemption_rate - held.redemption_rate)
    }
}
