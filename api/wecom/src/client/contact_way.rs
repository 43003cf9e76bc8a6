//! The 「联系我」 reads: `list_contact_way` pages the ids of the codes made in a time
//! range, `get_contact_way` says what one of them is (its `state`). The outbound path
//! uses them to find a code an `add_contact_way` whose answer was lost made.

use serde::Deserialize;
use serde_json::json;

use super::{ClientError, TenantApi};

/// `list_contact_way`'s largest page.
pub const MAX_PAGE: usize = 1_000;

/// A code as `get_contact_way` describes it (the fields the engine reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContactWay {
    pub config_id: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub qr_code: String,
}

#[derive(Deserialize)]
struct Listed {
    config_id: String,
}

#[derive(Deserialize)]
struct ListAnswer {
    #[serde(default)]
    contact_way: Vec<Listed>,
    #[serde(default)]
    next_cursor: String,
}

#[derive(Deserialize)]
struct GetAnswer {
    contact_way: ContactWay,
}

impl TenantApi<'_> {
    /// `POST /cgi-bin/externalcontact/list_contact_way`: every code made between `start`
    /// and `end` (Unix seconds), page after page.
    pub async fn contact_way_ids(&self, start: i64, end: i64) -> Result<Vec<String>, ClientError> {
        let mut ids = Vec::new();
        let mut cursor = String::new();
        loop {
            let body = json!({ "start_time": start, "end_time": end,
                               "cursor": cursor, "limit": MAX_PAGE });
            let page: ListAnswer = self
                .call(
                    "/cgi-bin/externalcontact/list_contact_way",
                    &[],
                    Some(&body),
                )
                .await?;
            ids.extend(page.contact_way.into_iter().map(|c| c.config_id));
            if page.next_cursor.is_empty() {
                return Ok(ids);
            }
            cursor = page.next_cursor;
        }
    }

    /// `POST /cgi-bin/externalcontact/get_contact_way`: the code `config_id`.
    pub async fn contact_way(&self, config_id: &str) -> Result<ContactWay, ClientError> {
        let body = json!({ "config_id": config_id });
        let answer: GetAnswer = self
            .call("/cgi-bin/externalcontact/get_contact_way", &[], Some(&body))
            .await?;
        Ok(answer.contact_way)
    }
}
