//! The fields of a notice, XML or JSON alike: a flat map keyed by lower-cased name.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::ParseError;

/// A field's value: text, or the children of a list element such as `MemChangeList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Text(String),
    List(Vec<String>),
    /// A JSON object or nested array with no meaning here; kept so that asking for it as text
    /// is an error rather than a silent absence.
    Nested,
}

/// The top-level fields of a flat XML or JSON document, keyed by lower-cased name.
///
/// WeCom's bodies are flat (one level under the root) apart from `MemChangeList`, so a map is
/// the whole model; empty values are dropped so that `<State></State>`, `"State": ""`, `null`
/// and an absent field all mean the same.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    map: BTreeMap<String, Value>,
    seen: BTreeSet<String>,
}

impl Fields {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let start = body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .ok_or(ParseError::Empty)?;
        let body = &body[start..];
        match body[0] {
            b'<' => Self::parse_xml(body),
            b'{' | b'[' => Self::parse_json(body),
            other => Err(ParseError::UnknownFormat(other)),
        }
    }

    pub(super) fn insert(&mut self, name: &str, value: Value) -> Result<(), ParseError> {
        let key = name.to_ascii_lowercase();
        if !self.seen.insert(key.clone()) {
            return Err(ParseError::DuplicateField(name.to_owned()));
        }
        let empty = match &value {
            Value::Text(s) => s.is_empty(),
            Value::List(items) => items.is_empty(),
            Value::Nested => false,
        };
        if !empty {
            self.map.insert(key, value);
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(&name.to_ascii_lowercase())
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub(crate) fn optional(&self, name: &'static str) -> Result<Option<String>, ParseError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Text(s)) => Ok(Some(s.clone())),
            Some(Value::List(_) | Value::Nested) => Err(ParseError::InvalidField {
                field: name,
                reason: "expected text, found nested elements".to_owned(),
            }),
        }
    }

    pub(crate) fn required(&self, name: &'static str, context: &str) -> Result<String, ParseError> {
        self.optional(name)?
            .ok_or_else(|| ParseError::MissingField {
                field: name,
                context: context.to_owned(),
            })
    }

    pub(super) fn optional_number<T: FromStr>(
        &self,
        name: &'static str,
    ) -> Result<Option<T>, ParseError> {
        self.optional(name)?
            .map(|s| {
                s.parse().map_err(|_| ParseError::InvalidField {
                    field: name,
                    reason: format!("`{s}` is not a valid integer"),
                })
            })
            .transpose()
    }

    pub(super) fn required_number<T: FromStr>(
        &self,
        name: &'static str,
        context: &str,
    ) -> Result<T, ParseError> {
        self.optional_number(name)?
            .ok_or_else(|| ParseError::MissingField {
                field: name,
                context: context.to_owned(),
            })
    }

    /// A list field; the older comma-separated text form (`<MemChangeList>a,b</MemChangeList>`)
    /// is accepted too.
    pub(super) fn list(&self, name: &'static str) -> Result<Vec<String>, ParseError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::List(items)) => Ok(items.clone()),
            Some(Value::Text(s)) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()),
            Some(Value::Nested) => Err(ParseError::InvalidField {
                field: name,
                reason: "expected a list of ids".to_owned(),
            }),
        }
    }

    /// What a body that is no readable notice says it is: `InfoType`, `Event` or
    /// `MsgType`, then `ChangeType`, as far as they are text.
    pub(super) fn label(&self) -> String {
        let text = |name| self.optional(name).ok().flatten();
        let event = text("InfoType")
            .or_else(|| text("Event"))
            .or_else(|| text("MsgType"))
            .unwrap_or_else(|| "unknown".to_owned());
        match text("ChangeType") {
            Some(change) => format!("{event}/{change}"),
            None => event,
        }
    }

    /// The corp id of either envelope, when it is text: `AuthCorpId` under `InfoType`,
    /// else `ToUserName`.
    pub(super) fn corp_id(&self) -> Option<String> {
        let name = if self.contains("InfoType") {
            "AuthCorpId"
        } else {
            "ToUserName"
        };
        self.optional(name).ok().flatten()
    }

    /// Length-prefixed, so no two different field maps can produce the same byte stream.
    pub(super) fn write_canonical(&self, hasher: &mut Sha256) {
        fn put(hasher: &mut Sha256, tag: u8, bytes: &[u8]) {
            hasher.update([tag]);
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        }
        for (name, value) in &self.map {
            put(hasher, b'k', name.as_bytes());
            match value {
                Value::Text(s) => put(hasher, b't', s.as_bytes()),
                Value::List(items) => {
                    hasher.update([b'l']);
                    hasher.update((items.len() as u64).to_be_bytes());
                    for item in items {
                        put(hasher, b'i', item.as_bytes());
                    }
                }
                Value::Nested => hasher.update([b'n']),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_case_insensitive_and_values_trimmed() {
        let f = Fields::parse(b"<xml><userid>\n\t <![CDATA[ zhangsan ]]> </userid></xml>").unwrap();
        assert_eq!(f.optional("UserID").unwrap().as_deref(), Some("zhangsan"));
    }

    #[test]
    fn duplicate_fields_are_rejected_even_when_case_differs() {
        let err = Fields::parse(b"<xml><UserID>a</UserID><userid>b</userid></xml>").unwrap_err();
        assert_eq!(err, ParseError::DuplicateField("userid".to_owned()));
    }

    #[test]
    fn dtd_is_refused() {
        let body =
            b"<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY a \"aaaa\">]><xml><X>&a;</X></xml>";
        assert!(matches!(Fields::parse(body), Err(ParseError::Xml(_))));
    }

    #[test]
    fn xml_that_is_not_well_formed_is_rejected() {
        for body in [
            &b"<xml><A>x</B></xml>"[..],
            b"<xml><A>x</A>",
            b"<xml><A>x</A></xml><xml></xml>",
            b"<xml><A>x</A></xml> trailing",
            b"</xml>",
            b"<xml><A>&unknown;</A></xml>",
        ] {
            assert!(
                matches!(Fields::parse(body), Err(ParseError::Xml(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn escapes_comments_and_declarations_are_handled() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- sample -->\n\
                    <xml><State>a&amp;b&#x4F01;</State><!-- c --><Id/></xml>";
        let f = Fields::parse(body.as_bytes()).unwrap();
        assert_eq!(f.optional("State").unwrap().as_deref(), Some("a&b企"));
        assert_eq!(f.optional("Id").unwrap(), None);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let body = format!(
            "<xml>{}{}</xml>",
            "<a>".repeat(100_000),
            "</a>".repeat(100_000)
        );
        assert!(matches!(
            Fields::parse(body.as_bytes()),
            Err(ParseError::Xml(_))
        ));
    }

    #[test]
    fn empty_and_null_values_count_as_absent() {
        let f = Fields::parse(br#"{"State": "", "WelcomeCode": null, "UserID": " u "}"#).unwrap();
        assert_eq!(f.optional("State").unwrap(), None);
        assert_eq!(f.optional("WelcomeCode").unwrap(), None);
        assert_eq!(f.optional("UserID").unwrap().as_deref(), Some("u"));
    }

    #[test]
    fn text_where_a_list_stands_is_an_invalid_field() {
        let f = Fields::parse(b"<xml><UserID><Item>a</Item></UserID></xml>").unwrap();
        assert!(matches!(
            f.optional("UserID"),
            Err(ParseError::InvalidField {
                field: "UserID",
                ..
            })
        ));
    }
}
