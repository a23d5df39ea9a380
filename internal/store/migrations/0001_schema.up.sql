-- 0001: the engine's migration bookkeeping and its audit log.
-- Every billing table lives in the current schema (search_path), beside River's tables.

CREATE TABLE IF NOT EXISTS billing_audit_log (
    id          uuid        PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    subject     text        NOT NULL,       -- what the action was about: "subscription:<id>", "tariff:<code>"
    reason      text        NOT NULL DEFAULT '',
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX billing_audit_log_subject_idx ON billing_audit_log (subject, at);
