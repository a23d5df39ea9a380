-- 0012: an index for the billing.parked gauge (Config.MeterProvider). Parked attempts wait
-- for a person and are few; without it, counting them every metrics collection scans every
-- attempt ever made. Also serves ParkedAttempts (ORDER BY parked_at).
CREATE INDEX billing_payment_attempts_parked_idx ON billing_payment_attempts (parked_at)
    WHERE parked_at IS NOT NULL;
