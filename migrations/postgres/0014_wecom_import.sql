-- The first import from WeCom (issue 16): where a tenant's import job stands, so a
-- restarted server resumes at the page it stopped at, and what it brought in so far.
-- One row per import job; the job's own row (jobs) keeps status and progress.
-- See docs/adr/0015-wecom-import.md.
CREATE TABLE wecom_import
(
    tenant_id  text        NOT NULL,
    job_id     text        NOT NULL,
    -- 'tags', 'staff', 'customers', 'groups', then 'done'.
    phase      text        NOT NULL,
    -- The staff with customers (get_follow_user_list) as a JSON array, read once so
    -- that a resumed job pages through the same list.
    staff      text        NOT NULL DEFAULT '[]',
    -- Customers: which slice of 100 staff is being paged through.
    chunk      bigint      NOT NULL DEFAULT 0,
    -- The cursor of the next page to read in this phase ('' for the first).
    cursor     text        NOT NULL DEFAULT '',
    -- Relations listed by WeCom, relations that appended events, and those events.
    relations_seen     bigint NOT NULL DEFAULT 0,
    relations_imported bigint NOT NULL DEFAULT 0,
    events             bigint NOT NULL DEFAULT 0,
    groups             bigint NOT NULL DEFAULT 0,
    -- Relations, group steps or tags the domain refused (a bad id, a full group).
    rejected           bigint NOT NULL DEFAULT 0,
    -- Answers that asked to slow down (45009, 45011, 45033).
    throttled          bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, job_id)
);

ALTER TABLE wecom_import ENABLE ROW LEVEL SECURITY;
ALTER TABLE wecom_import FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON wecom_import
    USING (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON wecom_import TO scrm_app;
