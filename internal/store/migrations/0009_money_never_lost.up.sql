-- 0009: the provider is the truth about money (issue «Money is never lost and never taken
-- twice»).
--
-- Charge attempts:
--   - sent_at: when the engine decided, in the transaction that re-checked the reason to
--     charge, that the attempt may go to the gateway. NULL means no gateway ever saw it:
--     such an attempt is canceled without asking the gateway.
--   - unapplied: the attempt succeeded at the provider but the subscription could no longer
--     take it (ended, terminated, refunded, renewed already); the money is owed back
--     (billing_unapplied_payments). Only applied successes count for "one success per
--     period", so the unique index keeps its meaning: at most one APPLIED charge per period.
--   - check_failures, next_check_at, parked_at: the reconciliation job's bookkeeping. A
--     failing attempt is looked at again with backoff and parked for a person after N
--     failures; it never blocks the others.
ALTER TABLE billing_payment_attempts
    ADD COLUMN sent_at        timestamptz,
    ADD COLUMN unapplied      boolean     NOT NULL DEFAULT false,
    ADD COLUMN check_failures integer     NOT NULL DEFAULT 0,
    ADD COLUMN next_check_at  timestamptz,
    ADD COLUMN last_error     text        NOT NULL DEFAULT '',
    ADD COLUMN parked_at      timestamptz;
-- Every attempt made before this migration may have been sent.
UPDATE billing_payment_attempts SET sent_at = created_at;

DROP INDEX billing_payment_attempts_one_success;
CREATE UNIQUE INDEX billing_payment_attempts_one_success
    ON billing_payment_attempts (subscription_id, period) WHERE state = 'succeeded' AND NOT unapplied;

DROP INDEX billing_payment_attempts_open_idx;
CREATE INDEX billing_payment_attempts_open_idx ON billing_payment_attempts (coalesce(next_check_at, created_at))
    WHERE state IN ('created', 'unknown', 'pending') AND parked_at IS NULL;
-- Attempts canceled after they were sent, which reconciliation watches for a day.
CREATE INDEX billing_payment_attempts_canceled_sent_idx ON billing_payment_attempts (settled_at)
    WHERE state = 'canceled' AND sent_at IS NOT NULL AND parked_at IS NULL;

-- A payment method belongs to one customer: the first use binds it (customer_id), consent
-- to recurring charges comes with the first successful payment. A token bound at checkout
-- has no consent yet.
ALTER TABLE billing_payment_methods ALTER COLUMN consent_given_at DROP NOT NULL;

-- Money the provider took that no period can take: owed back to the customer and refunded
-- through the gateway by the refund_unapplied job. One row per succeeded attempt.
CREATE TABLE billing_unapplied_payments (
    id                  uuid        PRIMARY KEY,
    attempt_id          uuid        NOT NULL UNIQUE REFERENCES billing_payment_attempts (id),
    subscription_id     uuid        NOT NULL REFERENCES billing_subscriptions (id),
    period              integer     NOT NULL,
    provider_payment_id text        NOT NULL,
    amount_minor        bigint      NOT NULL CHECK (amount_minor > 0),
    currency            text        NOT NULL,
    reason              text        NOT NULL,
    state               text        NOT NULL CHECK (state IN ('refunding', 'refunded', 'parked')),
    refund_key          text        NOT NULL UNIQUE,
    provider_refund_id  text        NOT NULL DEFAULT '',
    failures            integer     NOT NULL DEFAULT 0,
    last_error          text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL,
    settled_at          timestamptz
);
CREATE INDEX billing_unapplied_payments_open_idx ON billing_unapplied_payments (created_at)
    WHERE state <> 'refunded';

-- A per-installation secret for gateway idempotency keys: a key is the HMAC of the secret and
-- what the key is for (subscription, period, attempt number), so nobody outside can guess it,
-- and a retry that lost the attempt row (a commit lost in a crash or a failover) makes the
-- same key again, which the provider deduplicates: never a second charge.
CREATE TABLE billing_secrets (
    name  text  PRIMARY KEY,
    value bytea NOT NULL CHECK (octet_length(value) >= 32)
);
INSERT INTO billing_secrets (name, value)
    VALUES ('gateway_keys', uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));
