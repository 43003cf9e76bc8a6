-- The subject a notice applies in order with: see migrations/postgres/0011_wecom_inbox_subject.sql.
ALTER TABLE wecom_inbox ADD COLUMN subject text;
CREATE INDEX wecom_inbox_waiting ON wecom_inbox (tenant_id, subject, received_at)
    WHERE status = 'pending';
