-- Each tenant's own progress in each projection: its events applied and the last of
-- them. Analysts of a tenant see these, not the deployment's figures (issue 14).
-- Written in the projection's transaction (projections/src/tally.rs).
CREATE TABLE projection_tenant_progress
(
    name      text   NOT NULL,
    tenant_id text   NOT NULL,
    events    integer NOT NULL,
    txid      integer NOT NULL,
    position  integer NOT NULL,
    PRIMARY KEY (name, tenant_id)
) STRICT;

-- Projections built before this table: their tenants' figures, counted once here.
INSERT INTO projection_tenant_progress (name, tenant_id, events, txid, position)
SELECT c.name, e.tenant_id, count(*), 0, max(e.position)
  FROM projection_checkpoints c
  JOIN events e ON e.position <= c.position
 GROUP BY c.name, e.tenant_id;
