-- Welcome messages and channel codes: see migrations/postgres/0016_welcome_and_channel_codes.sql.
CREATE TABLE welcome_messages
(
    tenant_id         text    NOT NULL,
    state             text    NOT NULL,
    text              text    NOT NULL,
    attachments       text    NOT NULL DEFAULT '[]',
    coupon_campaign   text,
    coupon_value_fen  integer,
    coupon_valid_days integer,
    updated_at        text    NOT NULL,
    PRIMARY KEY (tenant_id, state)
) STRICT;

CREATE TABLE welcome_sends
(
    tenant_id         text    NOT NULL,
    call_id           text    NOT NULL,
    customer_id       text    NOT NULL,
    staff_id          text    NOT NULL,
    state             text,
    coupon_campaign   text,
    coupon_value_fen  integer,
    coupon_valid_days integer,
    outcome           text    NOT NULL,
    notice_at         text    NOT NULL,
    updated_at        text    NOT NULL,
    PRIMARY KEY (tenant_id, call_id)
) STRICT;
CREATE INDEX welcome_sends_customer ON welcome_sends (tenant_id, customer_id);

CREATE TABLE channel_codes
(
    tenant_id   text    NOT NULL,
    state       text    NOT NULL,
    name        text    NOT NULL,
    staff_ids   text    NOT NULL,
    skip_verify integer NOT NULL,
    config_id   text,
    qr_code     text,
    status      text    NOT NULL,
    error       text,
    created_at  text    NOT NULL,
    updated_at  text    NOT NULL,
    disabled_at text,
    PRIMARY KEY (tenant_id, state)
) STRICT;
CREATE INDEX channel_codes_created ON channel_codes (tenant_id, created_at, state);
