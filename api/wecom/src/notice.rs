//! Decrypted WeCom customer-contact notices as typed values.
//!
//! WeCom's callbacks are thin notices: they say *that* a friend relation, a customer group or a
//! tag changed, and the engine reads the details through the API when it needs them. This module
//! only turns the decrypted plaintext into a [`Notice`]; it never calls out.
//!
//! Two envelopes exist. A self-built app (自建应用) gets `ToUserName` (the corp id),
//! `FromUserName` (`sys`), `CreateTime`, `MsgType=event` and `Event`; a third-party or
//! custom-developed app (第三方/代开发应用) gets `SuiteId`, `AuthCorpId`, `InfoType` (in place of
//! `Event`) and `TimeStamp`. The change itself (`ChangeType`, `UserID`, `ChatId`, ...) uses the same
//! field names in both.
//!
//! The parser is lenient about form and strict about content. Whitespace around values (the
//! documentation mixes tabs, spaces and a trailing space after closing tags), CDATA versus plain
//! text, field order, the case of field names and XML versus JSON bodies are all accepted. A missing
//! field the engine needs (no `ExternalUserID` on an `add_external_contact`, say) is a
//! [`ParseError`]; an event or change type this module does not know is [`NoticeKind::Unknown`],
//! never an error, because WeCom adds event types without notice and the endpoint must keep
//! answering.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Why a body could not be read as a notice (or as an outer encrypted envelope).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace.
    #[error("body is empty")]
    Empty,
    /// Starts with neither `<` nor `{` (nor `[`).
    #[error("body is neither XML nor JSON (starts with byte {0:#04x})")]
    UnknownFormat(u8),
    /// Not well-formed XML, not UTF-8, or a DTD (refused: entity expansion is an attack surface).
    #[error("malformed XML: {0}")]
    Xml(String),
    /// Not valid JSON, or not a JSON object.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// The same field twice: which one WeCom meant is unknowable, so neither is trusted.
    #[error("field `{0}` appears more than once")]
    DuplicateField(String),
    /// A field this kind of notice cannot do without is absent or empty.
    #[error("{context}: missing required field `{field}`")]
    MissingField {
        /// WeCom's name for the field, e.g. `ExternalUserID`.
        field: &'static str,
        /// Which notice needed it, e.g. `change_external_contact/add_external_contact`.
        context: String,
    },
    /// A field is present but its value has the wrong shape (e.g. a non-numeric `CreateTime`).
    #[error("field `{field}` is invalid: {reason}")]
    InvalidField {
        /// WeCom's name for the field.
        field: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

/// One decrypted notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Who the notice is addressed to and when WeCom produced it.
    pub envelope: Envelope,
    /// What changed.
    pub kind: NoticeKind,
}

/// The addressing part of a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// A self-built app's notice.
    SelfBuilt {
        /// `ToUserName`: the corp id of the tenant.
        to_user: String,
        /// `FromUserName`: `sys` for system events.
        from_user: String,
        /// `CreateTime`, Unix seconds.
        create_time: i64,
    },
    /// A third-party or custom-developed app's notice (`InfoType` envelope).
    ThirdParty {
        /// `SuiteId`: the app (suite) id.
        suite_id: String,
        /// `AuthCorpId`: the authorising tenant's corp id. Suite-level notices (`suite_ticket`,
        /// `create_auth`, ...) have none; every customer-contact notice has one (enforced).
        auth_corp_id: Option<String>,
        /// `TimeStamp`, Unix seconds.
        timestamp: i64,
    },
}

impl Envelope {
    /// The tenant's corp id, when the envelope names one: what the endpoint routes on.
    pub fn corp_id(&self) -> Option<&str> {
        match self {
            Envelope::SelfBuilt { to_user, .. } => Some(to_user),
            Envelope::ThirdParty { auth_corp_id, .. } => auth_corp_id.as_deref(),
        }
    }

    /// When WeCom produced the notice, Unix seconds.
    pub fn time(&self) -> i64 {
        match self {
            Envelope::SelfBuilt { create_time, .. } => *create_time,
            Envelope::ThirdParty { timestamp, .. } => *timestamp,
        }
    }
}

/// What a notice reports. Staff are WeCom members (`UserID`), customers are external contacts
/// (`ExternalUserID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind {
    /// `change_external_contact/add_external_contact`, or with `half` the
    /// `add_half_external_contact` variant: the customer added the staff member without the staff
    /// member's confirmation yet (免验证添加).
    ContactAdded {
        /// `UserID`.
        staff_id: String,
        /// `ExternalUserID`.
        external_user_id: String,
        /// `State`: the channel (「联系我」 state or acquisition-link `customer_channel`).
        state: Option<String>,
        /// `WelcomeCode`: valid for a short time to send the welcome message; absent when a
        /// conversation already started.
        welcome_code: Option<String>,
        /// True for `add_half_external_contact`.
        half: bool,
    },
    /// `edit_external_contact`: the staff member changed the customer's remark, description or
    /// enterprise tags (not on remark-mobile-only edits).
    ContactEdited {
        /// `UserID`.
        staff_id: String,
        /// `ExternalUserID`.
        external_user_id: String,
    },
    /// `del_external_contact`: the staff member removed the customer.
    ContactDeleted {
        /// `UserID`.
        staff_id: String,
        /// `ExternalUserID`.
        external_user_id: String,
        /// `Source=DELETE_BY_TRANSFER`: removed because an on-job handover moved the customer to a
        /// successor; not churn.
        by_transfer: bool,
    },
    /// `del_follow_user`: the customer removed the staff member.
    FollowUserDeleted {
        /// `UserID`.
        staff_id: String,
        /// `ExternalUserID`.
        external_user_id: String,
    },
    /// `transfer_fail`: a handover did not complete.
    TransferFailed {
        /// `UserID`: the successor (接替成员) that failed to take the customer over.
        staff_id: String,
        /// `ExternalUserID`.
        external_user_id: String,
        /// `FailReason`.
        fail_reason: Option<TransferFailReason>,
    },
    /// `change_external_chat/create`.
    ChatCreated {
        /// `ChatId`.
        chat_id: String,
    },
    /// `change_external_chat/update`: fetch the group to learn the new state.
    ChatUpdated {
        /// `ChatId`.
        chat_id: String,
        /// `UpdateDetail` and its fields.
        update: ChatUpdate,
        /// `LastMemVer`: member-list version before the change, to detect missed notices.
        last_mem_ver: Option<String>,
        /// `CurMemVer`: member-list version after the change.
        cur_mem_ver: Option<String>,
    },
    /// `change_external_chat/dismiss`: the owner dismissed the group.
    ChatDismissed {
        /// `ChatId`.
        chat_id: String,
    },
    /// `change_external_tag/create`.
    TagCreated {
        /// `Id`: the tag's or tag group's id.
        id: String,
        /// `TagType`.
        tag_type: TagType,
        /// `StrategyId`: the rule group (规则组) the tag belongs to, if any.
        strategy_id: Option<String>,
    },
    /// `change_external_tag/update`: fetch the tag library for the new name or order.
    TagUpdated {
        /// `Id`.
        id: String,
        /// `TagType`.
        tag_type: TagType,
        /// `StrategyId`.
        strategy_id: Option<String>,
    },
    /// `change_external_tag/delete`. Deleting a tag group deletes its tags with no notice per tag.
    TagDeleted {
        /// `Id`.
        id: String,
        /// `TagType`.
        tag_type: TagType,
        /// `StrategyId`.
        strategy_id: Option<String>,
    },
    /// `change_external_tag/shuffle`: tags were reordered.
    TagShuffled {
        /// `Id`: the tag group whose tags were reordered; `None` (empty `Id`) when the order of the
        /// tag groups themselves changed.
        group_id: Option<String>,
        /// `StrategyId`.
        strategy_id: Option<String>,
    },
    /// Any other event, change type or message. For a message that is not an event (`MsgType`
    /// other than `event`), `event` holds the `MsgType`.
    Unknown {
        /// `Event`, `InfoType` or `MsgType`.
        event: String,
        /// `ChangeType`, when present.
        change_type: Option<String>,
    },
}

/// `UpdateDetail` of a customer-group update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatUpdate {
    /// `add_member`.
    AddMember {
        /// `JoinScene`: 0 invited by a member (directly or, per current docs, by link), 1 by
        /// invitation link (older docs), 3 by scanning the group QR code.
        join_scene: Option<u32>,
        /// `MemChangeCnt`: how many members joined; may exceed `member_ids.len()`.
        mem_change_cnt: Option<u32>,
        /// `MemChangeList`: member and external-contact ids, possibly incomplete.
        member_ids: Vec<String>,
    },
    /// `del_member`.
    DelMember {
        /// `QuitScene`: 0 left by themselves, 1 removed by the owner or an admin.
        quit_scene: Option<u32>,
        /// `MemChangeCnt`.
        mem_change_cnt: Option<u32>,
        /// `MemChangeList`.
        member_ids: Vec<String>,
    },
    /// `change_owner`.
    ChangeOwner,
    /// `change_name`.
    ChangeName,
    /// `change_notice`.
    ChangeNotice,
    /// Any other `UpdateDetail`.
    Other(String),
}

/// `TagType` of a tag notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagType {
    /// `tag`.
    Tag,
    /// `tag_group`.
    TagGroup,
    /// Anything else, kept verbatim.
    Other(String),
}

/// `FailReason` of a `transfer_fail` notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferFailReason {
    /// `customer_refused`.
    CustomerRefused,
    /// `customer_limit_exceed`: the successor is at their customer limit.
    CustomerLimitExceed,
    /// Anything else, kept verbatim.
    Other(String),
}

const DEDUP_DOMAIN_FIELDS: &[u8] = b"wecom-notice-fields-v1\n";
const DEDUP_DOMAIN_RAW: &[u8] = b"wecom-notice-raw-v1\n";

impl Notice {
    /// Parses a decrypted notice, XML or JSON.
    pub fn parse(plaintext: &[u8]) -> Result<Self, ParseError> {
        Self::from_fields(&Fields::parse(plaintext)?)
    }

    /// A key that is equal for two deliveries of the same notice and different for two notices
    /// that differ in any field: hex SHA-256 over the notice's fields in canonical form (names
    /// lower-cased and sorted, values trimmed, empty values dropped, list items in order).
    ///
    /// Why not `(UserID, CreateTime)`: distinct notices share a second and a user (an add and a
    /// delete, two groups joined). Why not the ciphertext: a redelivery is re-encrypted with a new
    /// random prefix, nonce and signature. Why not the raw plaintext bytes, although WeCom's
    /// retries carry the same bytes: the canonical form also matches when a notice was re-serialised
    /// on the way (replayed from a log, forwarded by a gateway, JSON instead of XML, CDATA
    /// dropped), and it can never merge two notices, since any differing value changes it. What no
    /// key can separate are two notices identical in every field, `CreateTime` included; WeCom
    /// gives events no message id. A body that does not parse is keyed on its raw bytes, under a
    /// different domain so the two kinds never collide.
    pub fn dedup_key(raw_plaintext: &[u8]) -> String {
        let mut hasher = Sha256::new();
        match Fields::parse(raw_plaintext) {
            Ok(fields) => {
                hasher.update(DEDUP_DOMAIN_FIELDS);
                fields.write_canonical(&mut hasher);
            }
            Err(_) => {
                hasher.update(DEDUP_DOMAIN_RAW);
                hasher.update(raw_plaintext);
            }
        }
        hex::encode(hasher.finalize())
    }

    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        let (envelope, event) = if f.contains("InfoType") {
            let ctx = "third-party envelope";
            let envelope = Envelope::ThirdParty {
                suite_id: f.required("SuiteId", ctx)?,
                auth_corp_id: f.optional("AuthCorpId")?,
                timestamp: f.required_number("TimeStamp", ctx)?,
            };
            (envelope, f.required("InfoType", ctx)?)
        } else {
            let ctx = "self-built envelope";
            let envelope = Envelope::SelfBuilt {
                to_user: f.required("ToUserName", ctx)?,
                from_user: f.required("FromUserName", ctx)?,
                create_time: f.required_number("CreateTime", ctx)?,
            };
            let msg_type = f.required("MsgType", ctx)?;
            if msg_type != "event" {
                let kind = NoticeKind::Unknown {
                    event: msg_type,
                    change_type: f.optional("ChangeType")?,
                };
                return Ok(Notice { envelope, kind });
            }
            (envelope, f.required("Event", ctx)?)
        };

        let kind = match event.as_str() {
            "change_external_contact" => contact_kind(f, &event)?,
            "change_external_chat" => chat_kind(f, &event)?,
            "change_external_tag" => tag_kind(f, &event)?,
            _ => NoticeKind::Unknown {
                event,
                change_type: f.optional("ChangeType")?,
            },
        };

        // A third-party notice without its tenant cannot be routed; suite-level notices
        // (suite_ticket, create_auth, ...) legitimately have none and stay Unknown.
        if let Envelope::ThirdParty {
            auth_corp_id: None, ..
        } = &envelope
        {
            if !matches!(kind, NoticeKind::Unknown { .. }) {
                return Err(ParseError::MissingField {
                    field: "AuthCorpId",
                    context: "third-party customer-contact notice".to_owned(),
                });
            }
        }
        Ok(Notice { envelope, kind })
    }
}

fn contact_kind(f: &Fields, event: &str) -> Result<NoticeKind, ParseError> {
    let change_type = f.required("ChangeType", event)?;
    let ctx = format!("{event}/{change_type}");
    let ids = || -> Result<(String, String), ParseError> {
        Ok((
            f.required("UserID", &ctx)?,
            f.required("ExternalUserID", &ctx)?,
        ))
    };
    Ok(match change_type.as_str() {
        "add_external_contact" | "add_half_external_contact" => {
            let (staff_id, external_user_id) = ids()?;
            NoticeKind::ContactAdded {
                staff_id,
                external_user_id,
                state: f.optional("State")?,
                welcome_code: f.optional("WelcomeCode")?,
                half: change_type == "add_half_external_contact",
            }
        }
        "edit_external_contact" => {
            let (staff_id, external_user_id) = ids()?;
            NoticeKind::ContactEdited {
                staff_id,
                external_user_id,
            }
        }
        "del_external_contact" => {
            let (staff_id, external_user_id) = ids()?;
            NoticeKind::ContactDeleted {
                staff_id,
                external_user_id,
                by_transfer: f.optional("Source")?.as_deref() == Some("DELETE_BY_TRANSFER"),
            }
        }
        "del_follow_user" => {
            let (staff_id, external_user_id) = ids()?;
            NoticeKind::FollowUserDeleted {
                staff_id,
                external_user_id,
            }
        }
        "transfer_fail" => {
            let (staff_id, external_user_id) = ids()?;
            let fail_reason = f.optional("FailReason")?.map(|r| match r.as_str() {
                "customer_refused" => TransferFailReason::CustomerRefused,
                "customer_limit_exceed" => TransferFailReason::CustomerLimitExceed,
                _ => TransferFailReason::Other(r),
            });
            NoticeKind::TransferFailed {
                staff_id,
                external_user_id,
                fail_reason,
            }
        }
        _ => NoticeKind::Unknown {
            event: event.to_owned(),
            change_type: Some(change_type),
        },
    })
}

fn chat_kind(f: &Fields, event: &str) -> Result<NoticeKind, ParseError> {
    let change_type = f.required("ChangeType", event)?;
    let ctx = format!("{event}/{change_type}");
    Ok(match change_type.as_str() {
        "create" => NoticeKind::ChatCreated {
            chat_id: f.required("ChatId", &ctx)?,
        },
        "dismiss" => NoticeKind::ChatDismissed {
            chat_id: f.required("ChatId", &ctx)?,
        },
        "update" => {
            let chat_id = f.required("ChatId", &ctx)?;
            let detail = f.required("UpdateDetail", &ctx)?;
            let update = match detail.as_str() {
                "add_member" => ChatUpdate::AddMember {
                    join_scene: f.optional_number("JoinScene")?,
                    mem_change_cnt: f.optional_number("MemChangeCnt")?,
                    member_ids: f.list("MemChangeList")?,
                },
                "del_member" => ChatUpdate::DelMember {
                    quit_scene: f.optional_number("QuitScene")?,
                    mem_change_cnt: f.optional_number("MemChangeCnt")?,
                    member_ids: f.list("MemChangeList")?,
                },
                "change_owner" => ChatUpdate::ChangeOwner,
                "change_name" => ChatUpdate::ChangeName,
                "change_notice" => ChatUpdate::ChangeNotice,
                _ => ChatUpdate::Other(detail),
            };
            NoticeKind::ChatUpdated {
                chat_id,
                update,
                last_mem_ver: f.optional("LastMemVer")?,
                cur_mem_ver: f.optional("CurMemVer")?,
            }
        }
        _ => NoticeKind::Unknown {
            event: event.to_owned(),
            change_type: Some(change_type),
        },
    })
}

fn tag_kind(f: &Fields, event: &str) -> Result<NoticeKind, ParseError> {
    let change_type = f.required("ChangeType", event)?;
    let ctx = format!("{event}/{change_type}");
    let strategy_id = f.optional("StrategyId")?;
    let id_and_type = || -> Result<(String, TagType), ParseError> {
        let id = f.required("Id", &ctx)?;
        let tag_type = match f.required("TagType", &ctx)?.as_str() {
            "tag" => TagType::Tag,
            "tag_group" => TagType::TagGroup,
            other => TagType::Other(other.to_owned()),
        };
        Ok((id, tag_type))
    };
    Ok(match change_type.as_str() {
        "create" => {
            let (id, tag_type) = id_and_type()?;
            NoticeKind::TagCreated {
                id,
                tag_type,
                strategy_id,
            }
        }
        "update" => {
            let (id, tag_type) = id_and_type()?;
            NoticeKind::TagUpdated {
                id,
                tag_type,
                strategy_id,
            }
        }
        "delete" => {
            let (id, tag_type) = id_and_type()?;
            NoticeKind::TagDeleted {
                id,
                tag_type,
                strategy_id,
            }
        }
        "shuffle" => NoticeKind::TagShuffled {
            group_id: f.optional("Id")?,
            strategy_id,
        },
        _ => NoticeKind::Unknown {
            event: event.to_owned(),
            change_type: Some(change_type),
        },
    })
}

/// A field's value: text, or the children of a list element such as `MemChangeList`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
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

    /// An event loop rather than a DOM: a recursive-descent XML parser can be driven into a
    /// stack overflow by deep nesting, which aborts the process instead of returning an error.
    fn parse_xml(body: &[u8]) -> Result<Self, ParseError> {
        use quick_xml::events::Event;

        let text =
            std::str::from_utf8(body).map_err(|e| ParseError::Xml(format!("not UTF-8: {e}")))?;
        let mut reader = quick_xml::Reader::from_str(text);
        let mut fields = Fields::default();
        // Depth 1 is the root, 2 a field, 3 a list item; deeper content is ignored.
        let mut depth = 0usize;
        let mut seen_root = false;
        let mut current: Option<OpenField> = None;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| ParseError::Xml(e.to_string()))?;
            match event {
                Event::Start(start) => {
                    depth += 1;
                    if depth > MAX_XML_DEPTH {
                        return Err(ParseError::Xml(format!(
                            "elements nested deeper than {MAX_XML_DEPTH}"
                        )));
                    }
                    open_element(&mut current, &mut seen_root, depth, local_name(&start)?)?;
                }
                Event::Empty(start) => {
                    open_element(&mut current, &mut seen_root, depth + 1, local_name(&start)?)?;
                    close_element(&mut current, &mut fields, depth + 1)?;
                }
                Event::End(_) => {
                    close_element(&mut current, &mut fields, depth)?;
                    depth = depth.saturating_sub(1);
                }
                Event::Text(t) => {
                    let t = t.unescape().map_err(|e| ParseError::Xml(e.to_string()))?;
                    add_text(&mut current, depth, &t)?;
                }
                Event::CData(c) => {
                    let c = c.decode().map_err(|e| ParseError::Xml(e.to_string()))?;
                    add_text(&mut current, depth, &c)?;
                }
                // Entity declarations are an attack surface (expansion bombs) and WeCom sends none.
                Event::DocType(_) => return Err(ParseError::Xml("DTD is not accepted".to_owned())),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if !seen_root {
            return Err(ParseError::Xml("no root element".to_owned()));
        }
        if depth != 0 {
            return Err(ParseError::Xml("unexpected end of document".to_owned()));
        }
        Ok(fields)
    }

    fn parse_json(body: &[u8]) -> Result<Self, ParseError> {
        use serde_json::Value as J;
        let root: J = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
        let J::Object(object) = root else {
            return Err(ParseError::Json("top level is not an object".to_owned()));
        };
        let mut fields = Fields::default();
        for (name, value) in object {
            let value = match value {
                J::Null => Value::Text(String::new()),
                J::Array(items) => json_list(items),
                J::Object(inner) => {
                    // The XML shape `<MemChangeList><Item>..</Item></MemChangeList>` rendered as
                    // JSON: {"MemChangeList": {"Item": [..]}}.
                    match inner
                        .into_iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("item"))
                    {
                        Some((_, J::Array(items))) => json_list(items),
                        Some((_, scalar)) => match json_scalar(scalar) {
                            Some(s) => Value::List(vec![s]),
                            None => Value::Nested,
                        },
                        None => Value::Nested,
                    }
                }
                scalar => json_scalar(scalar).map_or(Value::Nested, Value::Text),
            };
            fields.insert(&name, value)?;
        }
        Ok(fields)
    }

    fn insert(&mut self, name: &str, value: Value) -> Result<(), ParseError> {
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

    fn contains(&self, name: &str) -> bool {
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

    fn optional_number<T: FromStr>(&self, name: &'static str) -> Result<Option<T>, ParseError> {
        self.optional(name)?
            .map(|s| {
                s.parse().map_err(|_| ParseError::InvalidField {
                    field: name,
                    reason: format!("`{s}` is not a valid integer"),
                })
            })
            .transpose()
    }

    fn required_number<T: FromStr>(
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
    fn list(&self, name: &'static str) -> Result<Vec<String>, ParseError> {
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

    /// Length-prefixed, so no two different field maps can produce the same byte stream.
    fn write_canonical(&self, hasher: &mut Sha256) {
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

const MAX_XML_DEPTH: usize = 16;

/// A field element being read: its name, own text, and list items if it has child elements.
struct OpenField {
    name: String,
    text: String,
    items: Option<Vec<String>>,
}

fn local_name(start: &quick_xml::events::BytesStart<'_>) -> Result<String, ParseError> {
    std::str::from_utf8(start.local_name().as_ref())
        .map(str::to_owned)
        .map_err(|e| ParseError::Xml(format!("element name is not UTF-8: {e}")))
}

fn open_element(
    current: &mut Option<OpenField>,
    seen_root: &mut bool,
    depth: usize,
    name: String,
) -> Result<(), ParseError> {
    match depth {
        1 if *seen_root => Err(ParseError::Xml("more than one root element".to_owned())),
        1 => {
            *seen_root = true;
            Ok(())
        }
        2 => {
            *current = Some(OpenField {
                name,
                text: String::new(),
                items: None,
            });
            Ok(())
        }
        3 => {
            if let Some(field) = current {
                field.items.get_or_insert_with(Vec::new).push(String::new());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn close_element(
    current: &mut Option<OpenField>,
    fields: &mut Fields,
    depth: usize,
) -> Result<(), ParseError> {
    if depth != 2 {
        return Ok(());
    }
    let Some(field) = current.take() else {
        return Ok(());
    };
    let value = match field.items {
        Some(items) => Value::List(
            items
                .into_iter()
                .map(|item| item.trim().to_owned())
                .filter(|item| !item.is_empty())
                .collect(),
        ),
        None => Value::Text(field.text.trim().to_owned()),
    };
    fields.insert(&field.name, value)
}

fn add_text(current: &mut Option<OpenField>, depth: usize, text: &str) -> Result<(), ParseError> {
    match depth {
        0 if !text.trim().is_empty() => {
            Err(ParseError::Xml("text outside the root element".to_owned()))
        }
        2 => {
            if let Some(field) = current {
                field.text.push_str(text);
            }
            Ok(())
        }
        3 => {
            if let Some(item) = current
                .as_mut()
                .and_then(|f| f.items.as_mut())
                .and_then(|items| items.last_mut())
            {
                item.push_str(text);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn json_scalar(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Null => Some(String::new()),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
    }
}

fn json_list(items: Vec<serde_json::Value>) -> Value {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match json_scalar(item) {
            Some(s) if !s.is_empty() => out.push(s),
            Some(_) => {}
            None => return Value::Nested,
        }
    }
    Value::List(out)
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
