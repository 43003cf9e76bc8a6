-- Customer data keys: see migrations/postgres/0017_customer_keys.sql.
CREATE TABLE customer_keys
(
    stream_id  text PRIMARY KEY,
    wrapped    text,
    created_at text NOT NULL DEFAULT CURRENT_TIMESTAMP,
    erased_at  text,
    CHECK ((wrapped IS NULL) = (erased_at IS NOT NULL))
) STRICT;

CREATE TABLE pii_sealing
(
    id        integer PRIMARY KEY CHECK (id = 1),
    stream_id text    NOT NULL,
    sequence  integer NOT NULL
) STRICT;
