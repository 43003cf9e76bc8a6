-- Where each projection stands in the global order, and which code version built its
-- tables. Updated in the same transaction as the projection's rows.
CREATE TABLE projection_checkpoints
(
    name       text PRIMARY KEY,
    version    bigint      NOT NULL,
    txid       bigint      NOT NULL DEFAULT 0,
    position   bigint      NOT NULL DEFAULT 0,
    events     bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Wakes catch-up readers at commit; a poll covers anything missed.
CREATE FUNCTION notify_events() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('scrm_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events();
