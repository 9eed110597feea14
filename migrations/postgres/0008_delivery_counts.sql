-- The Delivery log at a million deliveries per integration (app/src/delivery/store.rs).
--
-- 1. Exact counts per (integration, stored state), kept by triggers in the statement that changes a delivery, so
--    every path (import, the worker's outcomes, Retry, removals cascading from an integration, organization or
--    compromise, a hand-written UPDATE) keeps them true and the log reads 4 rows instead of counting every
--    delivery on each refresh. The triggers are per statement with transition tables: an import of 20,000
--    deliveries changes each counter once, not 20,000 times. Counters are locked in (integration, state) order,
--    so concurrent writers never deadlock on them. A removed integration's counts go with it (ON DELETE
--    CASCADE); the delete trigger only decrements rows that still exist.
CREATE TABLE delivery_counts (
    integration_id BIGINT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    state          TEXT   NOT NULL,
    n              BIGINT NOT NULL,
    PRIMARY KEY (integration_id, state)
);

INSERT INTO delivery_counts (integration_id, state, n)
SELECT integration_id, state, COUNT(*) FROM deliveries GROUP BY integration_id, state;

CREATE FUNCTION deliveries_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_counts (integration_id, state, n)
    SELECT integration_id, state, COUNT(*) FROM new_rows GROUP BY integration_id, state
    ORDER BY integration_id, state
    ON CONFLICT (integration_id, state) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n;
    RETURN NULL;
END;
$$;

CREATE FUNCTION deliveries_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_counts (integration_id, state, n)
    SELECT integration_id, state, SUM(delta) FROM (
        SELECT o.integration_id, o.state, -1 AS delta FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.state <> n.state OR o.integration_id <> n.integration_id
        UNION ALL
        SELECT n.integration_id, n.state, 1 AS delta FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.state <> n.state OR o.integration_id <> n.integration_id
    ) AS changes
    GROUP BY integration_id, state HAVING SUM(delta) <> 0
    ORDER BY integration_id, state
    ON CONFLICT (integration_id, state) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n;
    RETURN NULL;
END;
$$;

CREATE FUNCTION deliveries_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM delivery_counts c
    WHERE (c.integration_id, c.state) IN (SELECT DISTINCT integration_id, state FROM old_rows)
    ORDER BY c.integration_id, c.state FOR UPDATE;
    UPDATE delivery_counts c SET n = c.n - gone.n
    FROM (SELECT integration_id, state, COUNT(*) AS n FROM old_rows GROUP BY integration_id, state) AS gone
    WHERE c.integration_id = gone.integration_id AND c.state = gone.state;
    RETURN NULL;
END;
$$;

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deliveries_count_insert();
CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deliveries_count_update();
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION deliveries_count_delete();

-- 2. The log filtered by organization (and state): newest first from an index, however many deliveries the
--    integration has. It also serves the organization foreign key (deletes cascading from an organization) and
--    the log's list of organizations with deliveries, so it replaces the single-column index.
DROP INDEX deliveries_organization;
CREATE INDEX deliveries_organization_log ON deliveries(organization_id, integration_id, state, id);

-- 3. Fewer writes per imported compromise and delivery (the import writes 20,000 deliveries per batch of 10,000):
--    - the unfiltered log reads the newest ids of each state from deliveries_log_state and merges them, so
--      deliveries_log (integration, id) goes;
--    - the uniqueness of (integration, compromise) is kept by an index led by the compromise, which also serves
--      the compromise foreign key, so deliveries_compromise goes;
--    - two foreign keys that only repeat another one are dropped, and with them a check (an SPI query and a row
--      lock) per inserted row: a delivery's organization is its compromise's (deleting an organization deletes
--      its compromises, which deletes their deliveries), and a compromise's partner is its organization's
--      (deleting a partner deletes its organizations).
DROP INDEX deliveries_log;
CREATE UNIQUE INDEX deliveries_compromise_integration ON deliveries(compromise_id, integration_id);
ALTER TABLE deliveries DROP CONSTRAINT deliveries_integration_id_compromise_id_key;
DROP INDEX deliveries_compromise;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_organization_id_fkey;
ALTER TABLE compromises DROP CONSTRAINT compromises_partner_id_fkey;
