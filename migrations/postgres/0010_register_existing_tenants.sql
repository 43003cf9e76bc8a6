-- Since 0007 only registered tenants are served. A deployment from before registered
-- only the tenants `scrm seed` made; register every tenant it already serves, found
-- where it is cheap to look (the per-tenant projection progress 0008 counted, API keys,
-- WeCom callbacks, jobs), so an upgrade locks nobody out. `scrm tenant disable` is how
-- a tenant stops being served.
INSERT INTO tenants (tenant_id, name)
SELECT tenant_id, tenant_id
  FROM (SELECT tenant_id FROM projection_tenant_progress
        UNION SELECT tenant_id FROM api_keys
        UNION SELECT tenant_id FROM wecom_callback_config
        UNION SELECT tenant_id FROM jobs) known
-- (WHERE true: SQLite needs it to tell an upsert from a join condition.)
 WHERE true
ON CONFLICT (tenant_id) DO NOTHING;
