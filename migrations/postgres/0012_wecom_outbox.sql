-- One outbound path to WeCom (issue 16, docs/adr/0013-wecom-outbox.md). A command whose
-- event asks WeCom to act (a handover's transfer, a group's transfer) writes its call
-- here in the same transaction as that event, so a call exists exactly when the event
-- does. The outbound runner sends due calls, retries with backoff, and keeps WeCom's
-- answer on the row; the events that follow from the answer carry the call's id as
-- their idempotency key, so an answer applied twice appends nothing.
CREATE TABLE wecom_outbox
(
    tenant_id       text        NOT NULL,
    -- Derived from what is asked (job, batch, customers): the same on every replay.
    call_id         text        NOT NULL,
    -- The API, e.g. 'resigned/transfer_customer', 'groupchat/transfer'.
    api             text        NOT NULL,
    -- What the call belongs to, e.g. the handover job's id.
    subject         text,
    -- The JSON body WeCom receives.
    request         text        NOT NULL,
    -- pending: to send (again) from next_attempt_at; sending: sent, answer not yet
    -- recorded (a crash leaves it here, and the next attempt first asks WeCom what
    -- happened); done: answered, `answer` holds WeCom's answer; failed: given up.
    status          text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'done', 'failed')),
    attempts        bigint      NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    answer          text,
    error           text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, call_id)
);
CREATE INDEX wecom_outbox_due ON wecom_outbox (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX wecom_outbox_subject ON wecom_outbox (tenant_id, subject, created_at);

ALTER TABLE wecom_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE wecom_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON wecom_outbox
    USING (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON wecom_outbox TO scrm_app;
