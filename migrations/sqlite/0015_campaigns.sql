-- Campaigns: see migrations/postgres/0015_campaigns.sql.
CREATE TABLE campaigns
(
    tenant_id  text NOT NULL,
    job_id     text NOT NULL,
    kind       text NOT NULL,
    send_at    text NOT NULL,
    planned_at text,
    called_at  text,
    held_at    text,
    PRIMARY KEY (tenant_id, job_id)
) STRICT;

CREATE TABLE campaign_items
(
    tenant_id    text NOT NULL,
    job_id       text NOT NULL,
    customer_id  text NOT NULL,
    kind         text NOT NULL,
    sender_id    text,
    call_id      text,
    send_at      text NOT NULL,
    outcome      text NOT NULL,
    delivered_at text,
    updated_at   text NOT NULL,
    PRIMARY KEY (tenant_id, job_id, customer_id)
) STRICT;
CREATE INDEX campaign_items_customer ON campaign_items (tenant_id, customer_id, kind, send_at);
CREATE INDEX campaign_items_call ON campaign_items (tenant_id, job_id, call_id, outcome);
CREATE INDEX campaign_items_sender ON campaign_items (tenant_id, job_id, outcome, sender_id, customer_id);
