-- Handovers as jobs (一键继承). A handover job plans once, writes one row per customer
-- and group it will move (or reports why it cannot), then works through them in
-- WeCom-sized batches; each batch updates its rows and the job's progress in one
-- transaction, so a restarted server resumes exactly where the job stopped.

-- What the job is about (e.g. the departing staff member): at most one job of a kind
-- per subject may be unfinished, so a second start finds the first.
ALTER TABLE jobs ADD COLUMN subject text;
-- Counts by outcome, as JSON: [{"kind","status","code","count"}].
ALTER TABLE jobs ADD COLUMN outcomes text NOT NULL DEFAULT '[]';
-- A running job with nothing to do before this instant (tomorrow's group transfers).
ALTER TABLE jobs ADD COLUMN next_run_at timestamptz;
CREATE UNIQUE INDEX jobs_one_unfinished_per_subject ON jobs (tenant_id, kind, subject)
    WHERE subject IS NOT NULL AND status IN ('queued', 'running');
CREATE INDEX jobs_next_run ON jobs (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE handover_items
(
    tenant_id   text   NOT NULL,
    job_id      text   NOT NULL,
    -- 'customer' or 'group'.
    kind        text   NOT NULL,
    -- The customer's external_userid or the group's chat_id.
    item_id     text   NOT NULL,
    -- Null when the plan found no successor for it.
    to_staff_id text,
    -- The WeCom-sized batch it runs in (null when it does not run).
    batch       bigint,
    -- Groups: the tenant-local day (YYYY-MM-DD) it may move on.
    due_day     text,
    -- Customers: the handover requested (derived from job and customer).
    handover_id text,
    -- PLANNED, SCHEDULED, REQUESTED, ACCEPTED, REFUSED_CUSTOMER, REFUSED_LIMIT,
    -- TRANSFERRED, or the domain's code for why not (HANDOVER_LIMIT_REACHED, ...).
    code        text   NOT NULL,
    -- WeCom's status: 1 accepted, 2 waiting, 3 refused, 4 successor at limit, 5 no record.
    status      integer NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, job_id, kind, item_id)
);
CREATE INDEX handover_items_todo ON handover_items (tenant_id, job_id, code, batch);
CREATE INDEX handover_items_waiting ON handover_items (tenant_id, item_id, handover_id)
    WHERE code = 'REQUESTED';

ALTER TABLE handover_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE handover_items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON handover_items
    USING (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON handover_items TO scrm_app;
