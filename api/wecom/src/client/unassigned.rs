//! `externalcontact/get_unassigned_list`: the customers WeCom itself holds for staff who
//! left and have not been handed over, as operations compare them with the engine's.

use serde::Deserialize;
use serde_json::json;

use super::{ClientError, TenantApi};

/// One customer of a departed member of staff, as WeCom lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Unassigned {
    pub handover_userid: String,
    pub external_userid: String,
    /// When the member of staff left (Unix seconds).
    #[serde(default)]
    pub dimission_time: i64,
}

/// One page of the list and the cursor of the next (none on the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnassignedPage {
    pub customers: Vec<Unassigned>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    info: Vec<Unassigned>,
    #[serde(default)]
    is_last: bool,
    #[serde(default)]
    next_cursor: String,
}

/// WeCom's largest page.
pub const MAX_PAGE: usize = 1_000;

impl TenantApi<'_> {
    /// `POST /cgi-bin/externalcontact/get_unassigned_list`, `page_size` at most 1,000.
    pub async fn unassigned(
        &self,
        cursor: Option<&str>,
        page_size: usize,
    ) -> Result<UnassignedPage, ClientError> {
        let body = json!({
            "cursor": cursor.unwrap_or_default(),
            "page_size": page_size.clamp(1, MAX_PAGE),
        });
        let answer: Answer = self
            .call(
                "/cgi-bin/externalcontact/get_unassigned_list",
                &[],
                Some(&body),
            )
            .await?;
        let last = answer.is_last || answer.next_cursor.is_empty();
        Ok(UnassignedPage {
            customers: answer.info,
            next_cursor: (!last).then_some(answer.next_cursor),
        })
    }
}
