-- Run after every migration when the database is a Citus coordinator (docs/adr/0018-citus.md).
-- Idempotent: it checks what is already done.
--
-- The log is distributed by stream: every key of `events` includes aggregate_id, and a
-- command appends to one stream, so an append is routed to one shard and commits there.
-- Everything else (read models, jobs, checkpoints, the WeCom inbox and outbox) stays on
-- the coordinator: it is small next to the log, and its transactions stay one-node.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'events'::regclass) THEN
        -- A statement trigger's NOTIFY would fire on the workers, where nobody listens,
        -- and a NOTIFY cannot be prepared for a two-phase commit: the application
        -- notifies after it commits instead.
        DROP TRIGGER IF EXISTS events_notify ON events;
        -- Likewise a departure's: servers then ask the log on every request.
        DROP TRIGGER IF EXISTS events_staff_departed ON events;
        PERFORM create_distributed_table('events', 'aggregate_id');
        PERFORM create_distributed_table('snapshots', 'aggregate_id', colocate_with => 'events');
    END IF;
END
$$;

-- The catch-up order is kept per worker: `txid` must be the transaction of the node that
-- holds the row, which is the node whose snapshot decides when the row becomes visible.
-- The column's DEFAULT is evaluated on the coordinator for a routed INSERT or COPY; a
-- row trigger runs on the shard.
SET citus.enable_unsafe_triggers = on;
CREATE OR REPLACE FUNCTION events_local_txid() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    NEW.txid := pg_current_xact_id();
    RETURN NEW;
END;
$$;
CREATE OR REPLACE TRIGGER events_local_txid
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_local_txid();

-- The coordinator opens its connections to the workers as the session's role, so the
-- role the API reads as must be able to log in there (it has no password: the workers
-- accept it only as their pg_hba.conf allows).
ALTER ROLE scrm_app LOGIN;

-- `SET LOCAL app.tenant_id` (the row-level security setting) reaches the workers only
-- with this; `set_config()` never does, and RLS on a worker would then hide every row.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET citus.propagate_set_commands = %L',
                   current_database(), 'local');
END
$$;

-- Where each projection stands in each worker's order (projections/src/citus.rs).
CREATE TABLE IF NOT EXISTS projection_lane_checkpoints
(
    name     text    NOT NULL,
    lane     integer NOT NULL,
    txid     bigint  NOT NULL,
    position bigint  NOT NULL,
    PRIMARY KEY (name, lane)
);
