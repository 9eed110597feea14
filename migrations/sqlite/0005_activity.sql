-- The Activity page: who did what and when, per partner, written in the same transaction as the change it records.
-- `actor` is the partner user's email (or the operator command), `address` the client address when known; `kind` a
-- key such as `integration.enabled`; `subject` and `detail` the names the sentence shows. Never a secret.
CREATE TABLE activity (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    partner_id BIGINT  NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    actor      TEXT    NOT NULL,
    address    TEXT,
    kind       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    detail     TEXT
);
CREATE INDEX activity_partner_id ON activity(partner_id, id);
CREATE INDEX activity_partner_kind_id ON activity(partner_id, kind, id);
