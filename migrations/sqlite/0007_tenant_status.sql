-- A tenant is served only while it is registered and not disabled: a token signed for a
-- tenant nobody created, or for one that left, must not write (issue 14).
ALTER TABLE tenants ADD COLUMN disabled_at text;
