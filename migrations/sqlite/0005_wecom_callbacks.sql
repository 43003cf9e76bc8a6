-- WeCom callbacks: see migrations/postgres/0005_wecom_callbacks.sql.
CREATE TABLE wecom_callback_config
(
    tenant_id        text PRIMARY KEY,
    token            text NOT NULL,
    encoding_aes_key text NOT NULL,
    receive_id       text NOT NULL,
    created_at       text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE wecom_inbox
(
    tenant_id    text NOT NULL,
    dedup_key    text NOT NULL,
    received_at  text NOT NULL,
    kind         text NOT NULL,
    payload      text NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processed', 'unhandled', 'failed')),
    processed_at text,
    error        text,
    PRIMARY KEY (tenant_id, dedup_key)
) STRICT;
CREATE INDEX wecom_inbox_pending ON wecom_inbox (received_at) WHERE status = 'pending';
