-- Partners, their sessions, failed sign-ins (for rate limiting) and their organizations.
-- Timestamps are milliseconds since the Unix epoch. *_key columns hold the Unicode-lowercased value that
-- uniqueness is checked on (case-insensitive names and emails on both backends).

CREATE TABLE partners (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,
    partner_id BIGINT  NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX sessions_partner ON sessions(partner_id);

CREATE TABLE sign_in_failures (
    id  INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT    NOT NULL,
    at  BIGINT  NOT NULL
);
CREATE INDEX sign_in_failures_key_at ON sign_in_failures(key, at);

CREATE TABLE organizations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    partner_id BIGINT  NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    UNIQUE (partner_id, name_key)
);
