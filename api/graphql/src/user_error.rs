//! Business-rule rejections as typed user errors: every code the domain can give has a
//! member here, so a rejection never surfaces as a top-level error.

use async_graphql::{Enum, SimpleObject};
use serde::{Deserialize, Serialize};

use crate::errors::{ApiError, Refusal};
use engine::commands::CommandError;

/// Why a mutation did not do what it was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
pub enum UserErrorCode {
    // Request conditions.
    InvalidInput,
    NotFound,
    VersionConflict,
    IdempotencyKeyReused,
    Conflict,
    // Customer.
    UnknownCustomer,
    AlreadyFriend,
    NotAFriend,
    RelationInHandover,
    TextTooLong,
    EmptyName,
    UnknownTag,
    TagDeleted,
    AlreadyTagged,
    NotTagged,
    TooManyTags,
    CouponAlreadyIssued,
    CouponExpiresBeforeIssue,
    CouponNotIssued,
    CouponAlreadyRedeemed,
    CouponExpired,
    CouponNotYetExpired,
    AlreadyInGroup,
    NotInGroup,
    DuplicateOrder,
    MassMessageDailyLimit,
    MomentDailyLimit,
    DeliveryTooLate,
    SameStaff,
    SuccessorAlreadyFriend,
    HandoverInFlight,
    HandoverLimitReached,
    SuccessorAtLimit,
    StaffNotDeparted,
    DepartureTooOld,
    StaffDeparted,
    NoSuchHandover,
    HandoverWindowOpen,
    AlreadyErased,
    EmptyReason,
    // Groups.
    GroupAlreadyExists,
    UnknownGroup,
    GroupDismissed,
    GroupFull,
    AlreadyMember,
    NotMember,
    OwnerCannotLeave,
    SameOwner,
    InvalidCapacity,
    GroupTransferLimitReached,
    // Staff.
    StaffAlreadyRegistered,
    UnknownStaff,
    SameStore,
    InvalidCustomerLimit,
    DailyGroupTransferLimit,
    // Tag library.
    NameTooLong,
    DuplicateName,
    IdTaken,
    UnknownTagGroup,
    Deleted,
    TagNotInGroup,
    DuplicateEntry,
    // WeCom.
    /// WeCom refused the change (its errcode is in the message); nothing was recorded.
    WecomRefused,
}

impl UserErrorCode {
    /// The member for a domain error's code.
    pub fn from_domain(code: &str) -> Option<Self> {
        use async_graphql::resolver_utils::EnumType;
        Self::items()
            .iter()
            .find(|item| item.name == code)
            .map(|item| item.value)
    }
}

#[derive(Debug, Clone, PartialEq, SimpleObject, Serialize, Deserialize)]
pub struct UserError {
    /// Path to the input field at fault, e.g. `["input", "tagId"]`.
    pub field: Vec<String>,
    pub message: String,
    pub code: UserErrorCode,
}

impl UserError {
    pub fn new(field: &[&str], code: UserErrorCode, message: impl Into<String>) -> Self {
        Self {
            field: field.iter().map(|f| f.to_string()).collect(),
            message: message.into(),
            code,
        }
    }

    pub fn not_found(field: &str, what: &str) -> Self {
        Self::new(
            &["input", field],
            UserErrorCode::NotFound,
            format!("no such {what}"),
        )
    }
}

/// A command's failure: a user error when the request can be corrected or retried, an
/// internal failure otherwise.
pub fn refusal<E>(error: CommandError<E>, field: &str) -> Refusal
where
    E: std::error::Error + DomainCode,
{
    let at = ["input", field];
    Refusal::User(match error {
        CommandError::Rejected(e) => match UserErrorCode::from_domain(e.code()) {
            Some(code) => UserError::new(&at, code, e.to_string()),
            None => return ApiError::internal(format!("unmapped code {}", e.code())).into(),
        },
        CommandError::WrongTenant { .. } => UserError::not_found(field, "record"),
        CommandError::VersionConflict { expected, actual } => UserError::new(
            &["input", "expectedVersion"],
            UserErrorCode::VersionConflict,
            format!("expected version {expected}, but it is at {actual}"),
        ),
        CommandError::Conflict { .. } => UserError::new(
            &at,
            UserErrorCode::Conflict,
            "too many concurrent changes; retry with the same idempotency key",
        ),
        CommandError::IdempotencyKeyReused => UserError::new(
            &["input", "idempotencyKey"],
            UserErrorCode::IdempotencyKeyReused,
            "this idempotency key was used for a different request",
        ),
        CommandError::Store(detail) => return ApiError::internal(detail).into(),
    })
}

/// Domain errors' stable codes. Only errors with a code can become user errors
/// ([`refusal`] asks for one), and every code of theirs is a [`UserErrorCode`] (tested
/// below), so a rejection never surfaces as a top-level error.
pub trait DomainCode {
    fn code(&self) -> &'static str;
}

macro_rules! domain_code {
    ($($t:ty),*) => {
        $(
            impl DomainCode for $t {
                fn code(&self) -> &'static str {
                    <$t>::code(self)
                }
            }
        )*
        /// The codes of every domain error that has a [`DomainCode`], as the domain
        /// lists them.
        #[cfg(test)]
        const DOMAIN_CODES: &[&[&str]] = &[$(<$t>::CODES),*];
    };
}
domain_code!(
    domain::customer::CustomerError,
    domain::group::GroupError,
    domain::staff::StaffError,
    domain::tags::TagLibraryError
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code the domain's errors can give, as the domain lists them, has a member.
    #[test]
    fn every_domain_code_is_a_user_error_code() {
        let codes: Vec<&str> = DOMAIN_CODES
            .iter()
            .flat_map(|c| c.iter().copied())
            .collect();
        assert!(codes.len() > 40, "found only {codes:?}");
        assert!(UserErrorCode::from_domain("NO_SUCH_CODE").is_none());
        for code in codes {
            assert!(
                UserErrorCode::from_domain(code).is_some(),
                "{code} has no UserErrorCode"
            );
        }
    }

    /// A domain error's code is one of its listed codes (the list and the match are made
    /// by one macro; this checks the wiring).
    #[test]
    fn a_domain_error_gives_a_listed_code() {
        let error = domain::customer::CustomerError::MassMessageDailyLimit;
        assert!(domain::customer::CustomerError::CODES.contains(&DomainCode::code(&error)));
    }
}
