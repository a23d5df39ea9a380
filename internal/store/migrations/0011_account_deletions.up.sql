-- 0011: account deletion requests (TERMS 2.2.4: an account is deleted within 10 business
-- days of the request, on the production calendar). A request keeps the instant it was
-- received and the deadline computed at it; executing it ends the customer's
-- subscriptions and forgets their payment-method tokens, and keeps the ledger and the
-- audit log, which name the customer only by the host's opaque ID (TERMS 5.1).
CREATE TABLE billing_account_deletions (
    id              uuid        PRIMARY KEY,
    customer_id     text        NOT NULL,
    idempotency_key text        NOT NULL UNIQUE,
    received_at     timestamptz NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'support', 'profile')),
    body            text        NOT NULL DEFAULT '',
    state           text        NOT NULL CHECK (state IN ('received', 'done')),
    deadline        timestamptz NOT NULL,                    -- 24:00 of the 2.2.4 last day
    created_at      timestamptz NOT NULL,
    done_at         timestamptz,
    done_by         text        NOT NULL DEFAULT '',
    escalated_at    timestamptz,                             -- when the escalation fired
    CHECK ((state = 'done') = (done_at IS NOT NULL))
);
CREATE INDEX billing_account_deletions_customer_idx ON billing_account_deletions (customer_id);
CREATE INDEX billing_account_deletions_open_idx ON billing_account_deletions (deadline)
    WHERE state = 'received';

-- A token forgotten by an account deletion: its consent is withdrawn (so nothing charges
-- it, even a renewal job already queued) and forgotten_at marks it deleted. The row stays
-- as a tombstone: subscriptions and attempts still name the token as plain text (no
-- foreign key), and a tombstone keeps a checkout that brings the token back from
-- reviving its consent.
ALTER TABLE billing_payment_methods ADD COLUMN forgotten_at timestamptz;
