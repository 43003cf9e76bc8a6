-- The tenant's default language: see migrations/postgres/0018_tenant_locale.sql.
ALTER TABLE tenants ADD COLUMN locale text NOT NULL DEFAULT 'zh-CN' CHECK (locale IN ('zh-CN', 'en'));
