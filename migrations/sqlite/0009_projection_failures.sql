-- A projection that cannot go on, and why: its own dead-letter row, while the other
-- projections go on (issue 15). The row goes when the projection next applies a batch
-- or is rebuilt.
CREATE TABLE projection_failures
(
    name      text    PRIMARY KEY,
    -- Where it stopped: the checkpoint it could not pass.
    txid      integer  NOT NULL,
    position  integer  NOT NULL,
    -- A short kind (BAD_EVENT, NEEDS_REBUILD, DATABASE, STALLED) and the full error.
    kind      text    NOT NULL,
    error     text    NOT NULL,
    attempts  integer  NOT NULL DEFAULT 1,
    failed_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
