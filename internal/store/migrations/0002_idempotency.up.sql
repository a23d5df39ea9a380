-- 0002: idempotency keys of the engine's commands. A key is claimed in the same
-- transaction as the command's effect, with a hash of the request, and keeps the result.
CREATE TABLE billing_idempotency_keys (
    scope        text        NOT NULL,   -- the command: "consume", "publish_tariff", …
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    result       jsonb,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
