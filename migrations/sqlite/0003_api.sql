-- What the API adds: API keys, tenant-wide idempotency keys and jobs. The embedded
-- backend has no row-level security: every query carries its tenant predicate.
CREATE TABLE api_keys
(
    tenant_id     text NOT NULL,
    key_id        text NOT NULL,
    name          text NOT NULL,
    secret_sha256 text NOT NULL,
    role          text NOT NULL,
    scopes        text NOT NULL DEFAULT '',
    created_at    text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    revoked_at    text,
    PRIMARY KEY (tenant_id, key_id)
) STRICT;

CREATE TABLE idempotency_keys
(
    tenant_id    text NOT NULL,
    key          text NOT NULL,
    operation    text NOT NULL,
    request_hash text NOT NULL,
    response     text NOT NULL,
    created_at   text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, key)
) STRICT;

CREATE TABLE jobs
(
    tenant_id       text    NOT NULL,
    job_id          text    NOT NULL,
    kind            text    NOT NULL,
    status          text    NOT NULL,
    input           text    NOT NULL DEFAULT '{}',
    created_by      text    NOT NULL,
    idempotency_key text,
    progress_done   integer NOT NULL DEFAULT 0,
    progress_total  integer NOT NULL DEFAULT 0,
    error_code      text,
    created_at      text    NOT NULL,
    started_at      text,
    finished_at     text,
    PRIMARY KEY (tenant_id, job_id),
    UNIQUE (tenant_id, idempotency_key)
) STRICT;
CREATE INDEX jobs_status ON jobs (status, created_at);
