-- The language a tenant's people read the engine's descriptions in (the timeline's
-- summaries) unless a request asks for another: a tenant whose guides read English is
-- set once by its admin instead of every client asking on every request (issue 20).
ALTER TABLE tenants ADD COLUMN locale text NOT NULL DEFAULT 'zh-CN' CHECK (locale IN ('zh-CN', 'en'));
