-- 0019: renewals claimed from the subscriptions table (issue 18: renewals in batches), for an
-- engine with Config.ClaimRenewals on.
--
-- renew_at is when the subscription's next renewal run is due: the end of its current
-- period, a dunning retry's time, or now (Resume, the sweeper). NULL: no run is waiting.
-- A claim (store.ClaimRenewals) takes the due rows in renew_at order with FOR UPDATE SKIP
-- LOCKED and moves renew_at a lease ahead, so a claimer that dies mid-run leaves its rows to
-- be claimed again when the lease runs out; the run that ends sets the next time or clears it
-- (store.SettleRenewalClaims). An engine with the option off (River's renewal job per period)
-- never writes it.
ALTER TABLE billing_subscriptions ADD COLUMN renew_at timestamptz;

-- The claim reads one range of this index: only the rows with a run waiting are in it.
-- current_period is included: the claim returns it, the period whose end the run renews.
-- A plain CREATE INDEX, as a migration runs in one transaction: on a large installation build
-- it CONCURRENTLY by hand first under this name; IF NOT EXISTS then skips it.
CREATE INDEX IF NOT EXISTS billing_subscriptions_renew_idx ON billing_subscriptions (renew_at, id)
    INCLUDE (current_period) WHERE renew_at IS NOT NULL;
