-- WeCom API reads: see migrations/postgres/0006_wecom_api.sql.
ALTER TABLE wecom_callback_config ADD COLUMN corp_id text;
ALTER TABLE wecom_callback_config ADD COLUMN corp_secret text;
ALTER TABLE wecom_callback_config ADD COLUMN api_base_url text;

ALTER TABLE wecom_inbox ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE wecom_inbox ADD COLUMN next_attempt_at text;
ALTER TABLE wecom_inbox ADD COLUMN fetched text;
