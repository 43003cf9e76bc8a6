-- One outbound path to WeCom: see migrations/postgres/0012_wecom_outbox.sql.
CREATE TABLE wecom_outbox
(
    tenant_id       text    NOT NULL,
    call_id         text    NOT NULL,
    api             text    NOT NULL,
    subject         text,
    request         text    NOT NULL,
    status          text    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'done', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at text    NOT NULL,
    answer          text,
    error           text,
    created_at      text    NOT NULL,
    updated_at      text    NOT NULL,
    PRIMARY KEY (tenant_id, call_id)
) STRICT;
CREATE INDEX wecom_outbox_due ON wecom_outbox (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX wecom_outbox_subject ON wecom_outbox (tenant_id, subject, created_at);
