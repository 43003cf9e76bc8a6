//! WeCom (企业微信) callback endpoint.
//!
//! The pure parts are synchronous and side-effect free (no clock, no IO, no randomness), so the
//! HTTP handler only has to move bytes in and out:
//!
//! - [`crypto`]: signature check, AES-256-CBC envelope (`msg_encrypt`) open and seal, the outer
//!   POST body (`<xml><Encrypt>..` or `{"encrypt": ..}`) and the GET URL verification.
//! - [`notice`]: the decrypted notice (XML or JSON) as a typed [`Notice`], including the
//!   third-party `InfoType` envelope, plus a deduplication key.
//! - [`process::plan`]: which domain commands a notice maps to, which state it needs read
//!   from WeCom's API first, or why none; [`process::contact_steps`],
//!   [`process::chat_steps`] and [`process::tag_steps`]: the commands that bring the engine
//!   to the state the API answered.
//!
//! The edge around them: [`inbox`] (the tenant's keys and the stored notices),
//! [`intake`] (what the endpoint stores for a plaintext), the endpoint in the server
//! crate (`callback`, which stores each notice before answering), [`client`] (WeCom's
//! server API, with a per-tenant token cache) and [`process::process_pending`] (the API
//! reads and the commands, run after the reply and on every job tick). [`directory`]: the
//! corp's departments and staff as the engine's staff (the sync job, the store mapping). See docs/adr/0008-wecom-inbox.md
//! and docs/adr/0009-wecom-api-reads.md.
//!
//! # How the endpoint uses it
//!
//! GET (URL verification, sent when the callback URL is saved): URL-decode the query (`echostr`
//! contains `+`, `/` and `=`; decode `%XX` only, see [`crypto::percent_decode`]), call
//! [`CallbackKeys::verify_url`], and answer 200 with the returned plaintext as the whole body: no
//! quotes, no BOM, no trailing newline.
//!
//! POST (a notice): take `msg_signature`, `timestamp`, `nonce` from the query,
//! [`outer_encrypt`] the body, [`CallbackKeys::open`] (signature first, then decrypt), then
//! [`intake::Intake::read`] the plaintext (a well-formed notice the engine cannot apply
//! is kept as unhandled, not refused) and store it. Answer 200 with the body
//! `success` quickly (WeCom gives up after 5 s and redelivers), and do the work asynchronously.

pub mod campaign;
pub mod client;
pub mod crypto;
pub mod directory;
pub mod import;
pub mod inbox;
pub mod intake;
pub mod notice;
pub mod outbound;
pub mod process;
pub mod welcome;

pub use crypto::{outer_encrypt, percent_decode, signature, CallbackKeys, CryptoError};
pub use notice::{
    ChatUpdate, Envelope, Notice, NoticeKind, ParseError, Received, TagType, TransferFailReason,
    Unreadable,
};
pub use outbound::{OutboundSettings, OutboxTick};
pub use process::{process_pending, InboxTick};
