-- Campaigns (issue 18, docs/adr/0019-campaigns.md): a mass message (群发) or an
-- enterprise Moment (朋友圈) to an audience, run as a job. The job plans page by page
-- and writes one row per customer of the audience: sent by which guide in which WeCom
-- call, held out to measure what the campaign brought back, or skipped with the reason.
-- WeCom's answers and results move each row to its outcome. The rows are operational
-- state like the handover's items (never rebuilt); the log holds the deliveries.
CREATE TABLE campaigns
(
    tenant_id  text        NOT NULL,
    job_id     text        NOT NULL,
    -- 'mass_message' or 'moment'.
    kind       text        NOT NULL,
    send_at    timestamptz NOT NULL,
    -- Set once every customer of the audience has its row.
    planned_at timestamptz,
    -- Set once every planned customer is in a WeCom call.
    called_at  timestamptz,
    -- Set once every customer held out has it in their stream.
    held_at    timestamptz,
    PRIMARY KEY (tenant_id, job_id)
);

CREATE TABLE campaign_items
(
    tenant_id    text        NOT NULL,
    job_id       text        NOT NULL,
    customer_id  text        NOT NULL,
    kind         text        NOT NULL,
    -- The guide who sends it (null when nobody can).
    sender_id    text,
    -- The outbox call it is sent in, once grouped into one.
    call_id      text,
    send_at      timestamptz NOT NULL,
    -- PLANNED, SENT (WeCom holds the task), DELIVERED, HELD_OUT, NO_GUIDE,
    -- REACHED_TODAY, NOT_FRIEND, ALREADY_RECEIVED, UNCONFIRMED, CALL_FAILED,
    -- WECOM_<errcode>, or the domain's code for a refused delivery.
    outcome      text        NOT NULL,
    delivered_at timestamptz,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, job_id, customer_id)
);
-- What reached a customer lately, across campaigns: the one-a-day rule's facts.
CREATE INDEX campaign_items_customer ON campaign_items (tenant_id, customer_id, kind, send_at);
CREATE INDEX campaign_items_call ON campaign_items (tenant_id, job_id, call_id, outcome);
CREATE INDEX campaign_items_sender ON campaign_items (tenant_id, job_id, outcome, sender_id, customer_id);

ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
ALTER TABLE campaigns FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON campaigns
    USING (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON campaigns TO scrm_app;
ALTER TABLE campaign_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE campaign_items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON campaign_items
    USING (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON campaign_items TO scrm_app;
