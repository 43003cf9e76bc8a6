//! The calls the outbound runner makes: any documented POST, answered as WeCom's JSON.

use serde_json::Value;

use super::{ClientError, TenantApi};

impl TenantApi<'_> {
    /// `POST /cgi-bin/<api>` with `body`; WeCom's whole answer when its `errcode` is 0.
    pub async fn post(&self, api: &str, body: &Value) -> Result<Value, ClientError> {
        self.call(&format!("/cgi-bin/{api}"), &[], Some(body)).await
    }
}
