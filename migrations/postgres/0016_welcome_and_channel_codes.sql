-- Welcome messages and channel codes (issue 18, docs/adr/0020-welcome-and-channel-codes.md).
--
-- A welcome message is the tenant's (state '') or a channel code's (its state): what the
-- engine sends through send_welcome_msg when a friend-add notice carries a welcome code.
-- Operational settings, not read models: nothing here is rebuilt from the log.
CREATE TABLE welcome_messages
(
    tenant_id         text        NOT NULL,
    -- '' for the tenant's own; otherwise the channel code's state.
    state             text        NOT NULL,
    text              text        NOT NULL,
    -- WeCom-shaped attachments (image, link, mini-program card), a JSON array.
    attachments       text        NOT NULL DEFAULT '[]',
    -- A coupon issued to the customer once WeCom has accepted the welcome.
    coupon_campaign   text,
    coupon_value_fen  bigint,
    coupon_valid_days integer,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, state)
);

-- One welcome per friend-add's welcome code: the row is written with the call, in one
-- transaction, so a code is sent at most once however often WeCom delivers its notice.
CREATE TABLE welcome_sends
(
    tenant_id         text        NOT NULL,
    call_id           text        NOT NULL,
    customer_id       text        NOT NULL,
    staff_id          text        NOT NULL,
    state             text,
    coupon_campaign   text,
    coupon_value_fen  bigint,
    coupon_valid_days integer,
    -- SENDING, SENT (WeCom accepted it), WECOM_<errcode>, NO_ANSWER.
    outcome           text        NOT NULL,
    notice_at         timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, call_id)
);
CREATE INDEX welcome_sends_customer ON welcome_sends (tenant_id, customer_id);

-- A 「联系我」 code made through add_contact_way: a friend-add through it carries its
-- state, which attributes the customer to the channel.
CREATE TABLE channel_codes
(
    tenant_id   text        NOT NULL,
    state       text        NOT NULL,
    name        text        NOT NULL,
    -- The guides who answer it, a JSON array of WeCom userids.
    staff_ids   text        NOT NULL,
    skip_verify boolean     NOT NULL,
    -- WeCom's id and QR code image, once it answered.
    config_id   text,
    qr_code     text,
    -- CREATING, ACTIVE, REFUSED, DISABLING, DISABLED.
    status      text        NOT NULL,
    error       text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    disabled_at timestamptz,
    PRIMARY KEY (tenant_id, state)
);
CREATE INDEX channel_codes_created ON channel_codes (tenant_id, created_at, state);

DO $$
    DECLARE
        t text;
    BEGIN
        FOREACH t IN ARRAY ARRAY ['welcome_messages', 'welcome_sends', 'channel_codes']
            LOOP
                EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
                EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
                EXECUTE format(
                    'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''app.tenant_id'', true))',
                    t);
                EXECUTE format('GRANT SELECT ON %I TO scrm_app', t);
            END LOOP;
    END
$$;
