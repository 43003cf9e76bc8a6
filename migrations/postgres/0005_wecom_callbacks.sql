-- WeCom callbacks (issue 7): each tenant's callback keys, and an inbox where every
-- authenticated notice is stored before the endpoint answers `success`. WeCom delivers
-- at least once and gives up after three tries, so the inbox is what makes a notice
-- durable; processing into domain commands happens after the reply
-- (docs/adr/0008-wecom-inbox.md).

-- The three values saved on WeCom's callback page. One endpoint per tenant:
-- /wecom/callback/<tenant_id>.
CREATE TABLE wecom_callback_config
(
    tenant_id        text PRIMARY KEY,
    token            text        NOT NULL,
    encoding_aes_key text        NOT NULL,
    -- The corp id (self-built app) or suite id (third-party app) after each message.
    receive_id       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE wecom_inbox
(
    tenant_id    text        NOT NULL,
    -- Notice::dedup_key: equal for redeliveries of one notice, different for any two
    -- notices that differ in a field (two notices in one second for one user both land).
    dedup_key    text        NOT NULL,
    received_at  timestamptz NOT NULL,
    -- e.g. change_external_contact/add_external_contact.
    kind         text        NOT NULL,
    -- The decrypted plaintext, as WeCom sent it.
    payload      text        NOT NULL,
    status       text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processed', 'unhandled', 'failed')),
    processed_at timestamptz,
    -- Why a notice is unhandled, or the domain's rejection code for a failed one.
    error        text,
    PRIMARY KEY (tenant_id, dedup_key)
);
CREATE INDEX wecom_inbox_pending ON wecom_inbox (received_at) WHERE status = 'pending';

DO
$$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY ['wecom_callback_config', 'wecom_inbox']
        LOOP
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
            EXECUTE format(
                    'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''app.tenant_id'', true))',
                    t);
        END LOOP;
END
$$;
-- The inbox is readable by API reads; the keys are not (they are secrets only the
-- endpoint needs, and it runs as the owner).
GRANT SELECT ON wecom_inbox TO scrm_app;
