package billing_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// TestRaceRenewalBatches: many renewals run at once, so that they share batches
// (renewals_batch.go), while other commands change the same subscriptions between and
// during the batches' steps: auto-renew off (TERMS 3.6), consent withdrawn, suspend,
// terminate, a webhook of a pending charge; a third of the cards decline or leave the charge
// pending. Checked against the fake provider's own record: no period charged twice (3.5),
// every charge the provider took either paid its period or is booked as unapplied and
// refunded (3.3), the ledger's provider account equals the provider, and no paid period is
// missing. The batches must have held more than one renewal, or the test tested nothing.
func TestRaceRenewalBatches(t *testing.T) {
	ctx := context.Background()
	for r := 0; r < raceRounds(t, 3); r++ {
		b := setupRenewals(t)
		rng := rand.New(rand.NewPCG(uint64(r), 18))
		const n = 30
		subs, tokens := b.checkoutScripted(t, r, n, rng, billingtest.SoftDecline, billingtest.Pending)
		b.gateway.SetLatency(2 * time.Millisecond)
		b.clock.Set(subs[n-1].Current.End.Add(time.Minute)) // every period 1 is over

		g := newGate()
		for w := 0; w < 12; w++ {
			g.run(func() {
				for k := 0; k < 8; k++ {
					_ = billing.RenewPeriod(b.engine, ctx, subs[(w*7+k*5)%n].ID, 1)
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
			case 2:
				g.run(func() {
					_, _ = b.engine.Suspend(ctx, id, subscription.AdminAction{Actor: "ops", Reason: "race"})
				})
			case 3:
				g.run(func() {
					_, _ = b.engine.Terminate(ctx, id, subscription.AdminAction{Actor: "ops", Reason: "race"})
				})
			}
		}
		g.run(func() { // webhooks of whatever charge is pending at that moment
			for k := 0; k < 20; k++ {
				for _, ev := range b.gateway.Land() {
					_, _ = b.engine.HandlePaymentWebhook(ctx, ev)
				}
				time.Sleep(time.Millisecond)
			}
		})
		g.open()
		b.gateway.SetLatency(0)
		for _, ev := range b.gateway.Land() {
			_, _ = b.engine.HandlePaymentWebhook(ctx, ev)
		}
		_, err := b.engine.ReconcilePayments(ctx)
		require.NoError(t, err)

		prep, settle := billing.LargestRenewalBatches(b.engine)
		t.Logf("round %d: largest batches: step 1 %d, step 3 %d; provider charges %d", r, prep, settle, len(b.gateway.Charges()))
		require.Greater(t, prep, 1, "no step 1 batch held more than one renewal")

		unapplied, err := b.engine.UnappliedPaymentList(ctx, false)
		require.NoError(t, err)
		unappliedOf := map[string]int{}
		for _, u := range unapplied {
			unappliedOf[u.SubscriptionID]++
		}
		for i, s := range subs {
			charged := b.gateway.ChargesFor(s.ID, 2)
			require.LessOrEqual(t, len(charged), 1, "round %d sub %d: period 2 charged %d times (3.5)", r, i, len(charged))
			got := b.get(t, s.ID)
			attempts, err := b.engine.AttemptList(ctx, s.ID)
			require.NoError(t, err)
			paid := 0
			for _, a := range attempts {
				if a.PeriodNumber == 2 && a.State == payment.StateSucceeded && !a.Unapplied {
					paid++
				}
			}
			inPeriod2 := got.Current != nil && got.Current.Number == 2
			switch {
			case inPeriod2:
				require.Equal(t, 1, paid, "round %d sub %d: in period 2 with %d applied charges", r, i, paid)
				require.Len(t, charged, 1, "round %d sub %d: in period 2 but the provider took nothing", r, i)
			case len(charged) == 1:
				require.Equal(t, 1, unappliedOf[s.ID], "round %d sub %d (%s): the provider took period 2's charge, which paid no period and is not unapplied (3.3)",
					r, i, got.Status)
			}
		}
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
	}
}

// TestRenewalBatchWritesWhatTheOneRenewalPathWrites: the same 24 due subscriptions renewed
// in two databases on the same clock, one by one with batching off (Config.RenewalBatchSize
// 1) and all at once in batches, leave the same rows in every table the renewal writes (and
// so do the same, with Config.ClaimRenewals, one by one and claimed: a claimed chunk renews
// through the batches at once, renewClaimed):
// subscriptions, periods, usage, attempts, audit log, events, ledger transactions and entries,
// River jobs (ids, keys and provider ids aside, which differ by construction; revenue
// recognitions aside, which River's test worker posts when it gets to period 1's job, at a
// moment neither path decides). Batches must
// have formed, or the test compared nothing.
func TestRenewalBatchWritesWhatTheOneRenewalPathWrites(t *testing.T) {
	ctx := context.Background()
	const n = 24
	// run renews n subscriptions: one at a time with batch 1; with a larger batch, all at
	// once through the batches (RenewPeriod from n goroutines) or, with claims, by claims
	// (a chunk renewed at once, renewClaimed).
	run := func(batch int, claims bool) (map[string][]string, *renewalBundle) {
		gw := billingtest.NewGateway()
		b := setupWith(t, func(c *billing.Config) { c.Gateway = gw; c.RenewalBatchSize = batch; c.ClaimRenewals = claims })
		rb := &renewalBundle{testBundle: b, gateway: gw, runner: b.withRiver(t)}
		b.publish(t, "pro", "990", "generations", 500)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = rb.checkout(t, fmt.Sprintf("c%02d", i), fmt.Sprintf("tok-%02d", i)).ID
		}
		end := rb.get(t, ids[0]).Current.End
		b.clock.Set(end.Add(time.Second)) // River's one test worker may renew some too
		gw.SetLatency(3 * time.Millisecond)
		switch {
		case batch == 1:
			for _, id := range ids {
				require.NoError(t, billing.RenewPeriod(b.engine, ctx, id, 1))
			}
		case claims:
			for {
				n, err := b.engine.ClaimDueRenewals(ctx)
				require.NoError(t, err)
				if n == 0 {
					break
				}
			}
		default:
			g := newGate()
			for _, id := range ids {
				g.run(func() { require.NoError(t, billing.RenewPeriod(b.engine, ctx, id, 1)) })
			}
			g.open()
		}
		return renewalRows(t, b, ids), rb
	}
	for _, claims := range []bool{false, true} {
		t.Run(fmt.Sprintf("claims=%t", claims), func(t *testing.T) {
			one, _ := run(1, claims)
			batched, rb := run(100, claims)
			prep, settle := billing.LargestRenewalBatches(rb.engine)
			t.Logf("largest batches: step 1 %d, step 3 %d", prep, settle)
			require.Greater(t, prep, 1, "no batch formed")
			require.Greater(t, settle, 1, "no batch formed")
			for customer, rows := range one {
				require.Equal(t, rows, batched[customer], "customer %s", customer)
			}
			require.Len(t, batched, len(one))
		})
	}
}

// renewalRows returns, per customer, the rows the renewal of each subscription in ids wrote,
// as sorted JSON lines with the ids that differ between databases replaced.
func renewalRows(t *testing.T, b *testBundle, ids []string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	queries := []string{
		`SELECT to_jsonb(s) - 'id' FROM billing_subscriptions s WHERE id = $1`,
		`SELECT to_jsonb(p) - 'subscription_id' FROM billing_periods p WHERE subscription_id = $1`,
		`SELECT to_jsonb(u) - 'subscription_id' FROM billing_usage u WHERE subscription_id = $1`,
		`SELECT to_jsonb(a) - 'id' - 'subscription_id' - 'idempotency_key' - 'provider_payment_id'
		   FROM billing_payment_attempts a WHERE subscription_id = $1`,
		`SELECT to_jsonb(l) - 'id' - 'subject' - 'detail' FROM billing_audit_log l WHERE subject = 'subscription:' || $1`,
		`SELECT to_jsonb(e) - 'id' - 'seq' - 'subscription_id' - 'data' - 'subject' - 'delivered_at' FROM billing_events e
		  WHERE subscription_id = $1::uuid`,
		`SELECT jsonb_build_object('ref_kind', x.ref_kind, 'memo', x.memo, 'at', x.at, 'posted_at', x.posted_at,
		        'entries', (SELECT jsonb_agg(jsonb_build_array(n.seq, n.account, n.side, n.amount, n.currency) ORDER BY n.seq)
		                    FROM billing_ledger_entries n WHERE n.tx_id = x.id))
		   FROM billing_ledger_transactions x WHERE x.period_id LIKE $1 || '/%' AND x.ref_kind <> 'recognition'`,
		`SELECT jsonb_build_object('kind', j.kind, 'scheduled_at', j.scheduled_at, 'queue', j.queue, 'priority', j.priority,
		        'args', j.args - 'subscription_id' - 'event_id')
		   FROM ` + riverJob + ` j WHERE j.args->>'subscription_id' = $1
		      OR j.args->>'event_id' IN (SELECT id::text FROM billing_events WHERE subscription_id = $1::uuid)`,
	}
	out := map[string][]string{}
	for _, id := range ids {
		sub, err := b.engine.SubscriptionGet(ctx, id)
		require.NoError(t, err)
		var lines []string
		for _, q := range queries {
			rows, err := b.pool.Query(ctx, q, id)
			require.NoError(t, err)
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err, q)
			for _, g := range got {
				lines = append(lines, strings.ReplaceAll(g, id, "SUB"))
			}
		}
		slices.Sort(lines)
		out[sub.CustomerID] = lines
	}
	return out
}

// TestRenewalChecksTheSavedMethodInTheChargeTransaction: the reason to charge is re-checked,
// for one renewal and for a batch alike, against the payment method's own record in the
// transaction that marks the attempt sent (RELIABILITY.md, promise 2): a token whose record
// says it belongs to another customer, or that consent to charge it was withdrawn, is never
// charged, even while the subscription still names it (records changed behind the engine's
// back here, by SQL), and the subscription ends with the matching reason.
func TestRenewalChecksTheSavedMethodInTheChargeTransaction(t *testing.T) {
	ctx := context.Background()
	for _, batch := range []int{1, 100} {
		t.Run(fmt.Sprintf("batch size %d", batch), func(t *testing.T) {
			gw := billingtest.NewGateway()
			b := setupWith(t, func(c *billing.Config) { c.Gateway = gw; c.RenewalBatchSize = batch })
			rb := &renewalBundle{testBundle: b, gateway: gw, runner: b.withRiver(t)}
			b.publish(t, "pro", "990", "generations", 500)
			var subs []subscription.Subscription
			for i := range 6 {
				subs = append(subs, rb.checkout(t, fmt.Sprintf("c%d", i), fmt.Sprintf("tok-%d", i)))
			}
			_, err := b.pool.Exec(ctx, `UPDATE billing_payment_methods SET customer_id = 'someone-else' WHERE token = 'tok-0'`)
			require.NoError(t, err)
			_, err = b.pool.Exec(ctx, `UPDATE billing_payment_methods SET consent_withdrawn_at = $1 WHERE token = 'tok-1'`, b.clock.Now())
			require.NoError(t, err)
			b.clock.Set(subs[0].Current.End.Add(time.Second))
			g := newGate()
			for _, s := range subs {
				g.run(func() { require.NoError(t, billing.RenewPeriod(b.engine, ctx, s.ID, 1)) })
			}
			g.open()
			require.Empty(t, gw.ChargesFor(subs[0].ID, 2), "a token bound to another customer was charged")
			require.Empty(t, gw.ChargesFor(subs[1].ID, 2), "a token whose consent was withdrawn was charged")
			for i, want := range []subscription.EndReason{subscription.EndPaymentMethodRefused, subscription.EndConsentWithdrawn} {
				ended, err := b.engine.EventList(ctx, billing.EventListParams{SubscriptionID: subs[i].ID, Kind: billing.EventEnded})
				require.NoError(t, err)
				require.Len(t, ended, 1, "subscription %d did not end", i)
				require.Equal(t, string(want), string(ended[0].Reason))
			}
			for _, s := range subs[2:] {
				require.Len(t, gw.ChargesFor(s.ID, 2), 1)
				require.Equal(t, 2, rb.get(t, s.ID).Current.Number)
			}
		})
	}
}

// checkoutScripted checks out n subscriptions of round r (customer "c<r>-<i>", card
// "tok-<r>-<i>") and scripts the next charge of each card: faults[k] when rng.IntN(6) draws
// k < len(faults), else none. It returns the subscriptions and their cards.
func (b *renewalBundle) checkoutScripted(t *testing.T, r, n int, rng *rand.Rand, faults ...billingtest.Behaviour) ([]subscription.Subscription, []string) {
	t.Helper()
	subs := make([]subscription.Subscription, n)
	tokens := make([]string, n)
	for i := range subs {
		tokens[i] = fmt.Sprintf("tok-%d-%d", r, i)
		subs[i] = b.checkout(t, fmt.Sprintf("c%d-%d", r, i), tokens[i])
		if k := rng.IntN(6); k < len(faults) {
			b.gateway.Script(tokens[i], faults[k])
		}
	}
	return subs, tokens
}
