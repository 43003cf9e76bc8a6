//! Value objects. Each is built only through `parse`, so a value that exists is a valid one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a raw string was not accepted as a value object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct ParseError {
    pub kind: &'static str,
    pub reason: String,
}

impl ParseError {
    fn new(kind: &'static str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }
}

/// Characters WeCom uses in its opaque ids (userid, external_userid, chat_id, tag id):
/// ASCII letters, digits and a few separators. A colon is never allowed because it
/// separates the tenant from the rest of a stream id.
fn check_id(kind: &'static str, raw: &str, max: usize, extra: &[char]) -> Result<(), ParseError> {
    if raw.is_empty() {
        return Err(ParseError::new(kind, "must not be empty"));
    }
    if raw.len() > max {
        return Err(ParseError::new(kind, format!("longer than {max} bytes")));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(c)))
    {
        return Err(ParseError::new(
            kind,
            format!("character {c:?} not allowed"),
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Accepts `raw` if it is a well-formed id of this kind.
            pub fn parse(raw: impl Into<String>) -> Result<Self, ParseError> {
                let raw = raw.into();
                check_id($kind, &raw, $max, $extra)?;
                Ok(Self(raw))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(raw: String) -> Result<Self, ParseError> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A company using the engine. Lower-case slug; it prefixes every stream id and row.
    TenantId, "tenant id", 40, &['-']
);
id_type!(
    /// WeCom `external_userid`: a customer within one tenant.
    ExternalUserId, "external userid", 64, &['_', '-']
);
id_type!(
    /// WeCom `userid` of a member of staff.
    StaffId, "staff id", 64, &['_', '-', '.', '@']
);
id_type!(
    /// A store (a physical shop) of the tenant.
    StoreId, "store id", 64, &['_', '-']
);
id_type!(
    /// WeCom corp tag id (`et...`) or tag group id.
    TagId, "tag id", 64, &['_', '-']
);
id_type!(
    /// A tag group of the tag library.
    TagGroupId, "tag group id", 64, &['_', '-']
);
id_type!(
    /// WeCom `chat_id` of a customer group.
    GroupId, "group id", 64, &['_', '-']
);
id_type!(
    /// A coupon instance issued to one customer.
    CouponId, "coupon id", 64, &['_', '-']
);
id_type!(
    /// A coupon campaign.
    CampaignId, "campaign id", 64, &['_', '-']
);
id_type!(
    /// An order in the tenant's point-of-sale system.
    OrderId, "order id", 64, &['_', '-']
);
id_type!(
    /// A mass message or Moment post.
    MessageId, "message id", 64, &['_', '-']
);

impl TenantId {
    /// Tenants are slugs: lower case only, so ids compare the same everywhere.
    pub fn parse_slug(raw: impl Into<String>) -> Result<Self, ParseError> {
        let id = Self::parse(raw)?;
        if id.0.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ParseError::new("tenant id", "must be lower case"));
        }
        Ok(id)
    }
}

/// A short human-written text with a maximum length in characters (not bytes:
/// WeCom counts Chinese characters as one each).
pub fn check_text(kind: &'static str, raw: &str, max_chars: usize) -> Result<(), ParseError> {
    let n = raw.chars().count();
    if n > max_chars {
        return Err(ParseError::new(
            kind,
            format!("{n} characters, at most {max_chars} allowed"),
        ));
    }
    Ok(())
}

/// An amount of money in fen (1/100 yuan). Never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Money(i64);

impl Money {
    pub fn from_fen(fen: i64) -> Result<Self, ParseError> {
        if fen < 0 {
            return Err(ParseError::new("amount", "must not be negative"));
        }
        Ok(Self(fen))
    }

    pub fn fen(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Money {
    type Error = ParseError;
    fn try_from(fen: i64) -> Result<Self, ParseError> {
        Self::from_fen(fen)
    }
}

impl From<Money> for i64 {
    fn from(m: Money) -> i64 {
        m.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_empty_long_and_separator_characters() {
        assert!(ExternalUserId::parse("woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA").is_ok());
        assert!(ExternalUserId::parse("").is_err());
        assert!(ExternalUserId::parse("a".repeat(65)).is_err());
        assert!(ExternalUserId::parse("t1:wo123").is_err());
        assert!(StaffId::parse("zhang.san@store-1").is_ok());
        assert!(StaffId::parse("zhang san").is_err());
    }

    #[test]
    fn tenant_slugs_are_lower_case() {
        assert!(TenantId::parse_slug("chow-tai-fook").is_ok());
        assert!(TenantId::parse_slug("ChowTaiFook").is_err());
        assert!(TenantId::parse_slug("a_b").is_err());
    }

    #[test]
    fn ids_deserialize_through_parse() {
        let ok: Result<StaffId, _> = serde_json::from_str("\"lisi\"");
        assert!(ok.is_ok());
        let bad: Result<StaffId, _> = serde_json::from_str("\"li si\"");
        assert!(bad.is_err());
    }

    #[test]
    fn text_length_counts_characters_not_bytes() {
        assert!(check_text("remark", &"金".repeat(20), 20).is_ok());
        assert!(check_text("remark", &"金".repeat(21), 20).is_err());
    }

    #[test]
    fn money_is_never_negative() {
        assert_eq!(Money::from_fen(12_900).map(Money::fen), Ok(12_900));
        assert!(Money::from_fen(-1).is_err());
        assert!(serde_json::from_str::<Money>("-5").is_err());
    }
}
