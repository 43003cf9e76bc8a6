//! `scrm wecom`: a tenant's callback settings and its notice queue.

use clap::{Args, Subcommand};
use domain::values::TenantId;

use crate::config::DatabaseSettings;

#[derive(Debug, Subcommand)]
pub enum WecomCommand {
    /// Save (or replace) a tenant's callback: the token and EncodingAESKey from WeCom's
    /// callback page, the corp id, and the secret that lets the engine read WeCom's API
    /// for notices that do not carry the new state. Migrates first. Nothing secret is
    /// printed.
    Configure(WecomConfigureArgs),
    /// Put a tenant's unhandled or failed notices back in the queue (the `wecomNotices`
    /// query lists them with the reason): after configuring API credentials, or fixing
    /// what a domain rule refused. A running server applies them on its next tick.
    Retry(WecomRetryArgs),
}

#[derive(Debug, Args)]
pub struct WecomRetryArgs {
    #[arg(long)]
    pub tenant: String,
    /// Which notices: `unhandled` or `failed`.
    #[arg(long, value_parser = ["unhandled", "failed"])]
    pub status: String,
}

#[derive(Debug, Args)]
pub struct WecomConfigureArgs {
    #[arg(long)]
    pub tenant: String,
    /// The callback Token from WeCom's console.
    #[arg(long, env = "SCRM_WECOM_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The callback EncodingAESKey (43 characters).
    #[arg(long, env = "SCRM_WECOM_ENCODING_AES_KEY", hide_env_values = true)]
    pub encoding_aes_key: String,
    /// The tenant's corp id: checked against every notice's ToUserName/AuthCorpId and
    /// used to read the API.
    #[arg(long)]
    pub corp_id: String,
    /// A third-party app's suite id, when the ciphertexts end with it instead of the
    /// corp id.
    #[arg(long)]
    pub suite_id: Option<String>,
    /// A file holding the secret of an app that may read customer contacts (only its
    /// first line is used). Without it (or SCRM_WECOM_CORP_SECRET), notices that need
    /// an API read stay unhandled.
    #[arg(long, conflicts_with = "corp_secret")]
    pub corp_secret_file: Option<std::path::PathBuf>,
    /// The secret itself, from the environment only: a flag would show in `ps` and in
    /// shell history.
    #[arg(long = "corp-secret-from-env", env = "SCRM_WECOM_CORP_SECRET", hide = true,
          hide_env_values = true, value_parser = parse_secret)]
    pub corp_secret: Option<wecom::client::Secret>,
    /// Where WeCom's API is (default https://qyapi.weixin.qq.com), e.g. an egress proxy.
    #[arg(long)]
    pub api_base_url: Option<String>,
}

fn parse_secret(s: &str) -> Result<wecom::client::Secret, std::convert::Infallible> {
    Ok(wecom::client::Secret::new(s))
}

impl WecomConfigureArgs {
    /// The setup to store; reads the secret file.
    pub fn setup(&self) -> anyhow::Result<wecom::inbox::Setup> {
        use wecom::client::Secret;
        let secret = match (&self.corp_secret_file, &self.corp_secret) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("cannot read the corp secret file {}: {e}", path.display())
                })?;
                Some(Secret::new(text.lines().next().unwrap_or_default().trim()))
            }
            (None, secret) => secret.clone(),
        };
        Ok(wecom::inbox::Setup {
            token: self.token.clone(),
            encoding_aes_key: self.encoding_aes_key.clone(),
            receive_id: self
                .suite_id
                .clone()
                .unwrap_or_else(|| self.corp_id.clone()),
            corp_id: Some(self.corp_id.clone()),
            corp_secret: secret.filter(|s| !s.expose().is_empty()),
            api_base_url: self.api_base_url.clone(),
        })
    }
}

pub async fn run(settings: &DatabaseSettings, command: WecomCommand) -> anyhow::Result<()> {
    match command {
        WecomCommand::Configure(args) => {
            let tenant = TenantId::parse_slug(&args.tenant)?;
            let setup = args.setup()?;
            let (db, _) = settings.open_migrated().await?;
            wecom::inbox::configure_all(&db, &tenant, &setup).await?;
            println!(
                "configured WeCom callbacks for tenant {tenant}: URL /wecom/callback/{tenant}, \
                 corp id {}, receive id {}, API reads {}",
                args.corp_id,
                setup.receive_id,
                if setup.corp_secret.is_some() {
                    "on (secret stored, not shown)"
                } else {
                    "off (no corp secret)"
                }
            );
            db.close().await;
            Ok(())
        }
        WecomCommand::Retry(args) => {
            use wecom::inbox::{self, Status};
            let tenant = TenantId::parse_slug(&args.tenant)?;
            let status = if args.status == "failed" {
                Status::Failed
            } else {
                Status::Unhandled
            };
            let (db, _) = settings.open_migrated().await?;
            let n = inbox::retry(&db, &tenant, status).await?;
            println!(
                "{n} {} WeCom notices of tenant {tenant} queued again",
                args.status
            );
            db.close().await;
            Ok(())
        }
    }
}
