-- The first import from WeCom: see migrations/postgres/0014_wecom_import.sql.
CREATE TABLE wecom_import
(
    tenant_id          text    NOT NULL,
    job_id             text    NOT NULL,
    phase              text    NOT NULL,
    staff              text    NOT NULL DEFAULT '[]',
    chunk              integer NOT NULL DEFAULT 0,
    cursor             text    NOT NULL DEFAULT '',
    relations_seen     integer NOT NULL DEFAULT 0,
    relations_imported integer NOT NULL DEFAULT 0,
    events             integer NOT NULL DEFAULT 0,
    groups             integer NOT NULL DEFAULT 0,
    rejected           integer NOT NULL DEFAULT 0,
    throttled          integer NOT NULL DEFAULT 0,
    updated_at         text    NOT NULL,
    PRIMARY KEY (tenant_id, job_id)
);
