-- 0004: subscriptions, their paid periods, usage counters and reservations.

CREATE TABLE billing_subscriptions (
    id              uuid        PRIMARY KEY,
    customer_id     text        NOT NULL,
    tariff_code     text        NOT NULL REFERENCES billing_tariffs (code),
    status          text        NOT NULL CHECK (status IN
                        ('pending', 'active', 'exhausted', 'past_due', 'ended', 'refunded', 'suspended', 'terminated')),
    auto_renew      boolean     NOT NULL,
    location        text        NOT NULL,
    payment_method  text        NOT NULL DEFAULT '',   -- an opaque gateway token, never card data (TERMS 5.1)
    checkout        jsonb       NOT NULL,              -- the terms shown at checkout (TERMS 3.4)
    current_period  integer,                           -- null while pending
    suspended_from  text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX billing_subscriptions_customer_idx ON billing_subscriptions (customer_id, created_at);

-- A paid period keeps its terms forever (TERMS 2.1.6): terms, start and number never change.
CREATE TABLE billing_periods (
    subscription_id uuid        NOT NULL REFERENCES billing_subscriptions (id),
    number          integer     NOT NULL CHECK (number >= 1),
    terms           jsonb       NOT NULL,
    start_at        timestamptz NOT NULL,
    end_at          timestamptz NOT NULL,
    granted_at      timestamptz NOT NULL,
    exhausted_at    timestamptz,
    PRIMARY KEY (subscription_id, number),
    CHECK (start_at < end_at)
);

ALTER TABLE billing_subscriptions ADD CONSTRAINT billing_subscriptions_current_period_fk
    FOREIGN KEY (id, current_period) REFERENCES billing_periods (subscription_id, number)
    DEFERRABLE INITIALLY DEFERRED;

CREATE FUNCTION billing_periods_keep_terms() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.terms IS DISTINCT FROM OLD.terms OR NEW.start_at <> OLD.start_at OR NEW.number <> OLD.number
       OR NEW.subscription_id <> OLD.subscription_id THEN
        RAISE EXCEPTION 'billing: a paid period keeps its terms (TERMS 2.1.6)'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.end_at < OLD.end_at THEN
        RAISE EXCEPTION 'billing: a period end only moves forward' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER billing_periods_keep_terms BEFORE UPDATE ON billing_periods
    FOR EACH ROW EXECUTE FUNCTION billing_periods_keep_terms();
CREATE TRIGGER billing_periods_no_delete BEFORE DELETE ON billing_periods
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();

-- One row per limited meter of a period. The CHECK is the last line of defence of TERMS 3.1:
-- whatever the code does, a hard limit's used + reserved volume never passes its quantity.
CREATE TABLE billing_usage (
    subscription_id uuid    NOT NULL,
    period          integer NOT NULL,
    meter           text    NOT NULL,
    quantity        bigint  NOT NULL CHECK (quantity >= 1),
    hard            boolean NOT NULL,
    used            bigint  NOT NULL DEFAULT 0 CHECK (used >= 0),
    reserved        bigint  NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    PRIMARY KEY (subscription_id, period, meter),
    FOREIGN KEY (subscription_id, period) REFERENCES billing_periods (subscription_id, number),
    CONSTRAINT billing_usage_hard_limit CHECK (NOT hard OR used + reserved <= quantity)
);

-- Consume calls by idempotency key: the first result of a key is returned to its retries.
CREATE TABLE billing_usage_events (
    subscription_id uuid        NOT NULL,
    key             text        NOT NULL,
    period          integer     NOT NULL,
    meter           text        NOT NULL,
    quantity        bigint      NOT NULL,
    used_after      bigint      NOT NULL,
    at              timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, key)
);

CREATE TABLE billing_reservations (
    id              uuid        PRIMARY KEY,
    subscription_id uuid        NOT NULL,
    key             text        NOT NULL,
    period          integer     NOT NULL,
    meter           text        NOT NULL,
    quantity        bigint      NOT NULL CHECK (quantity >= 1),
    actual          bigint      NOT NULL DEFAULT 0,
    state           text        NOT NULL CHECK (state IN ('open', 'committed', 'released', 'expired')),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    resolved_at     timestamptz,
    UNIQUE (subscription_id, key),
    FOREIGN KEY (subscription_id, period, meter) REFERENCES billing_usage (subscription_id, period, meter)
);
CREATE INDEX billing_reservations_open_idx ON billing_reservations (expires_at) WHERE state = 'open';
