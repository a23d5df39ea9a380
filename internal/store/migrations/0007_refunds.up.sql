-- 0007: refund requests (TERMS 3.7, 3.8). A request keeps the facts it was decided on: the
-- instant received, the eligibility computed at that instant and the payout deadline.
-- The gateway key of a refund is fixed before the gateway is called
-- ('refund:<subscription>:<period>:<attempt>'; a new attempt only after a decline, which
-- moved no money), and the partial unique index makes a second refund of one paid period
-- impossible.
CREATE TABLE billing_refund_requests (
    id                  uuid        PRIMARY KEY,
    subscription_id     uuid        NOT NULL REFERENCES billing_subscriptions (id),
    period              integer     NOT NULL CHECK (period >= 1),
    idempotency_key     text        NOT NULL UNIQUE,
    received_at         timestamptz NOT NULL,
    channel             text        NOT NULL CHECK (channel IN ('email', 'support', 'profile')),
    body                text        NOT NULL DEFAULT '',
    state               text        NOT NULL CHECK (state IN
                            ('received', 'verified', 'executing', 'refunded', 'failed', 'rejected')),
    eligible            boolean     NOT NULL,
    failed_reasons      text[]      NOT NULL DEFAULT '{}',
    decision            text        NOT NULL DEFAULT '',     -- refund.Decision.String()
    window_ends_at      timestamptz NOT NULL,
    payout_deadline     timestamptz NOT NULL,                -- 24:00 of the 3.8 last day
    provider_payment_id text        NOT NULL,
    amount_minor        bigint      NOT NULL CHECK (amount_minor > 0),
    currency            text        NOT NULL,
    attempt             integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    gateway_key         text        NOT NULL DEFAULT '',
    provider_refund_id  text        NOT NULL DEFAULT '',
    verified_by         text        NOT NULL DEFAULT '',
    verified_at         timestamptz,
    executed_by         text        NOT NULL DEFAULT '',
    override_reason     text        NOT NULL DEFAULT '',
    decline_code        text        NOT NULL DEFAULT '',
    decline_message     text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    settled_at          timestamptz,
    escalated_at        timestamptz                          -- when the 3.8 escalation fired
);
CREATE UNIQUE INDEX billing_refund_requests_one_refund
    ON billing_refund_requests (subscription_id, period) WHERE state IN ('executing', 'refunded', 'failed');
CREATE INDEX billing_refund_requests_gateway_key_idx ON billing_refund_requests (gateway_key);
CREATE INDEX billing_refund_requests_open_idx ON billing_refund_requests (payout_deadline)
    WHERE state IN ('received', 'verified', 'executing', 'failed');
