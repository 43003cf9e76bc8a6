-- What the API adds: API keys, tenant-wide idempotency keys and jobs, and the second
-- wall between tenants: row-level security for the role every API read runs as.
--
-- `scrm_app` is the role API reads switch to inside their transaction
-- (`set_config('role', 'scrm_app', true)`, next to `app.tenant_id`). It cannot log in,
-- owns nothing, is not a superuser and does not bypass RLS, so a query that forgot its
-- tenant predicate still sees one tenant only. Roles are cluster-wide: creating it must
-- tolerate another database's migration doing the same at the same moment.
DO
$$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scrm_app') THEN
        BEGIN
            CREATE ROLE scrm_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    -- The owner may switch to it (a superuser always can).
    IF NOT pg_has_role(current_user, 'scrm_app', 'MEMBER') THEN
        EXECUTE format('GRANT scrm_app TO %I', current_user);
    END IF;
END
$$;

CREATE TABLE api_keys
(
    tenant_id     text        NOT NULL,
    key_id        text        NOT NULL,
    name          text        NOT NULL,
    -- SHA-256 of the secret part; the secret itself is shown once and never stored.
    secret_sha256 text        NOT NULL,
    role          text        NOT NULL,
    scopes        text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    PRIMARY KEY (tenant_id, key_id)
);

-- A mutation's answer, kept under the caller's key so a retry gets the same answer.
CREATE TABLE idempotency_keys
(
    tenant_id    text        NOT NULL,
    key          text        NOT NULL,
    operation    text        NOT NULL,
    request_hash text        NOT NULL,
    response     text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- Long work (projection rebuilds, handovers) as rows the API can read.
CREATE TABLE jobs
(
    tenant_id       text        NOT NULL,
    job_id          text        NOT NULL,
    kind            text        NOT NULL,
    status          text        NOT NULL,
    input           text        NOT NULL DEFAULT '{}',
    created_by      text        NOT NULL,
    idempotency_key text,
    progress_done   bigint      NOT NULL DEFAULT 0,
    progress_total  bigint      NOT NULL DEFAULT 0,
    error_code      text,
    created_at      timestamptz NOT NULL,
    started_at      timestamptz,
    finished_at     timestamptz,
    PRIMARY KEY (tenant_id, job_id),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX jobs_status ON jobs (status, created_at);

-- Row-level security on every tenant table of the schema; read-model tables get the
-- same policy when the projections create them (projections::table::isolation_sql).
DO
$$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY ['events', 'tenants', 'api_keys', 'idempotency_keys', 'jobs']
        LOOP
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
            EXECUTE format(
                    'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''app.tenant_id'', true))',
                    t);
        END LOOP;
END
$$;

GRANT SELECT ON events, tenants, jobs TO scrm_app;
GRANT SELECT, INSERT ON idempotency_keys TO scrm_app;
