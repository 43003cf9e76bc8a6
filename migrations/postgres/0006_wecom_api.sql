-- WeCom API reads for thin notices (issue 7): a notice that does not carry the new state
-- (an edited remark, a new group, a renamed tag, ...) is applied by reading that state
-- from WeCom's server API. See docs/adr/0009-wecom-api-reads.md.

-- The tenant's corp id, checked against every notice's envelope (ToUserName or
-- AuthCorpId) when set, and used with the secret to get an access token. The secret
-- and the base URL override stay in this table, which scrm_app cannot read (0005).
ALTER TABLE wecom_callback_config
    ADD COLUMN corp_id      text,
    ADD COLUMN corp_secret  text,
    -- Default https://qyapi.weixin.qq.com; set for a proxy or a test server.
    ADD COLUMN api_base_url text;

-- A notice whose API read failed stays pending and is retried from next_attempt_at,
-- with a bounded backoff, until it is marked failed after the last attempt. The state
-- read is kept in `fetched`, so a notice processed again (a crash after the read) is
-- applied from the same read and WeCom is not asked twice.
ALTER TABLE wecom_inbox
    ADD COLUMN attempts        bigint  NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN fetched         text;
