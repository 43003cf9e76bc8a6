-- Where each projection stands in the global order, and which code version built its
-- tables. Updated in the same transaction as the projection's rows.
CREATE TABLE projection_checkpoints
(
    name       text PRIMARY KEY,
    version    integer NOT NULL,
    txid       integer NOT NULL DEFAULT 0,
    position   integer NOT NULL DEFAULT 0,
    events     integer NOT NULL DEFAULT 0,
    updated_at text    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
