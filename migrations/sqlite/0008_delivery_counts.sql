-- The Delivery log at a million deliveries per integration (app/src/delivery/store.rs).
--
-- 1. Exact counts per (integration, stored state), kept by triggers in the statement that changes a delivery, so
--    every path (import, the worker's outcomes, Retry, removals cascading from an integration, organization or
--    compromise, a hand-written UPDATE) keeps them true and the log reads 4 rows instead of counting every
--    delivery on each refresh. A removed integration's counts go with it (ON DELETE CASCADE); the delete trigger
--    only decrements rows that still exist.
CREATE TABLE delivery_counts (
    integration_id BIGINT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    state          TEXT   NOT NULL,
    n              BIGINT NOT NULL,
    PRIMARY KEY (integration_id, state)
) WITHOUT ROWID;

INSERT INTO delivery_counts (integration_id, state, n)
SELECT integration_id, state, COUNT(*) FROM deliveries GROUP BY integration_id, state;

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
BEGIN
    INSERT INTO delivery_counts (integration_id, state, n) VALUES (NEW.integration_id, NEW.state, 1)
    ON CONFLICT (integration_id, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER deliveries_count_update AFTER UPDATE OF state, integration_id ON deliveries
WHEN OLD.state IS NOT NEW.state OR OLD.integration_id IS NOT NEW.integration_id
BEGIN
    UPDATE delivery_counts SET n = n - 1 WHERE integration_id = OLD.integration_id AND state = OLD.state;
    INSERT INTO delivery_counts (integration_id, state, n) VALUES (NEW.integration_id, NEW.state, 1)
    ON CONFLICT (integration_id, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
BEGIN
    UPDATE delivery_counts SET n = n - 1 WHERE integration_id = OLD.integration_id AND state = OLD.state;
END;

-- 2. The log filtered by organization (and state): newest first from an index, however many deliveries the
--    integration has. It also serves the organization foreign key (deletes cascading from an organization) and
--    the log's list of organizations with deliveries, so it replaces the single-column index.
DROP INDEX deliveries_organization;
CREATE INDEX deliveries_organization_log ON deliveries(organization_id, integration_id, state, id);

-- 3. One index write fewer per delivery: the unfiltered log reads the newest ids of each state from
--    deliveries_log_state and merges them, so deliveries_log (integration, id) goes.
DROP INDEX deliveries_log;
