//! What happened to a customer. Published contract: variants are never renamed and
//! old payloads are upcast, never rewritten. Tenant, actor and request id travel in
//! the event metadata; the instant is in the payload because rules depend on it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{
    CampaignId, CouponId, GroupId, MessageId, Money, OrderId, StaffId, StoreId, TagId,
};

/// WeCom's `add_way` code (1 scan QR code, 2 phone search, 3 business card, 4 group chat,
/// 201 internal share, 202 admin assignment, ...). Kept as the number WeCom sends so no
/// new code is ever lost; [`AddWay::label`] names the known ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AddWay(pub u16);

impl AddWay {
    pub const UNKNOWN: AddWay = AddWay(0);
    pub const QR_CODE: AddWay = AddWay(1);
    pub const PHONE_SEARCH: AddWay = AddWay(2);
    pub const BUSINESS_CARD: AddWay = AddWay(3);
    pub const GROUP_CHAT: AddWay = AddWay(4);
    pub const ADMIN_ASSIGNED: AddWay = AddWay(202);

    pub fn label(self) -> &'static str {
        match self.0 {
            1 => "qr_code",
            2 => "phone_search",
            3 => "business_card",
            4 => "group_chat",
            5 => "phone_contacts",
            6 => "wechat_contacts",
            7 => "wechat_friend_request",
            8 => "third_party",
            9 => "email_search",
            10 => "video_channel",
            11 => "schedule",
            12 => "meeting",
            13 => "wechat_friend_card",
            14 => "smart_device",
            16 => "customer_service",
            201 => "internal_share",
            202 => "admin_assigned",
            _ => "unknown",
        }
    }
}

/// Who ended a staff-customer relation. `Transfer` is a handover, not churn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RemovedBy {
    Staff,
    Customer,
    Transfer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HandoverKind {
    /// 在职继承: the original guide is still with the company.
    OnJob,
    /// 离职继承: the original guide has left.
    Resigned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefusalReason {
    /// WeCom status 3.
    CustomerRefused,
    /// WeCom status 4.
    CustomerLimitExceeded,
    /// WeCom status 5: WeCom holds no transfer of this customer between these two.
    NoTransferRecord,
    /// WeCom refused to start the transfer of this customer (the per-customer
    /// `errcode` of a transfer call, e.g. 40096): nothing moved, the customer stays.
    Rejected { errcode: i64 },
}

impl RefusalReason {
    /// The reason as the reassignment view and the handover job show it.
    pub fn code(self) -> String {
        match self {
            Self::CustomerRefused => "refused_customer".into(),
            Self::CustomerLimitExceeded => "refused_limit".into(),
            Self::NoTransferRecord => "refused_no_record".into(),
            Self::Rejected { errcode } => format!("rejected_{errcode}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomerEvent {
    FriendAdded {
        staff: StaffId,
        add_way: AddWay,
        channel_state: Option<String>,
        at: DateTime<Utc>,
    },
    FriendRemoved {
        staff: StaffId,
        by: RemovedBy,
        at: DateTime<Utc>,
    },
    ProfileUpdated {
        name: String,
        phone: Option<String>,
        at: DateTime<Utc>,
        /// WeCom's `gender`: 0 unknown, 1 male, 2 female. Absent in events older than
        /// the first import (issue 16), and left out when unknown so their payloads and
        /// hashes stay as they were.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gender: Option<u8>,
        /// The WeChat avatar's URL, as WeCom gives it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        avatar: Option<String>,
    },
    Tagged {
        staff: StaffId,
        tag: TagId,
        at: DateTime<Utc>,
    },
    Untagged {
        staff: StaffId,
        tag: TagId,
        at: DateTime<Utc>,
    },
    RemarkChanged {
        staff: StaffId,
        remark: String,
        description: String,
        at: DateTime<Utc>,
    },
    CouponIssued {
        coupon: CouponId,
        campaign: CampaignId,
        value: Money,
        expires_at: DateTime<Utc>,
        staff: Option<StaffId>,
        at: DateTime<Utc>,
    },
    CouponRedeemed {
        coupon: CouponId,
        order: Option<OrderId>,
        at: DateTime<Utc>,
    },
    CouponExpired {
        coupon: CouponId,
        at: DateTime<Utc>,
    },
    JoinedGroup {
        group: GroupId,
        join_scene: u8,
        at: DateTime<Utc>,
    },
    LeftGroup {
        group: GroupId,
        quit_scene: u8,
        at: DateTime<Utc>,
    },
    PurchaseRecorded {
        order: OrderId,
        amount: Money,
        store: StoreId,
        staff: Option<StaffId>,
        at: DateTime<Utc>,
    },
    MassMessageDelivered {
        message: MessageId,
        sender: StaffId,
        at: DateTime<Utc>,
    },
    MomentDelivered {
        moment: MessageId,
        sender: StaffId,
        at: DateTime<Utc>,
    },
    /// The customer was in a campaign's audience and kept back, so what the campaign
    /// brought back can be told from what would have happened anyway.
    CampaignHeldOut {
        campaign: MessageId,
        at: DateTime<Utc>,
    },
    /// WeCom accepted the welcome message (`send_welcome_msg`) the engine sent in
    /// `sender`'s name when the customer added them, through the channel code `channel`
    /// when the add carried one.
    WelcomeMessageSent {
        sender: StaffId,
        channel: Option<String>,
        at: DateTime<Utc>,
    },
    HandoverRequested {
        handover: Uuid,
        from: StaffId,
        to: StaffId,
        kind: HandoverKind,
        at: DateTime<Utc>,
        /// With no refusal by then, the handover completes (WeCom's 24 h rule).
        auto_accept_at: DateTime<Utc>,
    },
    HandoverAccepted {
        handover: Uuid,
        from: StaffId,
        to: StaffId,
        at: DateTime<Utc>,
    },
    HandoverRefused {
        handover: Uuid,
        from: StaffId,
        to: StaffId,
        reason: RefusalReason,
        at: DateTime<Utc>,
    },
    /// The customer's personal data was erased (PIPL): their key is destroyed, so what
    /// their events held of them is unreadable, and what comes later holds none of it.
    /// The events keep their kinds and counts, so the funnel does not change.
    CustomerErased {
        /// Why, as the admin gave it.
        reason: String,
        at: DateTime<Utc>,
    },
}

impl CustomerEvent {
    /// The stable name stored in `events.event_type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::FriendAdded { .. } => "FriendAdded",
            Self::FriendRemoved { .. } => "FriendRemoved",
            Self::ProfileUpdated { .. } => "ProfileUpdated",
            Self::Tagged { .. } => "Tagged",
            Self::Untagged { .. } => "Untagged",
            Self::RemarkChanged { .. } => "RemarkChanged",
            Self::CouponIssued { .. } => "CouponIssued",
            Self::CouponRedeemed { .. } => "CouponRedeemed",
            Self::CouponExpired { .. } => "CouponExpired",
            Self::JoinedGroup { .. } => "JoinedGroup",
            Self::LeftGroup { .. } => "LeftGroup",
            Self::PurchaseRecorded { .. } => "PurchaseRecorded",
            Self::MassMessageDelivered { .. } => "MassMessageDelivered",
            Self::MomentDelivered { .. } => "MomentDelivered",
            Self::CampaignHeldOut { .. } => "CampaignHeldOut",
            Self::WelcomeMessageSent { .. } => "WelcomeMessageSent",
            Self::HandoverRequested { .. } => "HandoverRequested",
            Self::HandoverAccepted { .. } => "HandoverAccepted",
            Self::HandoverRefused { .. } => "HandoverRefused",
            Self::CustomerErased { .. } => "CustomerErased",
        }
    }

    /// When it happened, as decided at the edge.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::FriendAdded { at, .. }
            | Self::FriendRemoved { at, .. }
            | Self::ProfileUpdated { at, .. }
            | Self::Tagged { at, .. }
            | Self::Untagged { at, .. }
            | Self::RemarkChanged { at, .. }
            | Self::CouponIssued { at, .. }
            | Self::CouponRedeemed { at, .. }
            | Self::CouponExpired { at, .. }
            | Self::JoinedGroup { at, .. }
            | Self::LeftGroup { at, .. }
            | Self::PurchaseRecorded { at, .. }
            | Self::MassMessageDelivered { at, .. }
            | Self::MomentDelivered { at, .. }
            | Self::CampaignHeldOut { at, .. }
            | Self::WelcomeMessageSent { at, .. }
            | Self::HandoverRequested { at, .. }
            | Self::HandoverAccepted { at, .. }
            | Self::HandoverRefused { at, .. }
            | Self::CustomerErased { at, .. } => *at,
        }
    }
}

crate::decide::published_event!(CustomerEvent);
