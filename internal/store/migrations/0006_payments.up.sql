-- 0006: charge attempts and the consent on saved payment methods.

-- One row per saved payment method token: the consent to recurring charges (TERMS 3.4) and
-- its withdrawal (law of 1 March 2026: stop charging at once).
CREATE TABLE billing_payment_methods (
    token                text        PRIMARY KEY,
    customer_id          text        NOT NULL,
    consent_given_at     timestamptz NOT NULL,
    consent_withdrawn_at timestamptz
);

-- A charge attempt is written, with its gateway idempotency key, before the gateway is
-- called (the charge protocol). The partial unique index makes a second successful charge
-- of one subscription period impossible, whatever the code does.
CREATE TABLE billing_payment_attempts (
    id                  uuid        PRIMARY KEY,
    subscription_id     uuid        NOT NULL REFERENCES billing_subscriptions (id),
    purpose             text        NOT NULL CHECK (purpose IN ('checkout', 'renewal')),
    period              integer     NOT NULL CHECK (period >= 1),
    number              integer     NOT NULL CHECK (number >= 1),
    idempotency_key     text        NOT NULL UNIQUE,
    amount_minor        bigint      NOT NULL CHECK (amount_minor > 0),
    currency            text        NOT NULL,
    terms               jsonb       NOT NULL,      -- the terms the period is sold under (TERMS 2.1.6)
    due_at              timestamptz NOT NULL,
    state               text        NOT NULL,
    provider_payment_id text        NOT NULL DEFAULT '',
    decline_code        text        NOT NULL DEFAULT '',
    decline_message     text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL,
    settled_at          timestamptz,
    UNIQUE (subscription_id, period, number)
);
CREATE UNIQUE INDEX billing_payment_attempts_one_success
    ON billing_payment_attempts (subscription_id, period) WHERE state = 'succeeded';
CREATE INDEX billing_payment_attempts_provider_idx ON billing_payment_attempts (provider_payment_id)
    WHERE provider_payment_id <> '';
CREATE INDEX billing_payment_attempts_open_idx ON billing_payment_attempts (created_at)
    WHERE state IN ('created', 'unknown', 'pending');
