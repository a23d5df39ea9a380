-- 0020: the ledger's balance check reads only the entries the statement inserted (issue 18:
-- costs that stay flat as the books grow).
--
-- The check of 0005 summed every entry of the transactions the statement touched, read from
-- billing_ledger_entries. For a batch's many transactions (the pipeline's one statement of a
-- renewal batch's postings) PostgreSQL joined them with a merge join over the whole primary
-- key: the check read every entry of the ledger, each time. It now sums new_entries alone.
-- That is the same check: every committed transaction is balanced (this trigger saw to it), so
-- the entries a statement adds to a transaction leave it balanced exactly when they balance
-- among themselves, per transaction and currency.
CREATE OR REPLACE FUNCTION billing_ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.tx_id, n.currency INTO bad
    FROM new_entries n
    GROUP BY n.tx_id, n.currency
    HAVING sum(CASE WHEN n.side = 'debit' THEN n.amount ELSE -n.amount END) <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'billing: ledger transaction % is unbalanced in %', bad.tx_id, bad.currency
            USING ERRCODE = 'check_violation', CONSTRAINT = 'billing_ledger_entries_balanced';
    END IF;
    RETURN NULL;
END $$;
