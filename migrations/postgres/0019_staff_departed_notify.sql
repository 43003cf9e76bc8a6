-- A departure is told to every server at its commit, whoever appends it, so a server
-- can keep "still here" for the staff it has checked and still refuse a departed
-- guide's next request (docs/adr/0026-staff-presence.md). Servers keep nothing where
-- this trigger is missing.
CREATE FUNCTION notify_staff_departed() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('scrm_departed', NEW.aggregate_id);
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    distributed boolean := false;
BEGIN
    -- On a Citus coordinator whose log is already distributed a row trigger would fire
    -- on the workers, where nobody listens: leave it out (distribute.sql drops it
    -- before distributing a new one).
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = ''events''::regclass)'
            INTO distributed;
    END IF;
    IF NOT distributed THEN
        CREATE TRIGGER events_staff_departed
            AFTER INSERT ON events
            FOR EACH ROW WHEN (NEW.event_type = 'StaffDeparted')
            EXECUTE FUNCTION notify_staff_departed();
    END IF;
END
$$;
