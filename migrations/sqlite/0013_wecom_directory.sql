-- The corp's WeCom directory: see migrations/postgres/0013_wecom_directory.sql.
CREATE TABLE wecom_departments
(
    tenant_id     text    NOT NULL,
    department_id integer NOT NULL,
    name          text    NOT NULL,
    parent_id     integer NOT NULL,
    sort_order    integer NOT NULL DEFAULT 0,
    updated_at    text    NOT NULL,
    PRIMARY KEY (tenant_id, department_id)
) STRICT;

CREATE TABLE wecom_department_stores
(
    tenant_id     text    NOT NULL,
    department_id integer NOT NULL,
    store_id      text    NOT NULL,
    mapped_by     text    NOT NULL,
    mapped_at     text    NOT NULL,
    PRIMARY KEY (tenant_id, department_id)
) STRICT;
