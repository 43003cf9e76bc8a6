-- The portrait's timeline for the PostGraphile peer: a computed column over the
-- customer's stream, newest first, as our server's `timeline` reads it.
--
-- PL/pgSQL, not SQL: an inlined SQL function compares `aggregate_id` with an expression
-- of the whole-row argument, which the planner cannot turn into a key lookup, and reads
-- all of `events` (5.7 s a portrait at the bench scale). Run on its own, the query is
-- planned with the customer's values and walks the primary key.
DROP FUNCTION IF EXISTS rm_customer_timeline(rm_customer);
CREATE FUNCTION rm_customer_timeline(c rm_customer) RETURNS SETOF events
    LANGUAGE plpgsql STABLE AS
$$
BEGIN
    RETURN QUERY
        SELECT * FROM events
         WHERE aggregate_type = 'Customer' AND aggregate_id = c.tenant_id || ':' || c.customer_id
         ORDER BY sequence DESC;
END
$$;
GRANT EXECUTE ON FUNCTION rm_customer_timeline(rm_customer) TO scrm_app;
