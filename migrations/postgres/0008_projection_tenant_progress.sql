-- Each tenant's own progress in each projection: its events applied and the last of
-- them. Analysts of a tenant see these, not the deployment's figures (issue 14).
-- Written in the projection's transaction (projections/src/tally.rs).
CREATE TABLE projection_tenant_progress
(
    name      text   NOT NULL,
    tenant_id text   NOT NULL,
    events    bigint NOT NULL,
    txid      bigint NOT NULL,
    position  bigint NOT NULL,
    PRIMARY KEY (name, tenant_id)
);

-- Projections built before this table: their tenants' figures, counted once here.
INSERT INTO projection_tenant_progress (name, tenant_id, events, txid, position)
SELECT c.name, e.tenant_id, count(*), max(e.txid::text::bigint), max(e.position)
  FROM projection_checkpoints c
  JOIN events e ON (e.txid, e.position) <= (c.txid::text::xid8, c.position)
 GROUP BY c.name, e.tenant_id;

ALTER TABLE projection_tenant_progress ENABLE ROW LEVEL SECURITY;
ALTER TABLE projection_tenant_progress FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON projection_tenant_progress
    USING (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON projection_tenant_progress TO scrm_app;
