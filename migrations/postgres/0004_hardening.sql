-- Rate limits as fixed-window counters, one row per counted thing: sign-in attempts per (email, client address), per
-- client address and per email, and import API calls per token. `key` is a keyed hash (HMAC-SHA-256 under the
-- secrets key) of what is counted, so the table holds no email or address in the clear and no row grows with an
-- attacker's traffic. Rows whose window has ended are purged.
DROP TABLE sign_in_failures;

CREATE TABLE rate_limits (
    key        TEXT   PRIMARY KEY,
    count      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX rate_limits_expires ON rate_limits(expires_at);
