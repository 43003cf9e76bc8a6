-- The portrait's timeline for the PostGraphile peer: a computed column over the
-- customer's stream, newest first, as our server's `timeline` reads it.
CREATE OR REPLACE FUNCTION rm_customer_timeline(c rm_customer) RETURNS SETOF events
    LANGUAGE sql STABLE AS
$$
SELECT * FROM events
 WHERE aggregate_type = 'Customer' AND aggregate_id = c.tenant_id || ':' || c.customer_id
 ORDER BY sequence DESC
$$;
GRANT EXECUTE ON FUNCTION rm_customer_timeline(rm_customer) TO scrm_app;
