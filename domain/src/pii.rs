//! Which parts of an event identify a person (PIPL's 个人信息), so the edge can seal
//! them with the customer's own key and erasure can make them unreadable for good.
//! Pure: the domain names the fields; the cipher and the keys live at the edge.

use crate::customer::CustomerEvent;
use crate::group::GroupEvent;
use crate::staff::StaffEvent;
use crate::tags::TagLibraryEvent;

/// One field of an event that identifies a person.
#[derive(Debug)]
pub enum PersonalField<'a> {
    Text(&'a mut String),
    Optional(&'a mut Option<String>),
}

impl PersonalField<'_> {
    /// The value, when there is one worth hiding (empty text identifies nobody).
    pub fn value(&self) -> Option<&str> {
        match self {
            PersonalField::Text(s) => Some(s.as_str()),
            PersonalField::Optional(s) => s.as_deref(),
        }
        .filter(|s| !s.is_empty())
    }

    /// Replaces the value (when there is one) with `f` of it.
    pub fn map(&mut self, f: impl FnOnce(&str) -> String) {
        match self {
            PersonalField::Text(s) if !s.is_empty() => **s = f(s),
            PersonalField::Optional(Some(s)) if !s.is_empty() => *s = f(s),
            _ => {}
        }
    }

    /// Forgets the value: what an erased customer's events hold.
    pub fn clear(&mut self) {
        match self {
            PersonalField::Text(s) => s.clear(),
            PersonalField::Optional(s) => **s = None,
        }
    }
}

/// An event type whose payloads may hold personal data.
pub trait Personal {
    /// The fields that identify a person, in a fixed order.
    fn personal_fields(&mut self) -> Vec<PersonalField<'_>>;

    /// Whether any of them holds something.
    fn has_personal_data(&mut self) -> bool {
        self.personal_fields().iter().any(|f| f.value().is_some())
    }

    /// Forgets every one of them.
    fn strip_personal_data(&mut self) {
        for mut f in self.personal_fields() {
            f.clear();
        }
    }
}

impl Personal for CustomerEvent {
    fn personal_fields(&mut self) -> Vec<PersonalField<'_>> {
        match self {
            CustomerEvent::ProfileUpdated {
                name,
                phone,
                avatar,
                ..
            } => vec![
                PersonalField::Text(name),
                PersonalField::Optional(phone),
                PersonalField::Optional(avatar),
            ],
            CustomerEvent::RemarkChanged {
                remark,
                description,
                ..
            } => vec![
                PersonalField::Text(remark),
                PersonalField::Text(description),
            ],
            _ => Vec::new(),
        }
    }
}

/// Staff, groups and the tag library describe the company, not its customers.
macro_rules! impersonal {
    ($($event:ty),*) => {$(
        impl Personal for $event {
            fn personal_fields(&mut self) -> Vec<PersonalField<'_>> {
                Vec::new()
            }
        }
    )*};
}
impersonal!(StaffEvent, GroupEvent, TagLibraryEvent);

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn profile() -> CustomerEvent {
        CustomerEvent::ProfileUpdated {
            name: "王芳".into(),
            phone: Some("13800000000".into()),
            at: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            gender: Some(2),
            avatar: None,
        }
    }

    #[test]
    fn given_a_profile_when_its_personal_fields_are_mapped_then_only_those_change() {
        let mut e = profile();
        for mut f in e.personal_fields() {
            f.map(|s| format!("sealed({s})"));
        }
        let CustomerEvent::ProfileUpdated {
            name,
            phone,
            gender,
            avatar,
            ..
        } = e
        else {
            unreachable!()
        };
        assert_eq!(name, "sealed(王芳)");
        assert_eq!(phone.as_deref(), Some("sealed(13800000000)"));
        assert_eq!(gender, Some(2), "gender identifies nobody and stays");
        assert_eq!(avatar, None, "an absent field stays absent");
    }

    #[test]
    fn given_a_profile_when_stripped_then_nothing_identifies_the_person() {
        let mut e = profile();
        assert!(e.has_personal_data());
        e.strip_personal_data();
        assert!(!e.has_personal_data());
        let mut tag = CustomerEvent::CampaignHeldOut {
            campaign: crate::values::MessageId::parse("m1").unwrap(),
            at: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        assert!(!tag.has_personal_data());
    }
}
