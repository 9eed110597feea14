-- Delivery worker heartbeats (app/src/delivery/heartbeat.rs): one row per running delivery worker, renewed every
-- DELIVERY_HEARTBEAT_MS. `id` is the worker's owner name (`worker-<pid>-<hex>`); the leases it holds are
-- `deliveries.lease_owner = '<id>#<claim>'`. A worker whose heartbeat is older than DELIVERY_WORKER_STALE_SECS is
-- declared dead by any other worker (`state` 'alive' → 'dead'), which in the same transaction takes its leases
-- back, instead of waiting for them to expire. A dead worker's renewal finds its row no longer alive and stops
-- posting. A clean shutdown deletes the row; dead rows are pruned after a day. Times are ms since the epoch.
CREATE TABLE delivery_workers (
    id           TEXT   PRIMARY KEY,
    heartbeat_at BIGINT NOT NULL,
    state        TEXT   NOT NULL,
    started_at   BIGINT NOT NULL
);
CREATE INDEX delivery_workers_state ON delivery_workers(state, heartbeat_at);
