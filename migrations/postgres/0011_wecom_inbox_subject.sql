-- The notices about one subject (a customer, a group, the tag library: its local id)
-- apply in arrival order (issue 16). A notice that failed and waits for a retry holds
-- back the later notices of its subject and of nothing else, so one notice that keeps
-- failing delays its own customer, not every tenant's inbox. Rows stored before this
-- have no subject and are not held back.
ALTER TABLE wecom_inbox ADD COLUMN subject text;
CREATE INDEX wecom_inbox_waiting ON wecom_inbox (tenant_id, subject, received_at)
    WHERE status = 'pending';
