-- Ticketing integrations, their encrypted credentials and field mapping, their health, and which organizations
-- each one serves.

CREATE TABLE integrations (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    partner_id         BIGINT  NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    name               TEXT    NOT NULL,
    name_key           TEXT    NOT NULL,
    system             TEXT    NOT NULL,
    active             BIGINT  NOT NULL DEFAULT 0,
    site               TEXT    NOT NULL,
    company_id         TEXT    NOT NULL,
    auth_kind          TEXT    NOT NULL,
    -- v1: + hex(nonce || XChaCha20-Poly1305 ciphertext) of the credentials JSON; never the plaintext.
    credentials_sealed TEXT    NOT NULL,
    mapping            TEXT    NOT NULL,
    -- 'not_checked' | 'healthy' | 'unhealthy', from the most recent ConnectWise request.
    health             TEXT    NOT NULL DEFAULT 'not_checked',
    health_error       TEXT,
    health_at          BIGINT,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    UNIQUE (partner_id, name_key)
);
CREATE INDEX integrations_partner ON integrations(partner_id);

CREATE TABLE organization_integrations (
    organization_id BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    integration_id  BIGINT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    PRIMARY KEY (organization_id, integration_id)
);
CREATE INDEX organization_integrations_integration ON organization_integrations(integration_id);
