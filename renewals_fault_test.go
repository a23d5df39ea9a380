package billing_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// faultCase is one fault injected into the renewal of period 2 of a subscription paid
// with "tok-1" (TERMS 3.5), and what must hold after: the provider charged period 2
// exactly once and the subscription is renewed (requireRenewedOnce), whatever failed.
type faultCase struct {
	name string
	// arm injects the faults, after checkout, before the period ends.
	arm func(t *testing.T, b *faultBundle, sub subscription.Subscription)
	// run drives the renewal; nil: the River workers work every job due up to two hours
	// after the period end (the job's retries included).
	run func(t *testing.T, b *faultBundle, sub subscription.Subscription)
	// attempts is how many attempts period 2 must have; 0 means 1: a fault never makes the
	// engine start a new attempt (only a soft decline does).
	attempts int
	// providerCalls, when > 0, is how many renewal Charge calls must have reached the
	// provider: 1 where the engine must settle by Lookup, never by charging again.
	providerCalls int
}

func TestRenewalFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := func(p faultPoint, times int) func(*testing.T, *faultBundle, subscription.Subscription) {
		return func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
			armDBFault(t, b.pool, sub.ID, dbFault{point: p, times: times})
		}
	}

	cases := []faultCase{
		{name: "3.5 no fault: charged once", providerCalls: 1},

		// Step 1: record the attempt with its key and commit.
		{name: "3.5 step 1 fails inserting the attempt: nothing charged, the retry charges once",
			arm: db(atAttemptInsert, 1), providerCalls: 1},
		{name: "3.5 step 1 fails three times in a row: the retries charge once",
			arm: db(atAttemptInsert, 3), providerCalls: 1},
		{name: "3.5 step 1 commit fails: nothing recorded, the retry charges once",
			arm: db(atAttemptCommit, 1), providerCalls: 1},

		// Between step 1 and step 2.
		{name: "3.5 crash between recording the attempt and calling the gateway: the retry finds it created, looks it up (not found) and charges under its key",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				// The call never leaves the process, which dies before step 3.
				b.faults.faultCharges("tok-1", failBeforeCharge)
				armDBFault(t, b.pool, sub.ID, dbFault{point: atOutcomeUpdate, times: 1})
			}, providerCalls: 1},

		// Step 2: the gateway call.
		{name: "3.5 the call fails before reaching the provider: outcome unknown, looked up (not found), charged under the same key",
			arm: func(t *testing.T, b *faultBundle, _ subscription.Subscription) {
				b.faults.faultCharges("tok-1", failBeforeCharge)
			}, providerCalls: 1},
		{name: "3.5 the provider times out before charging: looked up (not found), charged under the same key",
			arm: func(t *testing.T, b *faultBundle, _ subscription.Subscription) {
				b.gateway.Script("tok-1", billingtest.TimeoutBeforeCharge)
			}, providerCalls: 2},
		{name: "3.5 the provider charged but the answer was lost: looked up, never charged again",
			arm: func(t *testing.T, b *faultBundle, _ subscription.Subscription) {
				b.faults.faultCharges("tok-1", failAfterCharge)
			}, providerCalls: 1},
		{name: "3.5 the answer was lost: step 3 commits the unknown outcome before the job fails, then the retry looks it up",
			arm: func(t *testing.T, b *faultBundle, _ subscription.Subscription) {
				b.faults.faultCharges("tok-1", failAfterCharge)
			},
			run: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.clock.Set(sub.Current.End)
				require.NoError(t, b.runner.RunDue(ctx)) // the first run; its retry is due a second later
				atts, err := b.engine.AttemptList(ctx, sub.ID)
				require.NoError(t, err)
				require.Equal(t, payment.StateUnknown, atts[len(atts)-1].State, "the outcome is recorded as unknown")
				runUntilAfterEnd(2*time.Hour)(t, b, sub)
			}, providerCalls: 1},
		{name: "3.5 timeout after success and three failed lookups: looked up until it answers, never charged again",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.gateway.Script("tok-1", billingtest.TimeoutAfterSuccess)
				b.faults.failLookups(sub.ID, 3)
			}, providerCalls: 1},
		{name: "3.5 the call fails twice before reaching the provider, then the lookup fails: charged once under the same key",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.faults.faultCharges("tok-1", failBeforeCharge, failBeforeCharge)
				b.faults.failLookups(sub.ID, 2)
			}, providerCalls: 1},

		// Between step 2 and step 3, and step 3: record the outcome and its effects.
		{name: "3.5 crash after the gateway charged, before the outcome was recorded: looked up, charged once",
			arm: db(atOutcomeUpdate, 1), providerCalls: 1},
		{name: "3.5 crash after the gateway charged, and the first lookups fail: looked up until it answers, charged once",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				armDBFault(t, b.pool, sub.ID, dbFault{point: atOutcomeUpdate, times: 1})
				b.faults.failLookups(sub.ID, 2)
			}, providerCalls: 1},
		{name: "3.5 step 3 fails writing the renewed period: all of step 3 rolls back; looked up, charged once",
			arm: db(atPeriodInsert, 1), providerCalls: 1},
		{name: "3.5 step 3 fails posting the payment to the ledger: looked up, charged once",
			arm: db(atLedgerInsert, 1), providerCalls: 1},
		{name: "3.5 step 3 fails scheduling the next renewal: looked up, charged once",
			arm: db(atRenewJobInsert, 1), providerCalls: 1},
		{name: "3.5 step 3 commit fails: looked up, charged once",
			arm: db(atSettleCommit, 1), providerCalls: 1},
		{name: "3.5 step 3 fails three times at different writes: looked up each time, charged once",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				armDBFault(t, b.pool, sub.ID, dbFault{point: atPeriodInsert, times: 1})
				armDBFault(t, b.pool, sub.ID, dbFault{point: atLedgerInsert, times: 1})
				armDBFault(t, b.pool, sub.ID, dbFault{point: atSettleCommit, times: 1})
			}, providerCalls: 1},
		{name: "3.5 step 3 meets a serialization failure: retried in place, charged once",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				armDBFault(t, b.pool, sub.ID, dbFault{point: atOutcomeUpdate, times: 1, sqlstate: "40001"})
			}, providerCalls: 1},
		{name: "3.5 the answer is lost and step 3 of the lookup fails too: charged once",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.faults.faultCharges("tok-1", failAfterCharge)
				armDBFault(t, b.pool, sub.ID, dbFault{point: atPeriodInsert, times: 2})
			}, providerCalls: 1},

		// Dunning: a soft decline makes a second attempt, which fails like the first.
		{name: "3.5 soft decline, then a crash after the retry charged: the retry's key is looked up, the period charged once",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.gateway.Script("tok-1", billingtest.SoftDecline)
				// Update 1 records the soft decline; update 2 the retry's success.
				armDBFault(t, b.pool, sub.ID, dbFault{point: atOutcomeUpdate, skip: 1, times: 1})
			},
			run:      runUntilAfterEnd(25 * time.Hour),
			attempts: 2, providerCalls: 2},
		{name: "3.5 soft decline, then the retry's job fails to be scheduled once: retried by River, the period charged once",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.gateway.Script("tok-1", billingtest.SoftDecline)
				armDBFault(t, b.pool, sub.ID, dbFault{point: atRenewJobInsert, times: 1})
			},
			run:      runUntilAfterEnd(25 * time.Hour),
			attempts: 2, providerCalls: 2},

		// Duplicate jobs and duplicate runs.
		{name: "3.5 duplicate runs: RenewPeriod from 8 goroutines while River works the job: charged once",
			run: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.clock.Set(sub.Current.End)
				wait := b.duplicates(sub.ID, 1, 8)
				_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(2*time.Hour))
				require.NoError(t, err)
				for _, err := range wait() {
					require.NoError(t, err, "a duplicate run of a fault-free renewal succeeds")
				}
			}},
		{name: "3.5 duplicate job: a second renewal job (another Try) at the same instant: charged once",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.insertRenewJob(t, sub.ID, 1, 7, sub.Current.End)
				b.insertRenewJob(t, sub.ID, 1, 8, sub.Current.End.Add(time.Second))
			}, providerCalls: 1},
		{name: "3.5 crash after step 3 committed, before River marked the job done: the rerun is a no-op",
			run: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				runUntilAfterEnd(2*time.Hour)(t, b, sub)
				require.NoError(t, billing.RenewPeriod(b.engine, ctx, sub.ID, 1))
				b.insertRenewJob(t, sub.ID, 1, 9, b.clock.Now())
				require.NoError(t, b.runner.RunDue(ctx))
			}, providerCalls: 1},
		{name: "3.5 a duplicate run inside the gateway call finds the attempt created, looks it up (not found) and charges under the same key: the provider deduplicates",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.faults.faultCharges("tok-1", chargeFault{name: "duplicate run", before: func(ctx context.Context) error {
					return billing.RenewPeriod(b.engine, ctx, sub.ID, 1)
				}})
			}, providerCalls: 2},
		{name: "3.5 a duplicate run after the gateway charged, before the first run recorded it: the duplicate looks it up and renews, the first run's answer changes nothing",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.faults.faultCharges("tok-1", chargeFault{name: "duplicate run", after: func(ctx context.Context) error {
					return billing.RenewPeriod(b.engine, ctx, sub.ID, 1)
				}})
			}, providerCalls: 1},
		{name: "3.5 duplicate runs while the outcome is unknown: each looks it up, none charges again",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.faults.faultCharges("tok-1", chargeFault{name: "answer lost, duplicates", after: func(context.Context) error {
					return errInjected
				}})
				b.faults.failLookups(sub.ID, 2)
			},
			run: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.clock.Set(sub.Current.End)
				require.NoError(t, b.runner.RunDue(ctx)) // the job charges, loses the answer, fails
				wait := b.duplicates(sub.ID, 1, 6)
				_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(2*time.Hour))
				require.NoError(t, err)
				wait()
			}, providerCalls: 1},
		{name: "3.5 crash after the charge; the reconciliation job settles the attempt before the job's retry: charged once",
			arm: db(atOutcomeUpdate, 1),
			run: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.clock.Set(sub.Current.End)
				require.NoError(t, b.runner.RunDue(ctx)) // charged; step 3 fails; retry in ~1s
				b.clock.Set(sub.Current.End.Add(2 * time.Minute))
				n, err := b.engine.ReconcilePayments(ctx)
				require.NoError(t, err)
				require.Equal(t, 1, n)
				_, err = b.runner.RunUntil(ctx, sub.Current.End.Add(2*time.Hour))
				require.NoError(t, err)
			}, providerCalls: 1},
		{name: "3.5 consent withdrawn while the charge is in flight: a duplicate run leaves the open attempt alone, the charge that landed pays the period, never lost",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.faults.faultCharges("tok-1", chargeFault{name: "withdrawal and a duplicate run", before: func(ctx context.Context) error {
					if err := b.engine.WithdrawConsent(ctx, "c1", "tok-1", "customer:c1"); err != nil {
						return err
					}
					_ = billing.RenewPeriod(b.engine, ctx, sub.ID, 1) // finds the attempt open, may not cancel it
					return nil
				}})
			},
			run: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				runUntilAfterEnd(2*time.Hour)(t, b, sub)
				require.False(t, b.get(t, sub.ID).AutoRenew, "no charge after the one in flight")
			}, providerCalls: 1},
		{name: "3.5 a pending charge confirmed by a webhook delivered twice while duplicate runs look it up: charged once",
			arm: func(t *testing.T, b *faultBundle, _ subscription.Subscription) {
				b.gateway.Script("tok-1", billingtest.Pending)
			},
			run: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				runUntilAfterEnd(time.Hour)(t, b, sub)
				require.Equal(t, 1, b.get(t, sub.ID).Current.Number, "3.3 no new period before the pending charge succeeds")
				atts, err := b.engine.AttemptList(ctx, sub.ID)
				require.NoError(t, err)
				ev, err := b.gateway.Confirm(atts[len(atts)-1].ProviderPaymentID, payment.OutcomeSucceeded)
				require.NoError(t, err)
				wait := b.duplicates(sub.ID, 1, 4)
				done := make(chan error, 2)
				for range 2 {
					go func() { _, err := b.engine.HandlePaymentWebhook(ctx, ev); done <- err }()
				}
				for range 2 {
					require.NoError(t, <-done)
				}
				for _, err := range wait() {
					require.NoError(t, err)
				}
				runUntilAfterEnd(2*time.Hour)(t, b, sub)
			}, providerCalls: 1},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupFaults(t)
			sub := b.checkout(t, "c1", "tok-1")
			require.Equal(t, subscription.StatusActive, sub.Status)
			if tc.arm != nil {
				tc.arm(t, b, sub)
			}
			run := tc.run
			if run == nil {
				run = runUntilAfterEnd(2 * time.Hour)
			}
			run(t, b, sub)

			b.requireFaultsFired(t)
			b.requireRenewedOnce(t, sub.ID, 2)
			got := b.get(t, sub.ID)
			require.Equal(t, 2, got.Current.Number)
			requirePlaced(t, got.Current, sub.Current.End)
			atts, err := b.engine.AttemptList(ctx, sub.ID)
			require.NoError(t, err)
			want := max(tc.attempts, 1)
			require.Len(t, atts, 1+want, "the checkout attempt and %d for period 2", want)
			if tc.providerCalls > 0 {
				require.Equal(t, 1+tc.providerCalls, b.gateway.Calls().Charge, "Charge calls that reached the provider, checkout included")
			}
		})
	}
}

// runUntilAfterEnd returns a run that works every job due up to d after the period end.
func runUntilAfterEnd(d time.Duration) func(*testing.T, *faultBundle, subscription.Subscription) {
	return func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
		t.Helper()
		_, err := b.runner.RunUntil(context.Background(), sub.Current.End.Add(d))
		require.NoError(t, err)
	}
}

// TestRenewalFaultsThatStop injects the same faults into renewals that must not be
// charged: whatever fails, the provider shows no successful charge for period 2 and the
// subscription ends.
func TestRenewalFaultsThatStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name string
		arm  func(t *testing.T, b *faultBundle, sub subscription.Subscription)
		// state is the state of period 2's last attempt.
		state payment.State
	}{
		{name: "consent withdrawn after a crash between recording the attempt and calling the gateway: the retry cancels it once no call can be in flight, never charged",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.faults.faultCharges("tok-1", chargeFault{name: "withdrawal, then the process dies", before: func(ctx context.Context) error {
					if err := b.engine.WithdrawConsent(ctx, "c1", "tok-1", "customer:c1"); err != nil {
						return err
					}
					return errInjected
				}})
				armDBFault(t, b.pool, sub.ID, dbFault{point: atOutcomeUpdate, times: 1})
			}, state: payment.StateCanceled},
		{name: "hard decline whose answer was lost: looked up, never retried",
			arm: func(t *testing.T, b *faultBundle, _ subscription.Subscription) {
				b.gateway.Script("tok-1", billingtest.HardDecline)
				b.faults.faultCharges("tok-1", failAfterCharge)
			}, state: payment.StateHardDeclined},
		{name: "hard decline, then a crash before it was recorded, and duplicate jobs: looked up, never retried",
			arm: func(t *testing.T, b *faultBundle, sub subscription.Subscription) {
				b.gateway.Script("tok-1", billingtest.HardDecline)
				armDBFault(t, b.pool, sub.ID, dbFault{point: atOutcomeUpdate, times: 1})
				b.insertRenewJob(t, sub.ID, 1, 7, sub.Current.End)
			}, state: payment.StateHardDeclined},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupFaults(t)
			sub := b.checkout(t, "c1", "tok-1")
			tc.arm(t, b, sub)
			_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(10*24*time.Hour))
			require.NoError(t, err)
			b.requireFaultsFired(t)
			require.Empty(t, b.gateway.ChargesFor(sub.ID, 2))
			got := b.get(t, sub.ID)
			require.Equal(t, subscription.StatusEnded, got.Status)
			require.Equal(t, 1, got.Current.Number)
			atts, err := b.engine.AttemptList(ctx, sub.ID)
			require.NoError(t, err)
			require.Len(t, atts, 2, "the checkout attempt and one for period 2")
			require.Equal(t, tc.state, atts[1].State)
		})
	}
}

// TestRenewalFaultsProperty renews a subscription for several periods while random faults
// of every kind hit each renewal in random order: database errors at every fault point,
// lost and failed gateway calls, provider timeouts, failed lookups, soft declines, duplicate
// runs and duplicate jobs. After each period: exactly one successful charge, and renewed.
//
// Each check costs a subscription's worth of River work, so the test runs propertyChecks
// checks and lets the rest of rapid's checks pass at once (all of them run after a failure,
// so that rapid can shrink it). One database serves every check; each check uses its own
// subscription and payment method, and faults are armed per subscription.
func TestRenewalFaultsProperty(t *testing.T) {
	t.Parallel()
	const propertyChecks = 6
	ctx := context.Background()
	b := setupFaults(t)
	var checks int
	var failed bool
	points := []faultPoint{atAttemptInsert, atAttemptCommit, atOutcomeUpdate, atPeriodInsert,
		atLedgerInsert, atRenewJobInsert, atSettleCommit}

	rapid.Check(t, func(rt *rapid.T) {
		checks++
		if checks > propertyChecks && !failed {
			return
		}
		defer func() {
			if r := recover(); r != nil {
				failed = true
				panic(r)
			}
		}()
		customer, token := fmt.Sprintf("p%d", checks), fmt.Sprintf("tok-p%d", checks)
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: "pro",
			PaymentMethod: token, IdempotencyKey: "sub-" + customer})
		require.NoError(rt, err)
		res, err := b.engine.ChargeFirstPayment(ctx, sub.ID)
		require.NoError(rt, err)
		require.Equal(rt, subscription.StatusActive, res.Subscription.Status)
		defer func() { // later checks move the clock past this subscription's next renewal
			_, err := b.pool.Exec(ctx, `DELETE FROM `+riverJob+` WHERE args->>'subscription_id' = $1
				AND state IN ('available', 'scheduled', 'retryable')`, sub.ID)
			require.NoError(rt, err)
		}()

		periods := rapid.IntRange(1, 3).Draw(rt, "periods")
		for p := 1; p <= periods; p++ {
			cur, err := b.engine.SubscriptionGet(ctx, sub.ID)
			require.NoError(rt, err)
			require.Equal(rt, p, cur.Current.Number)
			end := cur.Current.End

			// The provider's answers to this period's new keys: declines and timeouts before
			// the charge in any order, then a success that may time out.
			var script []billingtest.Behaviour
			declines := rapid.IntRange(0, 3).Draw(rt, "soft declines")
			for range declines {
				script = append(script, billingtest.SoftDecline)
			}
			for range rapid.IntRange(0, 2).Draw(rt, "timeouts before the charge") {
				i := rapid.IntRange(0, len(script)).Draw(rt, "at")
				script = slices.Insert(script, i, billingtest.TimeoutBeforeCharge)
			}
			script = append(script, rapid.SampledFrom([]billingtest.Behaviour{billingtest.Succeed, billingtest.TimeoutAfterSuccess}).Draw(rt, "success"))
			b.gateway.Script(token, script...)

			dups, extraJobs := 0, 0
			for range rapid.IntRange(0, 4).Draw(rt, "faults") {
				switch rapid.IntRange(0, 6).Draw(rt, "fault kind") {
				case 0:
					armDBFault(rt, b.pool, sub.ID, dbFault{
						point: rapid.SampledFrom(points).Draw(rt, "point"),
						skip:  rapid.IntRange(0, 2).Draw(rt, "skip"),
						times: rapid.IntRange(1, 2).Draw(rt, "times"),
					})
				case 1:
					armDBFault(rt, b.pool, sub.ID, dbFault{point: atOutcomeUpdate, times: 1, sqlstate: "40001"})
				case 2:
					b.faults.faultCharges(token, failBeforeCharge)
				case 3:
					b.faults.faultCharges(token, failAfterCharge)
				case 4:
					b.faults.failLookups(sub.ID, rapid.IntRange(1, 3).Draw(rt, "failed lookups"))
				case 5:
					dups += rapid.IntRange(1, 4).Draw(rt, "duplicate runs")
				case 6:
					extraJobs++
					b.insertRenewJob(rt, sub.ID, p, 100+extraJobs, end.Add(time.Duration(rapid.IntRange(0, 3600).Draw(rt, "extra job delay s"))*time.Second))
				}
			}

			b.clock.Set(end)
			wait := b.duplicates(sub.ID, p, dups)
			_, err = b.runner.RunUntil(ctx, end.Add(6*24*time.Hour)) // past the last dunning retry (5 days)
			require.NoError(rt, err)
			wait()
			b.requireRenewedOnce(rt, sub.ID, p+1)
			got, err := b.engine.SubscriptionGet(ctx, sub.ID)
			require.NoError(rt, err)
			require.Equal(rt, p+1, got.Current.Number)
			requirePlaced(rt, got.Current, end)
			for q := 2; q <= p+1; q++ {
				require.Len(rt, b.gateway.ChargesFor(sub.ID, q), 1, "period %d still charged once", q)
			}
		}
	})
}
