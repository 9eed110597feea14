-- Per-system settings of an integration kept in clear (JSON), beside its sealed secrets: today the PSA account's
-- request budget when the partner set one ({"request_budget": {"requests": n, "window_secs": s}}).
ALTER TABLE integrations ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
