-- Handovers as jobs (一键继承): see migrations/postgres/0004_handover_jobs.sql.
ALTER TABLE jobs ADD COLUMN subject text;
ALTER TABLE jobs ADD COLUMN outcomes text NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN next_run_at text;
CREATE UNIQUE INDEX jobs_one_unfinished_per_subject ON jobs (tenant_id, kind, subject)
    WHERE subject IS NOT NULL AND status IN ('queued', 'running');
CREATE INDEX jobs_next_run ON jobs (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE handover_items
(
    tenant_id   text    NOT NULL,
    job_id      text    NOT NULL,
    kind        text    NOT NULL,
    item_id     text    NOT NULL,
    to_staff_id text,
    batch       integer,
    due_day     text,
    handover_id text,
    code        text    NOT NULL,
    status      integer NOT NULL,
    updated_at  text    NOT NULL,
    PRIMARY KEY (tenant_id, job_id, kind, item_id)
) STRICT;
CREATE INDEX handover_items_todo ON handover_items (tenant_id, job_id, code, batch);
CREATE INDEX handover_items_waiting ON handover_items (tenant_id, item_id, handover_id)
    WHERE code = 'REQUESTED';
