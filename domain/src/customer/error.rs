//! Business rejections of customer commands. Nothing here is a technical failure.

use crate::values::{CouponId, GroupId, OrderId, StaffId, TagId};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    #[error("no such customer: add them as a friend first")]
    UnknownCustomer,
    #[error("{0} is already a friend of this customer")]
    AlreadyFriend(StaffId),
    #[error("{0} is not a friend of this customer")]
    NotAFriend(StaffId),
    #[error("a handover of this customer from {0} is in flight")]
    RelationInHandover(StaffId),
    #[error("{field} is too long: {chars} characters, at most {max}")]
    TextTooLong {
        field: &'static str,
        chars: usize,
        max: usize,
    },
    #[error("customer name must not be empty")]
    EmptyName,
    #[error("tag {0} is not in the tenant's tag library")]
    UnknownTag(TagId),
    #[error("tag {0} was deleted from the tag library")]
    TagDeleted(TagId),
    #[error("{staff} has already tagged this customer with {tag}")]
    AlreadyTagged { staff: StaffId, tag: TagId },
    #[error("{staff} has not tagged this customer with {tag}")]
    NotTagged { staff: StaffId, tag: TagId },
    #[error("coupon {0} was already issued")]
    CouponAlreadyIssued(CouponId),
    #[error("coupon {0} would expire before it is issued")]
    CouponExpiresBeforeIssue(CouponId),
    #[error("coupon {0} was not issued to this customer")]
    CouponNotIssued(CouponId),
    #[error("coupon {0} was already redeemed")]
    CouponAlreadyRedeemed(CouponId),
    #[error("coupon {0} has expired")]
    CouponExpired(CouponId),
    #[error("coupon {0} has not reached its expiry time")]
    CouponNotYetExpired(CouponId),
    #[error("the customer is already in group {0}")]
    AlreadyInGroup(GroupId),
    #[error("the customer is not in group {0}")]
    NotInGroup(GroupId),
    #[error("order {0} was already recorded")]
    DuplicateOrder(OrderId),
    #[error("the customer already received a mass message today")]
    MassMessageDailyLimit,
    #[error("the customer already received an enterprise Moment today")]
    MomentDailyLimit,
    #[error("the delivery is stamped before the last week of deliveries and cannot be checked")]
    DeliveryTooLate,
    #[error("the successor must differ from the current staff")]
    SameStaff,
    #[error("{0} already serves this customer")]
    SuccessorAlreadyFriend(StaffId),
    #[error("another handover of this customer is in flight")]
    HandoverInFlight,
    #[error("the customer was already handed over 2 times in the last 90 days")]
    HandoverLimitReached,
    #[error("the successor {0} is at their customer limit")]
    SuccessorAtLimit(StaffId),
    #[error("a resigned handover needs {0} to have left the company")]
    StaffNotDeparted(StaffId),
    #[error("{0} left more than a year ago: their customers can no longer be handed over")]
    DepartureTooOld(StaffId),
    #[error("an on-job handover needs {0} to still be with the company")]
    StaffDeparted(StaffId),
    #[error("no handover in flight with that id")]
    NoSuchHandover,
    #[error("the 24-hour window of this handover has not passed yet")]
    HandoverWindowOpen,
    #[error("the customer's personal data was already erased")]
    AlreadyErased,
    #[error("an erasure needs a reason")]
    EmptyReason,
}

error_codes!(CustomerError {
    UnknownCustomer => "UNKNOWN_CUSTOMER",
    AlreadyFriend(_) => "ALREADY_FRIEND",
    NotAFriend(_) => "NOT_A_FRIEND",
    RelationInHandover(_) => "RELATION_IN_HANDOVER",
    TextTooLong { .. } => "TEXT_TOO_LONG",
    EmptyName => "EMPTY_NAME",
    UnknownTag(_) => "UNKNOWN_TAG",
    TagDeleted(_) => "TAG_DELETED",
    AlreadyTagged { .. } => "ALREADY_TAGGED",
    NotTagged { .. } => "NOT_TAGGED",
    CouponAlreadyIssued(_) => "COUPON_ALREADY_ISSUED",
    CouponExpiresBeforeIssue(_) => "COUPON_EXPIRES_BEFORE_ISSUE",
    CouponNotIssued(_) => "COUPON_NOT_ISSUED",
    CouponAlreadyRedeemed(_) => "COUPON_ALREADY_REDEEMED",
    CouponExpired(_) => "COUPON_EXPIRED",
    CouponNotYetExpired(_) => "COUPON_NOT_YET_EXPIRED",
    AlreadyInGroup(_) => "ALREADY_IN_GROUP",
    NotInGroup(_) => "NOT_IN_GROUP",
    DuplicateOrder(_) => "DUPLICATE_ORDER",
    MassMessageDailyLimit => "MASS_MESSAGE_DAILY_LIMIT",
    MomentDailyLimit => "MOMENT_DAILY_LIMIT",
    DeliveryTooLate => "DELIVERY_TOO_LATE",
    SameStaff => "SAME_STAFF",
    SuccessorAlreadyFriend(_) => "SUCCESSOR_ALREADY_FRIEND",
    HandoverInFlight => "HANDOVER_IN_FLIGHT",
    HandoverLimitReached => "HANDOVER_LIMIT_REACHED",
    SuccessorAtLimit(_) => "SUCCESSOR_AT_LIMIT",
    StaffNotDeparted(_) => "STAFF_NOT_DEPARTED",
    DepartureTooOld(_) => "DEPARTURE_TOO_OLD",
    StaffDeparted(_) => "STAFF_DEPARTED",
    NoSuchHandover => "NO_SUCH_HANDOVER",
    HandoverWindowOpen => "HANDOVER_WINDOW_OPEN",
    AlreadyErased => "ALREADY_ERASED",
    EmptyReason => "EMPTY_REASON",
});
