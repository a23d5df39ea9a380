-- 0019: renewals claimed from the subscriptions table (issue 18: renewals in batches), for an
-- engine with Config.ClaimRenewals on.
--
-- renew_at is when the subscription's next renewal run is due: the end of its current
-- period, a dunning retry's time, or now (Resume, the sweeper). NULL: no run is waiting.
-- A claim (store.ClaimRenewals) takes the due rows in renew_at order with FOR UPDATE SKIP
-- LOCKED and moves renew_at a lease ahead, so a claimer that dies mid-run leaves its rows to
-- be claimed again when the lease runs out; a claim that ends (store.SettleRenewalClaims)
-- clears renew_at where its run scheduled nothing, or sets the time of the next try. An engine with the option off (River's renewal job per period)
-- never writes it.
ALTER TABLE billing_subscriptions ADD COLUMN renew_at timestamptz;

-- renew_claim is the claim that holds renew_at (its lease), NULL when no claim does: a
-- claim ends only the rows it still holds, so a run that scheduled its next time (which
-- clears it) is never undone, even when that time equals the lease. renew_failures counts the
-- runs in a row that failed: the next is claimed after a backoff (River's, tries⁴ seconds,
-- at most 6 hours); a new schedule starts it again at 0.
ALTER TABLE billing_subscriptions ADD COLUMN renew_claim uuid;
ALTER TABLE billing_subscriptions ADD COLUMN renew_failures integer NOT NULL DEFAULT 0;

-- The claim reads one range of this index: only the rows with a run waiting are in it.
-- current_period is included: the claim returns it, the period whose end the run renews.
-- A plain CREATE INDEX, as a migration runs in one transaction: on a large installation build
-- it CONCURRENTLY by hand first under this name; IF NOT EXISTS then skips it.
CREATE INDEX IF NOT EXISTS billing_subscriptions_renew_idx ON billing_subscriptions (renew_at, id)
    INCLUDE (current_period) WHERE renew_at IS NOT NULL;
