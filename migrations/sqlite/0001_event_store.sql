-- The event store for the embedded default: sqlite-es 0.5's `events` table plus a
-- global position. SQLite has one writer at a time, so positions handed out inside the
-- writing transaction are in commit order and a reader needs nothing more than them.
CREATE TABLE events
(
    aggregate_type text                          NOT NULL,
    aggregate_id   text                          NOT NULL,
    sequence       integer CHECK (sequence >= 0) NOT NULL,
    event_type     text                          NOT NULL,
    event_version  text                          NOT NULL,
    payload        text                          NOT NULL,
    metadata       text                          NOT NULL,
    position       integer,
    tenant_id      text GENERATED ALWAYS AS (substr(aggregate_id, 1, instr(aggregate_id, ':') - 1)) VIRTUAL,
    recorded_at    text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- sqlite-es detects a concurrent append by this primary key's violation (code 1555).
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE UNIQUE INDEX events_position ON events (position);

-- sqlite-es inserts only its own columns; the position is assigned right after, in the
-- same (serialised) write transaction. rowid is not used: VACUUM may renumber it.
CREATE TRIGGER events_assign_position
    AFTER INSERT ON events
BEGIN
    UPDATE events
       SET position = (SELECT coalesce(max(position), 0) + 1 FROM events)
     WHERE rowid = NEW.rowid;
END;

CREATE TABLE snapshots
(
    aggregate_type   text                                  NOT NULL,
    aggregate_id     text                                  NOT NULL,
    last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
    payload          text                                  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;

CREATE TABLE tenants
(
    tenant_id      text PRIMARY KEY,
    name           text    NOT NULL,
    time_zone      text    NOT NULL DEFAULT 'Asia/Shanghai',
    group_capacity integer NOT NULL DEFAULT 500 CHECK (group_capacity BETWEEN 1 AND 2000),
    created_at     text    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
