-- Request budgets per PSA account (app/src/request_budget.rs): requests admitted per account and fixed window, counted
-- here so that every server process sharing the database stays within one budget. `account_key` is built by the
-- caller (`autotask:<database>`, `connectwise:<site>/<company>`): integrations of one PSA account share a key and so
-- a budget. `window_start` is the window's start in Unix seconds (a multiple of the window's length), `used` the
-- requests admitted in it. Rows older than a day are pruned.
CREATE TABLE psa_request_counts (
    account_key  TEXT   NOT NULL,
    window_start BIGINT NOT NULL,
    used         BIGINT NOT NULL,
    PRIMARY KEY (account_key, window_start)
);
CREATE INDEX psa_request_counts_window_start ON psa_request_counts(window_start);
