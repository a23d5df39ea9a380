-- 0012: indexes of the readers an operator and an accountant page through (issue 15).
--
-- Every listing is keyset-paginated: "the rows after the cursor, in index order, LIMIT n",
-- so each page is one index range scan that stops after n rows, however deep the walk.
--   - Engine.Subscriptions by status: (status, id). id is a UUIDv7, so id order is
--     creation order.
--   - Engine.Subscriptions by customer (with or without a status): (customer_id, id); the
--     status, when given too, is checked on the customer's rows, which are few. The older
--     (customer_id, created_at) index stays for ListByCustomer's order.
--   - Engine.Subscriptions with no filter walks the primary key.
--   - Books.Transactions and Books.ExportCSV by posted time: (posted_at, id), the keyset
--     order of a date-range walk. The entries of each transaction are read by their
--     primary key (tx_id, seq).
--
-- Plain CREATE INDEX: migrations run in one transaction, where CONCURRENTLY is refused. On
-- a large installation the statement blocks writes to the table while it builds; build the
-- same indexes CONCURRENTLY by hand first (same names, IF NOT EXISTS makes this a no-op).
CREATE INDEX IF NOT EXISTS billing_subscriptions_status_id_idx ON billing_subscriptions (status, id);
CREATE INDEX IF NOT EXISTS billing_subscriptions_customer_id_idx ON billing_subscriptions (customer_id, id);
CREATE INDEX IF NOT EXISTS billing_ledger_transactions_posted_idx ON billing_ledger_transactions (posted_at, id);
