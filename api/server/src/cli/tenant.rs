//! `scrm tenant`: register, disable and enable tenants.

use clap::Subcommand;
use domain::values::TenantId;
use engine::db::Database;
use engine::tenants::NewTenant;

use crate::config::DatabaseSettings;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register a tenant (migrates first). Nothing changes if it exists.
    Create {
        #[arg(long)]
        tenant: String,
        /// The name people read, e.g. the chain's.
        #[arg(long)]
        name: String,
        /// The IANA zone its calendar days (daily WeCom limits) are counted in.
        #[arg(long, default_value = "Asia/Shanghai")]
        time_zone: chrono_tz::Tz,
        /// Members a customer group holds (WeCom's default 500; up to 2,000).
        #[arg(long, default_value_t = engine::tenants::DEFAULT_GROUP_CAPACITY,
              value_parser = clap::value_parser!(u32).range(1..=2000))]
        group_capacity: u32,
        /// The language its people read descriptions in (timelines) unless a request
        /// names one; an admin changes it later with `setTenantLanguage`.
        #[arg(long, default_value = engine::tenants::ZH_CN,
              value_parser = clap::builder::PossibleValuesParser::new(
                  engine::tenants::LOCALES.iter().copied()))]
        locale: String,
    },
    /// Stop serving a tenant: its tokens and keys are refused, its data stays.
    Disable {
        #[arg(long)]
        tenant: String,
    },
    /// Serve a disabled tenant again.
    Enable {
        #[arg(long)]
        tenant: String,
    },
}

pub async fn run(settings: &DatabaseSettings, command: TenantCommand) -> anyhow::Result<()> {
    let (db, _) = settings.open_migrated().await?;
    let outcome = match command {
        TenantCommand::Create {
            tenant,
            name,
            time_zone,
            group_capacity,
            locale,
        } => {
            let tenant = TenantId::parse_slug(&tenant)?;
            let locale = engine::tenants::LOCALES
                .iter()
                .copied()
                .find(|l| *l == locale)
                .ok_or_else(|| anyhow::anyhow!("unknown locale {locale}: zh-CN or en"))?;
            let new = NewTenant {
                tenant: tenant.clone(),
                name,
                time_zone,
                group_capacity,
                locale,
            };
            if engine::tenants::create(&db, &new).await? {
                println!("registered tenant {tenant}");
            } else {
                println!("tenant {tenant} exists; left as it was");
            }
            Ok(())
        }
        TenantCommand::Disable { tenant } => {
            let tenant = TenantId::parse_slug(&tenant)?;
            switch(&db, &tenant, Some(chrono::Utc::now())).await
        }
        TenantCommand::Enable { tenant } => {
            let tenant = TenantId::parse_slug(&tenant)?;
            switch(&db, &tenant, None).await
        }
    };
    db.close().await;
    outcome
}

async fn switch(
    db: &Database,
    tenant: &TenantId,
    disabled_at: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<()> {
    if !engine::tenants::set_disabled(db, tenant, disabled_at).await? {
        anyhow::bail!("no tenant {tenant}");
    }
    let state = if disabled_at.is_some() {
        "disabled"
    } else {
        "enabled"
    };
    println!("tenant {tenant} {state}");
    Ok(())
}
