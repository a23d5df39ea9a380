-- 0014: business events, written in the transaction of the change they report (issue 15).
--
-- id is deterministic: a UUID (version 5) of the business fact ("renewed|<subscription>|<period>"),
-- so a command or job that does the same fact again (a retried job, a webhook delivered twice)
-- inserts with ON CONFLICT DO NOTHING and makes no second event. The delivery job
-- (billing_deliver_event) is inserted in the same transaction only when the row is new.
--
-- seq orders the rows for the reader (Engine.Events); it is the order of insertion, not of
-- commit. delivered_at is set after the host's Config.OnEvent returned nil; a row still
-- NULL there has its delivery job waiting, retrying, or discarded (the sweep starts it again).
CREATE TABLE billing_events (
    id              uuid        PRIMARY KEY,
    seq             bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    kind            text        NOT NULL,
    subscription_id uuid,                                    -- NULL for a customer's event
    customer_id     text        NOT NULL,
    subject         text        NOT NULL DEFAULT '',         -- what else it is about: "refund_request:<id>", …
    occurred_at     timestamptz NOT NULL,
    data            jsonb       NOT NULL DEFAULT '{}',
    delivered_at    timestamptz
);
CREATE INDEX billing_events_subscription_idx ON billing_events (subscription_id, seq);
CREATE INDEX billing_events_customer_idx ON billing_events (customer_id, seq);
CREATE INDEX billing_events_undelivered_idx ON billing_events (seq) WHERE delivered_at IS NULL;
