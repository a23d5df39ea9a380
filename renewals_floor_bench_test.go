package billing_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// statementsFloorArgs is the job of the claims design's floor (BenchmarkRenewalsDueAtOnce's
// claims case measures it next to the engine): a claim job that renews its chunk with the
// engine's own store statements and nothing else. Per chunk of billing.RenewalClaimChunk due
// subscriptions it sends what the claimed path sends for the rows that keep the money promise
// (no access before the charge, no period charged twice, every charge in the books):
//   - the claim (store.ClaimRenewals), the next claim job when the chunk was full, and the
//     end of the claims (store.SettleRenewalClaims);
//   - step 1 in one transaction: the subscriptions locked and read, the check for an earlier
//     run's attempt, the payment methods, the tariff's versions, and the attempts inserted;
//   - step 3 in one transaction: the subscriptions and attempts locked and read, the attempts
//     updated as succeeded, the subscriptions renewed with their next renew_at (the new
//     period and its usage rows with it) and the charges posted to the ledger.
//
// It leaves out everything else the engine does per renewal: its decisions and the provider
// call (the fake's, at zero latency, in the engine's run), the audit entry, the outbox event,
// the recognition and renewal notice jobs, and each transaction's SET LOCAL lock_timeout. Its
// step 3 is one transaction a chunk, where the engine's runs in waves of the charges that
// came back (about 50 a wave, two a chunk, with a zero-latency provider). So floor ÷ no-op is the most the schema lets
// the claims design reach, and engine ÷ floor is what the engine's own work costs on top.
type statementsFloorArgs struct{}

func (statementsFloorArgs) Kind() string { return "bench_statements_floor" }

type statementsFloorWorker struct {
	river.WorkerDefaults[statementsFloorArgs]
	pool *pgxpool.Pool
}

func (w statementsFloorWorker) Work(ctx context.Context, _ *river.Job[statementsFloorArgs]) error {
	now := time.Now()
	claim := uuid.NewString()
	claimed, err := store.ClaimRenewals(ctx, w.pool, claim, now, now.Add(billing.RenewalClaimLease), billing.RenewalClaimChunk)
	if err != nil || len(claimed) == 0 {
		return err
	}
	if len(claimed) == billing.RenewalClaimChunk {
		if _, err := river.ClientFromContext[pgx.Tx](ctx).Insert(ctx, statementsFloorArgs{}, nil); err != nil {
			return err
		}
	}
	slices.SortFunc(claimed, func(a, b store.SubscriptionPeriod) int { return strings.Compare(a.SubscriptionID, b.SubscriptionID) })
	ids := make([]string, len(claimed))
	numbers := make([]int32, len(claimed))
	for i, c := range claimed {
		ids[i], numbers[i] = c.SubscriptionID, int32(c.Period+1)
	}
	var attempts []store.AttemptRow
	if err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		attempts = attempts[:0]
		subs, err := store.LockSubscriptions(ctx, tx, ids)
		if err != nil {
			return err
		}
		started, err := store.SubscriptionsWithAttempts(ctx, tx, ids, numbers)
		if err != nil {
			return err
		}
		var tokens []string
		for _, s := range subs {
			tokens = append(tokens, s.PaymentMethod)
		}
		if _, err := store.PaymentMethods(ctx, tx, tokens); err != nil {
			return err
		}
		if _, err := store.Versions(ctx, tx, "pro"); err != nil {
			return err
		}
		sentAt := time.Now()
		p := store.NewPipeline(tx)
		for _, id := range ids {
			sub, ok := subs[id]
			if !ok || started[id] || sub.Current == nil {
				continue
			}
			amount := sub.Current.Terms.Price.Shift(2).IntPart()
			a, err := payment.NewAttempt(payment.AttemptSpec{ID: uuid.NewString(), SubscriptionID: id, Purpose: payment.PurposeRenewal,
				PeriodNumber: sub.Current.Number + 1, Number: 1, Amount: amount, Currency: sub.Current.Terms.Currency,
				DueAt: sub.Current.End, IdempotencyKey: uuid.NewString()}, sentAt)
			if err != nil {
				return err
			}
			row := store.AttemptRow{Attempt: a, Terms: sub.Current.Terms, SentAt: sentAt}
			if err := store.InsertAttempt(ctx, p, row); err != nil {
				return err
			}
			attempts = append(attempts, row)
		}
		return p.Flush(ctx)
	}); err != nil {
		return err
	}
	if err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		subs, err := store.LockSubscriptions(ctx, tx, ids)
		if err != nil {
			return err
		}
		attemptIDs := make([]string, len(attempts))
		for i, a := range attempts {
			attemptIDs[i] = a.ID
		}
		slices.Sort(attemptIDs)
		stored, err := store.LockAttempts(ctx, tx, attemptIDs)
		if err != nil {
			return err
		}
		now := time.Now()
		p := store.NewPipeline(tx)
		for _, a := range attempts {
			sub, okSub := subs[a.SubscriptionID]
			row, okRow := stored[a.ID]
			if !okSub || !okRow {
				continue // locked elsewhere (SKIP LOCKED); nothing else runs beside the floor
			}
			paid, _, err := row.RecordCharge(payment.ChargeResult{Outcome: payment.OutcomeSucceeded,
				ProviderPaymentID: "floor-" + a.ID, Amount: a.Amount, Currency: a.Currency}, nil, now)
			if err != nil {
				return err
			}
			row.Attempt = paid
			if err := store.UpdateAttempt(ctx, p, row); err != nil {
				return err
			}
			next, _, err := subscription.Renew(sub, subscription.RenewParams{Terms: row.Terms,
				Start: sub.Current.End, End: sub.Current.End.AddDate(0, 1, 0)}, now)
			if err != nil {
				return err
			}
			if err := store.SaveSubscriptionRenewAt(ctx, p, sub, next, now, next.Current.End); err != nil {
				return err
			}
			t, err := ledger.Charge("payment:"+a.ID, paid.ProviderPaymentID, a.Currency, a.Amount, now.Truncate(time.Microsecond))
			if err != nil {
				return err
			}
			periodID := a.SubscriptionID + "/" + strconv.Itoa(a.PeriodNumber)
			if _, err := store.InsertLedgerTransaction(ctx, p, uuid.NewString(), t, ledger.Fingerprint(t), periodID, now); err != nil {
				return err
			}
		}
		return p.Flush(ctx)
	}); err != nil {
		return err
	}
	return store.SettleRenewalClaims(ctx, w.pool, claim, time.Now(), ids, make([]*time.Time, len(ids)), make([]bool, len(ids)))
}
