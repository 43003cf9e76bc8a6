-- The event store: postgres-es 0.5's `events` table plus what a gap-free catch-up
-- reader and a multi-tenant deployment need. postgres-es inserts only its own seven
-- columns; everything else here has a default and is filled in by the database.
--
-- Citus: the table is meant to be distributed by aggregate_id; every key includes it.
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    -- Global position: unique, increasing in the order rows are inserted. Taken at
    -- insert, visible at commit, so on its own it can skip slow transactions.
    position       bigint GENERATED ALWAYS AS IDENTITY,
    -- The writing (top-level) transaction. A reader takes only rows whose txid is below
    -- the oldest transaction still running, in (txid, position) order: that set can never
    -- grow behind the reader (docs/adr/0002-global-order.md).
    txid           xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    -- Stream ids are '<tenant>:<id>'; the tenant is derived so no writer can omit it.
    tenant_id      text GENERATED ALWAYS AS (split_part(aggregate_id, ':', 1)) STORED,
    recorded_at    timestamptz                  NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

-- The catch-up reader's order. Every other lookup goes through the primary key; each
-- extra index would slow every append and the bulk load.
CREATE INDEX events_global_order ON events (txid, position);

-- Snapshots are not used (cqrs-es 0.5 applies events twice on the snapshot path); the
-- table exists so the repository's shape matches postgres-es's expectations.
CREATE TABLE snapshots
(
    aggregate_type   text                              NOT NULL,
    aggregate_id     text                              NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0) NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                              NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Per-tenant settings that the domain's rules read through their callers.
CREATE TABLE tenants
(
    tenant_id      text PRIMARY KEY CHECK (tenant_id ~ '^[a-z0-9-]{1,40}$'),
    name           text        NOT NULL,
    time_zone      text        NOT NULL DEFAULT 'Asia/Shanghai',
    group_capacity integer     NOT NULL DEFAULT 500 CHECK (group_capacity BETWEEN 1 AND 2000),
    created_at     timestamptz NOT NULL DEFAULT now()
);
