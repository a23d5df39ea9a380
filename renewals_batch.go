package billing

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"

	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// Renewals in batches (issue 18).
//
// Every renewal is still its own River job and runs the charge protocol of chargePeriod, but
// the renewal jobs that run at the same moment share its two transactions:
//
//   - step 1 for a batch: one transaction locks the batch's subscriptions in id order, reads
//     what the reason to charge needs with one statement per table, and inserts the
//     attempts through one pipeline (store.Pipeline: one round trip);
//   - step 2: every job calls the provider itself, concurrently, outside any transaction (the
//     engine queue's MaxWorkers bounds how many calls are in flight);
//   - step 3 for a batch of succeeded charges: one transaction locks the subscriptions and
//     attempts, starts every paid period with the same code as the one-renewal path (applyPaid)
//     writing through a pipeline, and inserts every job of the batch with one InsertManyTx.
//
// The pipeline writes the batch's rows many to a statement: the attempts, subscriptions,
// periods, usage, events and audit entries of the whole batch go out as one multi-row
// statement per table (store.Pipeline, internal/store/rows.go), its ledger transactions as
// one. With Config.ClaimRenewals the batches are a claimed chunk's (renewClaimed) instead of
// the jobs that arrive at once.
//
// Only the common case is batched: a period with no attempt yet, due, charged from a saved
// method whose reason to charge stands (step 1), and a charge that succeeded and that its
// subscription can take (step 3). Anything else (an attempt left by an earlier run, a free
// tariff, an ended subscription, a decline, a webhook that settled the attempt first, any
// error) falls back to the one-renewal path (prepareAttempt, settleInTx), which runs after
// the batch's transaction and decides from what is then stored. A batch whose transaction
// fails for any reason writes nothing, and each of its renewals falls back. So the batch
// path only ever does what the one-renewal path would have done, and the one-renewal path
// keeps every guarantee of RELIABILITY.md; TestRenewalBatchWritesWhatTheOneRenewalPathWrites
// checks the first half of that sentence row by row.

// batchWrites is a batch's transaction: writes go through a store.Pipeline, River jobs are
// collected (insertJobs) and inserted together, and the start of every subscription's
// period 1 is read beforehand for all of them (firstPeriodStart).
type batchWrites struct {
	*store.Pipeline
	jobs        []river.InsertManyParams
	firstStarts map[string]time.Time
}

// firstPeriodStart is store.FirstPeriodStart, or the value a batch read for all of its
// subscriptions at once.
func firstPeriodStart(ctx context.Context, tx pgx.Tx, subID string) (time.Time, error) {
	if bw, ok := tx.(*batchWrites); ok {
		if t, ok := bw.firstStarts[subID]; ok {
			return t, nil
		}
	}
	return store.FirstPeriodStart(ctx, tx, subID)
}

// renewBatched is chargePeriod for a renewal, through the batches.
func (e *Engine) renewBatched(ctx context.Context, subID string, number int) error {
	gw := e.cfg.Gateway
	if gw == nil {
		return ErrNoGateway
	}
	r := e.renewals.prepare.do(ctx, renewKey{subID: subID, number: number})
	p, err := r.prepared, r.err
	if r.fallback {
		p, err = e.prepareAttempt(ctx, subID, payment.PurposeRenewal, number, "")
	}
	if err != nil || p.attempt.ID == "" {
		return err
	}
	if !p.send || p.attempt.State != payment.StateCreated {
		_, err := e.runAttempt(ctx, gw, p)
		return err
	}
	a, err := e.callGateway(ctx, gw, p.attempt, p.target)
	if err != nil {
		return err
	}
	if a.State == payment.StateSucceeded {
		if s := e.renewals.settle.do(ctx, a); !s.fallback {
			return s.err
		}
	}
	_, err = e.settleInTx(ctx, a)
	return err
}

// renewKey is one renewal in a step 1 batch: period number of subscription subID.
type renewKey struct {
	subID  string
	number int
}

// prepareResult is what step 1 of a batch gives one renewal; fallback: the batch did not
// take it, and the renewal runs the one-renewal path (prepareAttempt).
type prepareResult struct {
	prepared preparedCharge
	err      error
	fallback bool
}

// settleResult is what step 3 of a batch gives one renewal; fallback: the batch did not
// take it, and the renewal runs settleInTx.
type settleResult struct {
	err      error
	fallback bool
}

// renewalBatches are the engine's two batchers, made in New.
type renewalBatches struct {
	prepare *batcher[renewKey, prepareResult]
	settle  *batcher[store.AttemptRow, settleResult]
}

// newRenewalBatches makes e's renewal batchers (no I/O), at most Config.RenewalBatchSize
// renewals a batch.
func (e *Engine) newRenewalBatches() *renewalBatches {
	return &renewalBatches{
		prepare: &batcher[renewKey, prepareResult]{max: e.cfg.RenewalBatchSize, run: e.prepareRenewals,
			fail: func(err error) prepareResult { return prepareResult{err: err} }},
		settle: &batcher[store.AttemptRow, settleResult]{max: e.cfg.RenewalBatchSize, run: e.settleRenewals,
			fail: func(err error) settleResult { return settleResult{err: err} }},
	}
}

// prepareRenewals is step 1 of the charge protocol for a batch of renewals (see the top of
// this file); a renewal it does not take is marked fallback.
func (e *Engine) prepareRenewals(ctx context.Context, keys []renewKey) []prepareResult {
	out := make([]prepareResult, len(keys))
	err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		for i := range out {
			out[i] = prepareResult{fallback: true}
		}
		if err := batchLockTimeout(ctx, tx); err != nil {
			return err
		}
		order, ids := batchOrder(len(keys), func(i int) string { return keys[i].subID })
		subs, err := store.LockSubscriptions(ctx, tx, ids)
		if err != nil {
			return err
		}
		numbers := make([]int32, len(order))
		for j, i := range order {
			numbers[j] = int32(keys[i].number)
		}
		started, err := store.SubscriptionsWithAttempts(ctx, tx, ids, numbers)
		if err != nil {
			return err
		}
		var tokens, codes []string
		for _, s := range subs {
			tokens, codes = append(tokens, s.PaymentMethod), append(codes, s.Checkout.Code)
		}
		methods, err := store.PaymentMethods(ctx, tx, tokens)
		if err != nil {
			return err
		}
		versions := map[string][]tariff.Version{}
		for _, c := range compactSorted(codes) {
			if versions[c], err = store.Versions(ctx, tx, c); err != nil {
				return err
			}
		}
		if _, err := e.gatewayKey(ctx, tx, "warm"); err != nil { // reads the key secret before writes are queued
			return err
		}
		// The attempts' sent_at is read now, after every lock and read, right before the
		// commit that lets the provider calls go (chargeInFlightFor counts from it).
		now := e.clock.Now()
		bw := &batchWrites{Pipeline: store.NewPipeline(tx)}
		for _, i := range order {
			k := keys[i]
			sub, ok := subs[k.subID]
			if !ok || started[k.subID] || sub.Current == nil || sub.Current.Number != k.number-1 {
				continue
			}
			d := subscription.DecideRenewal(sub, now)
			if d.Action != subscription.RenewalCharge {
				continue
			}
			terms, err := renewalTerms(sub, versions[sub.Checkout.Code], d)
			if err != nil || terms.IsFree() {
				continue
			}
			m := methods[sub.PaymentMethod]
			target, nr := methodReason(sub, payment.PurposeRenewal, m.Status, m.Owner, now)
			if nr != nil {
				continue
			}
			a, err := e.firstAttempt(ctx, tx, sub.ID, payment.PurposeRenewal, k.number, terms, d.At, "", now)
			if err != nil {
				continue
			}
			if err := store.InsertAttempt(ctx, bw, a); err != nil {
				return err
			}
			out[i] = prepareResult{prepared: preparedCharge{attempt: a, send: true, target: target}}
		}
		return bw.Flush(ctx)
	})
	if err != nil {
		fallback := e.batchFailed(ctx, "prepare", len(keys), err)
		for i := range out {
			out[i] = prepareResult{fallback: fallback, err: err}
		}
	}
	return out
}

// settleRenewals is step 3 of the charge protocol for a batch of succeeded renewal charges
// (see the top of this file); a renewal it does not take is marked fallback.
func (e *Engine) settleRenewals(ctx context.Context, observed []store.AttemptRow) []settleResult {
	out := make([]settleResult, len(observed))
	err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		for i := range out {
			out[i] = settleResult{fallback: true}
		}
		if err := batchLockTimeout(ctx, tx); err != nil {
			return err
		}
		order, ids := batchOrder(len(observed), func(i int) string { return observed[i].SubscriptionID })
		subs, err := store.LockSubscriptions(ctx, tx, ids)
		if err != nil {
			return err
		}
		attemptIDs := make([]string, len(order))
		for j, i := range order {
			attemptIDs[j] = observed[i].ID
		}
		slices.Sort(attemptIDs)
		stored, err := store.LockAttempts(ctx, tx, attemptIDs)
		if err != nil {
			return err
		}
		var later []string // renewals of a period after period 1 need its start (renew)
		for _, s := range subs {
			if s.Current != nil && s.Current.Number != 1 {
				later = append(later, s.ID)
			}
		}
		starts, err := store.FirstPeriodStarts(ctx, tx, later)
		if err != nil {
			return err
		}
		now := e.clock.Now() // after the locks, as settle reads it
		bw := &batchWrites{Pipeline: store.NewPipeline(tx), firstStarts: starts}
		for _, i := range order {
			o := observed[i]
			sub, okSub := subs[o.SubscriptionID]
			a, okA := stored[o.ID]
			if !okSub || !okA || a.State.Settled() || o.State != payment.StateSucceeded || o.Purpose != payment.PurposeRenewal ||
				o.ConfirmationURL != "" || o.SavedMethod != "" || cannotApply(sub, o, now) != "" {
				continue // settle decides: a webhook won, the subscription changed…
			}
			a.Attempt = o.Attempt // what settle does with news about an unsettled attempt
			if err := store.UpdateAttempt(ctx, bw, a); err != nil {
				return err
			}
			if err := e.applyPaid(ctx, bw, sub, a, now); err != nil {
				return err // the whole batch falls back; settle's savepoint decides this one
			}
			out[i] = settleResult{}
		}
		if err := bw.Flush(ctx); err != nil {
			return err
		}
		if len(bw.jobs) == 0 {
			return nil
		}
		client, err := e.riverClient()
		if err != nil {
			return err
		}
		_, err = client.InsertManyTx(ctx, tx, bw.jobs)
		return err
	})
	if err != nil {
		fallback := e.batchFailed(ctx, "settle", len(observed), err)
		for i := range out {
			out[i] = settleResult{fallback: fallback, err: err}
		}
	}
	return out
}

// batchLockWait bounds how long a batch waits on a row lock (a usage row a Consume holds, an
// attempt a webhook settles): far less than the margin between gatewayCallTimeout and
// chargeInFlightFor, and short enough not to hold a batch's other subscriptions long. A batch
// that times out falls back (more than one renewal) or fails its one job, which River retries.
const batchLockWait = "2s"

// batchLockTimeout sets batchLockWait as the lock_timeout of the batch's transaction.
func batchLockTimeout(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+batchLockWait+"'")
	return err
}

// batchFailed decides what a batch of n renewals whose transaction failed with err does,
// and logs it. It falls back (true: each renewal runs the one-renewal path at once) when the
// batch diverged from what the one-renewal path does at that point (a queued write that did
// not write its row, a subscription that refused the transition, a unique violation: the
// one-renewal path decides those, with its savepoint), or when it held more than one renewal
// (one renewal's fault must not fail the others). A batch of one renewal that failed
// otherwise (the database, a timeout) returns the error, exactly as the one-renewal path
// would: the River job fails and is retried, and its next run finds the attempt.
func (e *Engine) batchFailed(ctx context.Context, step string, n int, err error) bool {
	var te *subscription.TransitionError
	var ve *subscription.ValidationError
	var pgErr *pgconn.PgError
	diverged := errors.Is(err, store.ErrPipelineDiverged) || errors.As(err, &te) || errors.As(err, &ve) ||
		errors.As(err, &pgErr) && pgErr.Code == "23505"
	if !diverged && n == 1 {
		return false
	}
	level := slog.LevelWarn
	if diverged {
		level = slog.LevelInfo // a race the one-renewal path settles: a webhook, a command between the steps
	}
	e.logger.Log(ctx, level, "billing: a renewal batch fell back to one renewal at a time",
		"step", step, "renewals", n, "error", err.Error())
	return true
}

// batchOrder returns the indexes 0..n-1 whose subscription (sub(i)) comes first in the
// batch, in subscription id order, and those ids: a second renewal of the same subscription
// in one batch is left out (it falls back).
func batchOrder(n int, sub func(int) string) ([]int, []string) {
	order := make([]int, 0, n)
	seen := make(map[string]bool, n)
	for i := range n {
		if !seen[sub(i)] {
			seen[sub(i)] = true
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		switch x, y := sub(a), sub(b); {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	ids := make([]string, len(order))
	for j, i := range order {
		ids[j] = sub(i)
	}
	return order, ids
}

func compactSorted(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
