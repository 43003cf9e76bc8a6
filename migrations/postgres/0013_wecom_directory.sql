-- The corp's WeCom directory (issue 16): its departments as the last directory sync or
-- change_contact notice left them, and which store operations say each department is.
-- A staff member's store is the mapped store of their main department; an unmapped
-- department's staff are in the store `dept-<id>` (docs/adr/0014-wecom-directory.md).

CREATE TABLE wecom_departments
(
    tenant_id     text        NOT NULL,
    department_id bigint      NOT NULL,
    name          text        NOT NULL,
    -- 0 for the root department.
    parent_id     bigint      NOT NULL,
    sort_order    bigint      NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, department_id)
);

-- Kept apart from the departments so a mapping made before the first sync, or one of
-- a department deleted and created again, is not lost.
CREATE TABLE wecom_department_stores
(
    tenant_id     text        NOT NULL,
    department_id bigint      NOT NULL,
    store_id      text        NOT NULL,
    mapped_by     text        NOT NULL,
    mapped_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, department_id)
);

ALTER TABLE wecom_departments ENABLE ROW LEVEL SECURITY;
ALTER TABLE wecom_departments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON wecom_departments
    USING (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON wecom_departments TO scrm_app;

ALTER TABLE wecom_department_stores ENABLE ROW LEVEL SECURITY;
ALTER TABLE wecom_department_stores FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON wecom_department_stores
    USING (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON wecom_department_stores TO scrm_app;
