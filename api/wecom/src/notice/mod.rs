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
//! answering. [`Notice::read`] tells the two kinds of error apart for the endpoint: a body
//! that is no document is refused, a document that is no notice it reads is kept
//! ([`Received::Unreadable`]).

//!
//! # Layout
//!
//! - `fields`: the flat field map both formats parse into, its typed getters and the
//!   canonical form the dedup key hashes; `xml` and `json` fill it.
//! - `kinds`: from the fields of a customer-contact, group, tag or directory
//!   (`change_contact`) event to a [`NoticeKind`].

mod fields;
mod json;
mod kinds;
mod xml;

use sha2::{Digest, Sha256};

pub(crate) use fields::Fields;
use kinds::{chat_kind, contact_kind, directory_kind, tag_kind};

/// Why a body could not be read as a notice (or as an outer encrypted envelope).
///
/// `Xml` and `Json` keep the reader's message as text, not the reader's error: callers
/// compare parse errors (`Clone + Eq`), and quick-xml's and serde_json's errors over an
/// in-memory body carry nothing beyond their message.
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
    /// `change_contact/create_user` or `update_user`: a member of staff, with the fields
    /// the notice carries (an update carries only what changed).
    StaffChanged {
        /// `UserID`.
        user_id: String,
        /// `NewUserID`: the member's userid was changed to this.
        new_user_id: Option<String>,
        /// `Name`.
        name: Option<String>,
        /// `Department`: every department the member is in.
        departments: Vec<i64>,
        /// `MainDepartment`.
        main_department: Option<i64>,
        /// `Position`.
        position: Option<String>,
        /// `Status`: 1 active, 2 disabled, 4 not activated, 5 exited.
        status: Option<i64>,
        /// True for `create_user`.
        created: bool,
    },
    /// `change_contact/delete_user`: the member left the corp.
    StaffDeleted {
        /// `UserID`.
        user_id: String,
    },
    /// `change_contact/create_party` or `update_party`: a department, with the fields the
    /// notice carries.
    DepartmentChanged {
        /// `Id`.
        id: i64,
        /// `Name`.
        name: Option<String>,
        /// `ParentId`.
        parent_id: Option<i64>,
        /// `Order`.
        order: Option<i64>,
        /// True for `create_party`.
        created: bool,
    },
    /// `change_contact/delete_party`.
    DepartmentDeleted {
        /// `Id`.
        id: i64,
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

/// A decrypted body as the endpoint takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A notice the engine reads.
    Notice(Notice),
    /// Well-formed, but not a notice the engine reads.
    Unreadable(Unreadable),
}

/// A well-formed document the parser cannot read as a notice: an older or newer format
/// (a group change without `ChangeType`), a field missing or malformed. Kept, not
/// refused: a refused delivery makes WeCom retry and then drop the notice, and no one
/// would ever learn it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// What the body says it is, as far as it says: `InfoType`, `Event` or `MsgType`,
    /// and `ChangeType` when present, joined by `/`.
    pub kind: String,
    /// The corp id the envelope names, when it names one as text.
    pub corp_id: Option<String>,
    /// What the parser missed.
    pub error: ParseError,
}

impl Received {
    /// The corp id the envelope names, if any: what the endpoint checks the tenant's
    /// against.
    pub fn corp_id(&self) -> Option<&str> {
        match self {
            Self::Notice(notice) => notice.envelope.corp_id(),
            Self::Unreadable(unreadable) => unreadable.corp_id.as_deref(),
        }
    }
}

const DEDUP_DOMAIN_FIELDS: &[u8] = b"wecom-notice-fields-v1\n";
const DEDUP_DOMAIN_RAW: &[u8] = b"wecom-notice-raw-v1\n";

impl Notice {
    /// Parses a decrypted notice, XML or JSON.
    pub fn parse(plaintext: &[u8]) -> Result<Self, ParseError> {
        Self::from_fields(&Fields::parse(plaintext)?)
    }

    /// Reads a decrypted body the way the endpoint takes it. `Err` only for a body that is
    /// no document at all (neither XML nor JSON, not well-formed, a field twice): nothing
    /// in it can be trusted to say what it is. A document that is not a notice the
    /// engine reads is [`Received::Unreadable`], with the parser's reason.
    pub fn read(plaintext: &[u8]) -> Result<Received, ParseError> {
        let fields = Fields::parse(plaintext)?;
        Ok(match Self::from_fields(&fields) {
            Ok(notice) => Received::Notice(notice),
            Err(error) => Received::Unreadable(Unreadable {
                kind: fields.label(),
                corp_id: fields.corp_id(),
                error,
            }),
        })
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
            "change_contact" => directory_kind(f, &event)?,
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
