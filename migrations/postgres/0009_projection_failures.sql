-- A projection that cannot go on, and why: its own dead-letter row, while the other
-- projections go on (issue 15). The row goes when the projection next applies a batch
-- or is rebuilt.
CREATE TABLE projection_failures
(
    name      text    PRIMARY KEY,
    -- Where it stopped: the checkpoint it could not pass.
    txid      bigint  NOT NULL,
    position  bigint  NOT NULL,
    -- A short kind (BAD_EVENT, NEEDS_REBUILD, DATABASE, STALLED) and the full error.
    kind      text    NOT NULL,
    error     text    NOT NULL,
    attempts  bigint  NOT NULL DEFAULT 1,
    failed_at timestamptz NOT NULL DEFAULT now()
);
