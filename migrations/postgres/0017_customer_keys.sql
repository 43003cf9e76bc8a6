-- Crypto-shredding (issue 20, docs/adr/0024-crypto-shredding.md). What identifies a
-- customer is sealed inside their events with their own data key, kept here wrapped
-- by the tenant's key (derived from SCRM_PII_KEY). Erasure sets `wrapped` to null and
-- keeps the row, so no key is ever made for that customer again.
--
-- Readers (the scrm_app role) get no grant: only the engine's own connection opens
-- events. Note that PostgreSQL keeps a replaced row version until VACUUM removes it.
CREATE TABLE customer_keys
(
    stream_id  text NOT NULL UNIQUE,
    tenant_id  text GENERATED ALWAYS AS (split_part(stream_id, ':', 1)) STORED,
    -- base64 of nonce, wrapped key and tag
    wrapped    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz,
    CHECK ((wrapped IS NULL) = (erased_at IS NOT NULL)),
    PRIMARY KEY (tenant_id, stream_id)
);
ALTER TABLE customer_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE customer_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON customer_keys
    USING (tenant_id = current_setting('app.tenant_id', true));

-- Where sealing the events written before sealing existed stands, so it resumes.
CREATE TABLE pii_sealing
(
    id        integer PRIMARY KEY CHECK (id = 1),
    stream_id text   NOT NULL,
    sequence  bigint NOT NULL
);
