-- 0005: the append-only double-entry ledger (package ledger; issue 6).
--
-- Balances are NOT stored: an account's balance is the sum of its entries, read through the
-- covering index billing_ledger_entries_account_idx (an index-only scan). A table of balance
-- rows would put every payment of a currency in a queue behind one row lock on provider:<cur>
-- and deferred:<cur>, held until the payment's own transaction commits. Measured (BENCHMARKS.md,
-- "Ledger"): posting in a command ~1.0 ms with computed balances, 1.8-2.8 ms with balance rows,
-- 2.5-3x fewer posts/s from 8 concurrent posters; a balance read costs ~0.4 us per entry of the
-- account (41 ms at 100 000 entries) against a constant ~0.1 ms for a balance row.
--
-- What the database itself guarantees, whatever the code does:
--   - accounts, transactions and entries are append-only (billing_refuse_change);
--   - an entry's amount is > 0 and its side debit or credit; its currency is its account's
--     (the composite foreign key to (code, currency));
--   - a transaction key is unique, and a transaction is reversed at most once (reverses is
--     unique) and only if it exists;
--   - after every INSERT statement on entries, each transaction it touched is balanced per
--     currency (billing_ledger_check_balanced): the legs of a transaction are written in one
--     statement.

-- The chart of accounts, one row per "<role>:<currency>" code, created on demand per
-- currency (ledger.ChartFor) by the first posting in that currency.
CREATE TABLE billing_ledger_accounts (
    code        text        PRIMARY KEY,
    type        text        NOT NULL CHECK (type IN ('asset', 'liability', 'income', 'expense')),
    currency    text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    contra      boolean     NOT NULL DEFAULT false,
    UNIQUE (code, currency)
);

CREATE TABLE billing_ledger_transactions (
    id          uuid        PRIMARY KEY,
    key         text        NOT NULL UNIQUE CHECK (char_length(key) BETWEEN 1 AND 200),
    fingerprint text        NOT NULL,          -- ledger.Fingerprint: compared when a key is posted again
    ref_kind    text        NOT NULL CHECK (ref_kind IN ('payment', 'refund', 'recognition', 'adjustment')),
    ref_id      text        NOT NULL CHECK (char_length(ref_id) BETWEEN 1 AND 200),
    reverses    text        UNIQUE REFERENCES billing_ledger_transactions (key),
    period_id   text,                          -- the paid period the money belongs to: "<subscription id>/<number>"
    memo        text        NOT NULL DEFAULT '' CHECK (char_length(memo) <= 1000),
    at          timestamptz NOT NULL,          -- when the money moved
    posted_at   timestamptz NOT NULL,          -- when it was written (engine clock)
    CHECK (reverses IS NULL OR reverses <> key)
);
CREATE INDEX billing_ledger_transactions_ref_idx ON billing_ledger_transactions (ref_kind, ref_id);
CREATE INDEX billing_ledger_transactions_period_idx ON billing_ledger_transactions (period_id)
    WHERE period_id IS NOT NULL;

CREATE TABLE billing_ledger_entries (
    tx_id       uuid        NOT NULL REFERENCES billing_ledger_transactions (id),
    seq         smallint    NOT NULL CHECK (seq >= 1),
    account     text        NOT NULL,
    side        text        NOT NULL CHECK (side IN ('debit', 'credit')),
    amount      bigint      NOT NULL CHECK (amount > 0),
    currency    text        NOT NULL,
    at          timestamptz NOT NULL,          -- the transaction's at, copied for the balance index
    PRIMARY KEY (tx_id, seq),
    FOREIGN KEY (account, currency) REFERENCES billing_ledger_accounts (code, currency)
);
-- Balance at an instant and entries of an account: an index-only scan of one account's range.
CREATE INDEX billing_ledger_entries_account_idx ON billing_ledger_entries (account, at) INCLUDE (side, amount);

CREATE FUNCTION billing_ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT e.tx_id, e.currency INTO bad
    FROM billing_ledger_entries e
    WHERE e.tx_id IN (SELECT DISTINCT tx_id FROM new_entries)
    GROUP BY e.tx_id, e.currency
    HAVING sum(CASE WHEN e.side = 'debit' THEN e.amount ELSE -e.amount END) <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'billing: ledger transaction % is unbalanced in %', bad.tx_id, bad.currency
            USING ERRCODE = 'check_violation', CONSTRAINT = 'billing_ledger_entries_balanced';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER billing_ledger_entries_balanced
    AFTER INSERT ON billing_ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION billing_ledger_check_balanced();

CREATE TRIGGER billing_ledger_accounts_append_only
    BEFORE UPDATE OR DELETE ON billing_ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();
CREATE TRIGGER billing_ledger_transactions_append_only
    BEFORE UPDATE OR DELETE ON billing_ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();
CREATE TRIGGER billing_ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON billing_ledger_entries
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();
CREATE TRIGGER billing_ledger_transactions_no_truncate
    BEFORE TRUNCATE ON billing_ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change();
CREATE TRIGGER billing_ledger_entries_no_truncate
    BEFORE TRUNCATE ON billing_ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change();
