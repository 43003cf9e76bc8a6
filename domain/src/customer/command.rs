//! What may be asked of a customer's stream. Facts that live in other aggregates
//! (a tag's state, the departed staff's leaving date, the successor's load, the
//! tenant's time zone) are looked up by the caller and carried in the command.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::{AddWay, HandoverKind, RefusalReason, RemovedBy};
use crate::values::{
    CampaignId, CouponId, GroupId, MessageId, Money, OrderId, StaffId, StoreId, TagId,
};

/// The state of a tag in the tenant's library, as the caller found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TagState {
    Active,
    Deleted,
    Unknown,
}

/// Who or what concluded a handover as accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AcceptTrigger {
    /// WeCom reported the transfer as accepted (status 1).
    Reported,
    /// The 24-hour window passed without a refusal: the auto-accept job.
    WindowElapsed,
}

/// Who the customer is, as WeCom's `external_contact` describes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    /// 0 unknown, 1 male, 2 female.
    pub gender: Option<u8>,
    pub avatar: Option<String>,
}

/// One relation as WeCom had it before the engine ran (the first import, issue 16):
/// everything the engine lacks of it is brought in at once, stamped with the
/// relation's own `createtime`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedRelation {
    pub staff: StaffId,
    pub add_way: AddWay,
    pub channel_state: Option<String>,
    pub profile: Option<Profile>,
    pub remark: String,
    pub description: String,
    /// Enterprise tags the library holds as active (the caller looked them up).
    pub tags: Vec<TagId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomerCommand {
    AddFriend {
        staff: StaffId,
        add_way: AddWay,
        channel_state: Option<String>,
    },
    RemoveFriend {
        staff: StaffId,
        by: RemovedBy,
    },
    /// Brings in a relation that existed in WeCom before the engine: only what the
    /// stream lacks, never a rejection for what it already has.
    ImportRelation(ImportedRelation),
    UpdateProfile {
        name: String,
        phone: Option<String>,
    },
    Tag {
        staff: StaffId,
        tag: TagId,
        tag_state: TagState,
    },
    Untag {
        staff: StaffId,
        tag: TagId,
    },
    ChangeRemark {
        staff: StaffId,
        remark: String,
        description: String,
    },
    IssueCoupon {
        coupon: CouponId,
        campaign: CampaignId,
        value: Money,
        expires_at: DateTime<Utc>,
        staff: Option<StaffId>,
    },
    RedeemCoupon {
        coupon: CouponId,
        order: Option<OrderId>,
    },
    ExpireCoupon {
        coupon: CouponId,
    },
    RecordGroupJoin {
        group: GroupId,
        join_scene: u8,
    },
    RecordGroupLeave {
        group: GroupId,
        quit_scene: u8,
    },
    RecordPurchase {
        order: OrderId,
        amount: Money,
        store: StoreId,
        staff: Option<StaffId>,
    },
    DeliverMassMessage {
        message: MessageId,
        sender: StaffId,
        time_zone: Tz,
    },
    DeliverMoment {
        moment: MessageId,
        sender: StaffId,
        time_zone: Tz,
    },
    /// Keeps the customer out of a campaign's sends, to measure its uplift.
    HoldOutOfCampaign {
        campaign: MessageId,
    },
    /// Records WeCom's acceptance of a welcome message sent in `sender`'s name.
    RecordWelcome {
        sender: StaffId,
        channel: Option<String>,
    },
    RequestHandover {
        handover: Uuid,
        from: StaffId,
        to: StaffId,
        kind: HandoverKind,
        /// When `from` left the company, if they did (from the Staff aggregate).
        from_departed_at: Option<DateTime<Utc>>,
        /// Whether `to` already serves as many customers as their limit allows.
        successor_at_limit: bool,
    },
    AcceptHandover {
        handover: Uuid,
        trigger: AcceptTrigger,
    },
    RefuseHandover {
        handover: Uuid,
        reason: RefusalReason,
    },
    /// Erases the customer's personal data (PIPL), once; the caller destroys their key.
    Erase {
        reason: String,
    },
}
