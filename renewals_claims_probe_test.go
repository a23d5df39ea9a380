package billing_test

// Probes of a review of the renewal claims (Config.ClaimRenewals, renewals_claims.go,
// commit f8d2f00). Each test says what failed on that commit, and what fixed it.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// setupClaimsProbe is setupRenewalsBy with a change of the config.
func setupClaimsProbe(t *testing.T, claims bool, change func(*billing.Config)) *renewalBundle {
	t.Helper()
	gw := billingtest.NewGateway()
	b := setupWith(t, func(c *billing.Config) {
		c.Gateway, c.ClaimRenewals = gw, claims
		if change != nil {
			change(c)
		}
	})
	runner := b.withRiver(t)
	b.publish(t, "pro", "990", "generations", 500)
	return &renewalBundle{testBundle: b, gateway: gw, runner: runner}
}

func bothWays(t *testing.T, test func(t *testing.T, claims bool)) {
	for _, claims := range []bool{false, true} {
		name := "renewal jobs"
		if claims {
			name = "claims"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, claims)
		})
	}
}

// TestClaimsProbeRetryDueAtTheLeaseIsLost: the claim ends its chunk with a compare-and-set on
// renew_at = lease, a timestamp. When the run itself schedules a time equal to the lease (a
// dunning retry due RenewalClaimLease after the period end, the claim run at the period
// end), the settle cannot tell the run's own schedule from its lease and clears it: the
// retry is lost (renew_at NULL, past_due, no way forward until a sweep).
// Failed with claims on f8d2f00; fixed by the claim token (renew_claim, migration 0019),
// which a new schedule clears and the end of the claim compares instead of the time.
func TestClaimsProbeRetryDueAtTheLeaseIsLost(t *testing.T) {
	t.Parallel()
	bothWays(t, func(t *testing.T, claims bool) {
		ctx := context.Background()
		b := setupClaimsProbe(t, claims, func(c *billing.Config) {
			c.Dunning = payment.DunningSchedule{Delays: []time.Duration{billing.RenewalClaimLease, 24 * time.Hour}}
		})
		sub := b.checkout(t, "c1", "tok-1")
		end := sub.Current.End
		b.gateway.Script("tok-1", billingtest.SoftDecline) // the renewal at the end declines; the retry succeeds

		_, err := b.runner.RunUntil(ctx, end.Add(time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		if claims {
			t.Logf("renew_at after the run: %v", b.renewAt(t, sub.ID))
		}
		require.Equal(t, 2, got.Current.Number,
			"the retry due %s (end + %s) ran and paid period 2; got %s in period %d", end.Add(billing.RenewalClaimLease),
			billing.RenewalClaimLease, got.Status, got.Current.Number)
		require.Len(t, b.charged(sub.ID, 2), 1)
	})
}

// TestClaimsProbeSuspendExtendResumeLeavesNothingWaiting: a subscription suspended before
// its period end, whose period an operator extended meanwhile, is resumed after the old end
// but before the new one. The run at the old end found it suspended and did nothing (the
// claim cleared renew_at; River's job completed); Resume schedules nothing because the
// (extended) period has not ended. Nothing waits: no renew_at, no job; the subscription does
// not renew at its new end (only a sweep after it would find it).
// Failed both ways on f8d2f00 (not new with claims): the way-forward promise's hole; fixed
// by Resume scheduling the renewal at the period end when it has not ended yet.
func TestClaimsProbeSuspendExtendResumeLeavesNothingWaiting(t *testing.T) {
	t.Parallel()
	bothWays(t, func(t *testing.T, claims bool) {
		ctx := context.Background()
		b := setupClaimsProbe(t, claims, nil)
		sub := b.checkout(t, "c1", "tok-1")
		end := sub.Current.End
		newEnd := end.Add(5 * 24 * time.Hour)

		_, err := b.runner.RunUntil(ctx, end.Add(-48*time.Hour))
		require.NoError(t, err)
		_, err = b.engine.Suspend(ctx, sub.ID, regOperator)
		require.NoError(t, err)
		_, err = b.engine.ExtendPeriod(ctx, sub.ID, newEnd, regOperator)
		require.NoError(t, err)
		_, err = b.runner.RunUntil(ctx, end.Add(time.Hour)) // the run at the old end: suspended, nothing
		require.NoError(t, err)
		_, err = b.engine.Resume(ctx, sub.ID, regOperator)
		require.NoError(t, err)
		if claims {
			require.NotNil(t, b.renewAt(t, sub.ID), "after Resume the active subscription has no renew_at: no way forward")
		}
		_, err = b.runner.RunUntil(ctx, newEnd.Add(time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, 2, got.Current.Number, "renewed at the extended end %s; got %s in period %d ending %s",
			newEnd, got.Status, got.Current.Number, got.Current.End)
	})
}

// TestRaceClaimersAndCommands (passes: what held): several claimers at once (the claim job in three
// processes and an operator's ClaimDueRenewals) on 30 due subscriptions, while commands
// change them (auto-renew off, consent withdrawn, suspend and resume, terminate), the sweep
// runs and webhooks land; cards decline, stay pending or time out after charging. Then days
// of River, sweeps and reconciliation. Checked: no period charged twice, books = provider,
// no open attempt, and every subscription neither final nor suspended has a renewal waiting
// (renew_at) and is not stuck past its period end.
func TestRaceClaimersAndCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for r := range raceRounds(t, 2) {
		b := setupClaimsProbe(t, true, nil)
		rng := rand.New(rand.NewPCG(uint64(r), 19))
		const n = 30
		subs, tokens := b.checkoutScripted(t, r, n, rng, billingtest.SoftDecline, billingtest.Pending, billingtest.TimeoutAfterSuccess)
		b.gateway.SetLatency(2 * time.Millisecond)
		_, err := b.runner.RunUntil(ctx, subs[0].Current.End.Add(-time.Minute))
		require.NoError(t, err)
		b.clock.Set(subs[n-1].Current.End.Add(time.Minute)) // every renewal due

		g := newGate()
		for range 4 {
			g.run(func() {
				for range 6 {
					if os.Getenv("PROBE_SAME_INSTANT") == "" {
						b.clock.Advance(time.Millisecond) // claims at distinct instants, as on a real clock
					}
					_, _ = b.engine.ClaimDueRenewals(ctx)
				}
			})
		}
		for i := range subs {
			id := subs[i].ID
			switch rng.IntN(8) {
			case 0:
				g.run(func() { _, _ = b.engine.SetAutoRenew(ctx, id, false, "customer") })
			case 1:
				g.run(func() { _ = b.engine.WithdrawConsent(ctx, subs[i].CustomerID, tokens[i], "customer") })
			case 2, 3:
				pause := time.Duration(rng.IntN(5)) * time.Millisecond // drawn here: rng is not for goroutines
				g.run(func() {
					_, _ = b.engine.Suspend(ctx, id, regOperator)
					time.Sleep(pause)
					_, _ = b.engine.Resume(ctx, id, regOperator)
				})
			case 4:
				g.run(func() { _, _ = b.engine.Terminate(ctx, id, regOperator) })
			}
		}
		g.run(func() {
			for range 3 {
				_, _ = b.engine.SweepDueRenewals(ctx)
				time.Sleep(3 * time.Millisecond)
			}
		})
		g.run(func() {
			for range 20 {
				for _, ev := range b.gateway.Land() {
					_, _ = b.engine.HandlePaymentWebhook(ctx, ev)
				}
				_, _ = b.engine.ReconcilePayments(ctx)
				time.Sleep(time.Millisecond)
			}
		})
		g.open()
		b.gateway.SetLatency(0)

		// The provider settles every pending charge (a webhook each).
		for _, s := range subs {
			atts, err := b.engine.AttemptList(ctx, s.ID)
			require.NoError(t, err)
			for _, a := range atts {
				if a.State == payment.StatePending && a.ProviderPaymentID != "" {
					outcome := payment.OutcomeSucceeded
					if rng.IntN(2) == 0 {
						outcome = payment.OutcomeSoftDeclined
					}
					ev, err := b.gateway.Confirm(a.ProviderPaymentID, outcome)
					require.NoError(t, err)
					_, _ = b.engine.HandlePaymentWebhook(ctx, ev)
				}
			}
		}
		// Quiescence: a fortnight of River (claims), webhooks, reconciliation and sweeps.
		for range 14 * 4 {
			for _, ev := range b.gateway.Land() {
				_, _ = b.engine.HandlePaymentWebhook(ctx, ev)
			}
			_, err := b.engine.ReconcilePayments(ctx)
			require.NoError(t, err)
			_, err = b.engine.SweepDueRenewals(ctx)
			require.NoError(t, err)
			_, err = b.runner.RunUntil(ctx, b.clock.Now().Add(6*time.Hour))
			require.NoError(t, err)
		}

		unapplied, err := b.engine.UnappliedPaymentList(ctx, false)
		require.NoError(t, err)
		unappliedOf := map[string]int{}
		for _, u := range unapplied {
			unappliedOf[fmt.Sprintf("%s/%d", u.SubscriptionID, u.Period)]++
		}
		for i, s := range subs {
			atts, err := b.engine.AttemptList(ctx, s.ID)
			require.NoError(t, err)
			applied := map[int]int{}
			for _, a := range atts {
				switch a.State {
				case payment.StateCreated, payment.StateUnknown, payment.StatePending:
					t.Errorf("round %d sub %d: attempt of period %d still %s", r, i, a.PeriodNumber, a.State)
				case payment.StateSucceeded:
					if !a.Unapplied {
						applied[a.PeriodNumber]++
					}
				}
			}
			got := b.get(t, s.ID)
			for p := 2; p <= 3; p++ {
				c := len(b.charged(s.ID, p))
				u := unappliedOf[fmt.Sprintf("%s/%d", s.ID, p)]
				if applied[p] > 1 || c != applied[p]+u {
					var lines []string
					for _, a := range atts {
						lines = append(lines, fmt.Sprintf("  p%d #%d %s unapplied=%v %s", a.PeriodNumber, a.Number, a.State, a.Unapplied, a.ProviderPaymentID))
					}
					t.Errorf("round %d sub %d (%s): period %d charged %d times at the provider, %d applied, %d unapplied\n%s",
						r, i, got.Status, p, c, applied[p], u, strings.Join(lines, "\n"))
				}
			}
			if got.Status.Final() || got.Status == subscription.StatusSuspended {
				continue
			}
			if b.renewAt(t, s.ID) == nil {
				t.Errorf("round %d sub %d: %s in period %d ending %s with no renew_at: no way forward", r, i, got.Status, got.Current.Number, got.Current.End)
			}
			if !b.clock.Now().Before(got.Current.End.Add(time.Hour)) {
				t.Errorf("round %d sub %d: %s stuck past its period end %s", r, i, got.Status, got.Current.End)
			}
		}
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
	}
}

// TestClaimsProbeFailingRenewalHasNoBackoff: a renewal whose run keeps failing (the charge's
// answer was lost and the provider's lookups fail: an outage) is run again, with claims, every
// RenewalClaimLease, forever: no backoff (River backs a failed job off, attempt⁴ seconds, and
// gives up after 25 attempts; reconciliation backs off to 6 h and parks after 10 failures).
// The doc says "claimed again when it runs out, as River retries a failed job".
// Failed with claims on f8d2f00 (about 180 lookups in 6 h against about 10); fixed by the
// backoff of store.SettleRenewalClaims (renew_failures).
func TestClaimsProbeFailingRenewalHasNoBackoff(t *testing.T) {
	t.Parallel()
	lookups := map[bool]int{}
	var mu sync.Mutex
	t.Run("both", func(t *testing.T) {
		bothWays(t, func(t *testing.T, claims bool) {
			ctx := context.Background()
			b := setupClaimsProbe(t, claims, nil)
			sub := b.checkout(t, "c1", "tok-1")
			b.gateway.Script("tok-1", billingtest.TimeoutAfterSuccess)
			b.gateway.FailLookups(100000)
			end := sub.Current.End
			_, err := b.runner.RunUntil(ctx, end.Add(-time.Minute))
			require.NoError(t, err)
			before := b.gateway.Calls().Lookup
			_, err = b.runner.RunUntil(ctx, end.Add(6*time.Hour))
			require.NoError(t, err)
			mu.Lock()
			lookups[claims] = b.gateway.Calls().Lookup - before
			mu.Unlock()
		})
	})
	t.Logf("lookups in 6 h of a failing renewal: renewal jobs %d, claims %d", lookups[false], lookups[true])
	require.LessOrEqual(t, lookups[true], 2*lookups[false]+2, "claims retry a failing renewal with no backoff")
}
