-- Compromise import and ticket delivery (compromise and delivery ids are plain rowids: no AUTOINCREMENT
-- bookkeeping on the hot insert path): per-partner API tokens, the imported compromises, and the outbox of
-- deliveries (one per compromise and Active integration at import time) that the delivery workers drain.

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    partner_id   BIGINT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    -- The first characters of the token (dwid_xxxxxxxx), shown so a partner can tell tokens apart.
    prefix       TEXT   NOT NULL,
    -- hex(SHA-256(token)); the token itself is shown once and never stored.
    token_hash   TEXT   NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_partner ON api_tokens(partner_id);

CREATE TABLE compromises (
    id              INTEGER PRIMARY KEY,
    partner_id      BIGINT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    uuid            TEXT   NOT NULL,
    record_type     TEXT   NOT NULL,
    compromise      TEXT   NOT NULL,
    -- JSON of the record's other fields, without the password.
    details         TEXT   NOT NULL,
    -- The exposed password, sealed like integration credentials (NULL when none was exposed).
    password_sealed TEXT,
    created_at      BIGINT NOT NULL,
    UNIQUE (partner_id, uuid)
);
CREATE INDEX compromises_organization ON compromises(organization_id);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    integration_id  BIGINT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    compromise_id   BIGINT NOT NULL REFERENCES compromises(id) ON DELETE CASCADE,
    organization_id BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- 'pending' | 'retrying' | 'delivered' | 'failed'. Pending and retrying ones of an Inactive integration show
    -- as Paused.
    state           TEXT   NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- attempts when the partner last pressed Retry: backoff and the attempt limit count from there.
    attempts_base   BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A worker's claim: other workers leave the row alone until lease_until (0 = unclaimed). A Delivered row
    -- keeps the owner that delivered it.
    lease_owner     TEXT,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    -- 1 when a POST may have reached ConnectWise without its answer being recorded: the next attempt looks the
    -- ticket up by externalXRef before posting again. lookup_first is in_doubt as it was when the row was claimed.
    in_doubt        BIGINT NOT NULL DEFAULT 0,
    lookup_first    BIGINT NOT NULL DEFAULT 0,
    ticket_id       BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (integration_id, compromise_id)
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at, id) WHERE state IN ('pending', 'retrying');
CREATE INDEX deliveries_log ON deliveries(integration_id, id);
CREATE INDEX deliveries_log_state ON deliveries(integration_id, state, id);
CREATE INDEX deliveries_compromise ON deliveries(compromise_id);
CREATE INDEX deliveries_organization ON deliveries(organization_id);
