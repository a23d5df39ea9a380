package billing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/payment"
)

// Renewals claimed from the subscriptions table ([Config].ClaimRenewals; issue 18).
//
// With River's job per period, a renewal costs River about five jobs' work (it is one, and
// its step 3 inserts the next renewal with a unique insert, besides the recognition, the
// notice and the event), and renewals could not pass about 0.2× River's no-op throughput
// (BENCHMARKS.md, "Renewals in batches"). With claims, the subscriptions table is the queue:
//
//   - scheduleRenewal, the one funnel of renewal jobs (a period starts, a dunning retry,
//     Resume, a free tariff's Subscribe, the sweeper), sets billing_subscriptions.renew_at
//     to the time the job would have run, in the same transaction (store.SetRenewAt; a
//     renewal writes it with the subscription's own UPDATE, store.SaveSubscriptionRenewAt);
//   - a claim (store.ClaimRenewals) takes up to Config.ClaimChunk subscriptions whose
//     renew_at has come, FOR UPDATE SKIP LOCKED, and moves their renew_at a lease ahead
//     (Config.ClaimLease, RenewalClaimLease by default), in one statement;
//   - the chunk runs what its renewal jobs would have run (the charge protocol through the
//     renewal batches, renewClaimed): step 1 for the whole chunk in one transaction, every
//     provider call at once, and step 3 in waves of the charges that came back, so one slow
//     call holds up no one else's period; a renewal a batch does not take runs the
//     one-renewal path, as with jobs;
//   - then one statement ends the chunk's claims (store.SettleRenewalClaims) on the rows the
//     claim still holds (renew_claim: a run that scheduled its next time released its row):
//     renew_at becomes NULL, or, for a period an operator extended (errNotDue), its new end;
//     a run that failed is claimed again after a backoff, as River retries a failed job
//     (n⁴ seconds after the n-th failure in a row, at most store.RenewalBackoffMax, 6 hours;
//     never given up: River's discarded job waits for the sweeper instead).
//
// What keeps money safe does not move: the charge protocol (one attempt per period and try,
// the unguessable key, the reason to charge checked in the transaction that marks the
// attempt sent) makes a second run of the same period find the first's attempt, whoever runs
// it. A claimer killed after its claim leaves the lease, and the next claim after it finds the
// attempt; one killed before its claim committed claimed nothing.
//
// Provider calls in flight: at most Config.ClaimChunk per running claim job, so at most
// ClaimChunk × the queue's MaxWorkers (River bounded them by MaxWorkers before); each
// call still ends within gatewayCallTimeout, inside the claim job's River timeout.
//
// The claim job (jobs.ClaimRenewalsWorker) is started by PeriodicJobs every
// RenewalClaimInterval; a job whose chunk was full inserts its successor before it renews,
// so that while a backlog lasts the claims spread over River's workers and processes. The
// sweeper's renewal half gives renew_at = now to every due subscription that has none
// (store.DueWithoutClaim): the way forward of a subscription whose schedule was lost, and of
// an installation that turned claims on.

// RenewalClaimChunk is [Config].ClaimChunk's default: how many due subscriptions one claim
// takes ([Config].ClaimRenewals).
const RenewalClaimChunk = 100

// maxClaimChunk is the largest [Config].ClaimChunk: a claim job's provider calls are all in
// flight at once, and its transactions hold that many subscriptions.
const maxClaimChunk = 1000

// RenewalClaimLease is [Config].ClaimLease's default: how long a claimed subscription stays
// out of other claims, longer than a renewal run can take (River's one-minute job timeout
// bounds the claim job, and the provider call ends before it, see chargeInFlightFor). A
// subscription whose run did not end in that time is claimed again and its attempt looked
// up, never charged twice.
const RenewalClaimLease = 2 * time.Minute

// RenewalClaimInterval is how often [Engine.PeriodicJobs] starts a claim job with
// [Config].ClaimRenewals on: how late after its due instant a renewal can start, when no
// claim is running.
const RenewalClaimInterval = 5 * time.Second

// ClaimDueRenewals claims up to [Config].ClaimChunk subscriptions whose renewal is due
// ([Config].ClaimRenewals), renews them all at once, and returns how many it claimed: the
// claim job's work, for an operator or a test's runner to call by hand. It inserts no next
// claim job. A renewal that failed is logged and claimed again after a backoff (n⁴ seconds
// after the n-th failure in a row, at most 6 hours), as River retries a failed renewal job;
// the error is the claim's, or that of ending the chunk's claims (their leases then run out
// instead). With claims off it claims nothing and returns 0.
func (e *Engine) ClaimDueRenewals(ctx context.Context) (_ int, err error) {
	ctx, span := e.tel.start(ctx, "ClaimDueRenewals")
	defer span.end(&err)
	n, err := e.claimRenewals(ctx, false)
	return n, opError("ClaimDueRenewals", err)
}

// claimRenewals is ClaimDueRenewals; with successor set, a full chunk first inserts the next
// claim job (the claim job's work, ClaimRenewalsJob).
func (e *Engine) claimRenewals(ctx context.Context, successor bool) (int, error) {
	if !e.cfg.ClaimRenewals {
		return 0, nil
	}
	now := e.clock.Now()
	lease, claim := now.Add(e.cfg.ClaimLease), newID()
	claimed, err := store.ClaimRenewals(ctx, e.pool, claim, now, lease, e.cfg.ClaimChunk)
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	if successor && len(claimed) == e.cfg.ClaimChunk {
		if err := e.insertClaimJob(ctx); err != nil { // the periodic job starts the next one instead
			e.logger.WarnContext(ctx, "billing: could not insert the next renewal claim job", "error", err)
		}
	}
	ids := make([]string, len(claimed))
	next := make([]*time.Time, len(claimed))
	failed := make([]bool, len(claimed)) // the run failed: tried again after a backoff
	for i, err := range e.renewClaimed(ctx, claimed) {
		c := claimed[i]
		ids[i] = c.SubscriptionID
		var notDue *jobs.NotDueError
		switch {
		case err == nil:
		case errors.As(err, &notDue):
			at := e.clock.Now().Add(max(notDue.Wait, time.Second))
			next[i] = &at
		case c.Period == 0: // no period yet: nothing a renewal can do (renewPeriod refused it)
		default:
			failed[i] = true
			e.logger.WarnContext(ctx, "billing: a claimed renewal failed; it is claimed again after a backoff",
				"subscription", c.SubscriptionID, "period", c.Period, "error", err)
		}
	}
	// Ended under a context of its own too: a claim job whose context ended still ends its
	// claims, so that its subscriptions wait no lease (the statement waits on no lock).
	settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	return len(claimed), store.SettleRenewalClaims(settleCtx, e.pool, claim, e.clock.Now(), ids, next, failed)
}

// renewClaimed renews a claimed chunk and returns each renewal's error, as renewPeriod
// would have: step 1 in batches of at most Config.RenewalBatchSize (one for a chunk of the
// default sizes), each batch's provider calls started as soon as its transaction commits (a
// call starts right after its attempt is marked sent, as chargeInFlightFor counts on), and
// step 3 in waves: each wave takes the succeeded charges that came back while the wave before
// ran, so one slow call holds up no one else's period. A renewal a batch does not take runs
// the one-renewal path, exactly as in renewBatched. The batches and everything after the
// calls run as the batchers run them (runSafely): under a context of their own, so that a
// claim job's context ending (River's timeout, a shutdown) never leaves charges that came
// back unrecorded, and with a panic turned into the batch's error (in a renewal's own
// goroutine, into that renewal's: recoverRenewal). With batches off
// (RenewalBatchSize 1) each renewal runs the one-renewal path (chargePeriod), its step 3 under
// a context of its own too.
func (e *Engine) renewClaimed(ctx context.Context, claimed []store.SubscriptionPeriod) []error {
	errs := make([]error, len(claimed))
	gw := e.cfg.Gateway
	// after is the context of what follows a provider call: the claim's values, not its end
	// (a claim job whose context ends still records the answers that came back), and a
	// deadline of its own for each use, counted from then.
	after := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), batchTimeout+gatewayCallTimeout)
	}
	var keys []renewKey
	var at []int // the index in claimed of keys[j]
	var wg sync.WaitGroup
	for i, c := range claimed {
		if e.cfg.RenewalBatchSize > 1 && gw != nil && c.Period >= 1 {
			keys, at = append(keys, renewKey{subID: c.SubscriptionID, number: c.Period + 1}), append(at, i)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer recoverRenewal(&errs[i])
			actx, cancel := after() // batches off: the one-renewal path, step 3 under after
			defer cancel()
			errs[i] = e.renewPeriodSettlingIn(ctx, actx, c.SubscriptionID, c.Period)
		}()
	}
	type paid struct {
		i    int // in claimed
		a    store.AttemptRow
		span span // ended with the outcome of step 3
	}
	succeeded := make(chan paid, len(keys))
	var calls sync.WaitGroup
	for first := 0; first < len(keys); first += e.cfg.RenewalBatchSize {
		part := keys[first:min(first+e.cfg.RenewalBatchSize, len(keys))]
		prepared := e.renewals.prepare.runSafely(ctx, part)
		e.renewals.prepare.ran(len(part))
		for j, k := range part {
			i, r := at[first+j], prepared[j]
			calls.Add(1)
			go func() {
				defer calls.Done()
				defer recoverRenewal(&errs[i])
				ctx, sp := e.tel.start(ctx, "RenewPeriod", subAttr(k.subID))
				p, err := r.prepared, r.err
				if r.fallback {
					p, err = e.prepareAttempt(ctx, k.subID, payment.PurposeRenewal, k.number, "")
				}
				actx, cancel := after()
				defer cancel()
				switch {
				case err != nil || p.attempt.ID == "":
				case !p.send || p.attempt.State != payment.StateCreated:
					_, err = e.runAttemptSettlingIn(ctx, actx, gw, p) // a lookup, or a call again
				default:
					var a store.AttemptRow
					if a, err = e.callGateway(ctx, gw, p.attempt, p.target); err == nil {
						if a.State == payment.StateSucceeded {
							succeeded <- paid{i: i, a: a, span: sp} // step 3 in a wave below
							return
						}
						_, err = e.settleInTx(actx, a)
					}
				}
				errs[i] = opError("RenewPeriod", err)
				sp.end(&errs[i])
			}()
		}
	}
	go func() { calls.Wait(); close(succeeded) }()
	for first := range succeeded {
		wave := []paid{first}
	more:
		for len(wave) < e.cfg.RenewalBatchSize {
			select {
			case p, ok := <-succeeded:
				if !ok {
					break more
				}
				wave = append(wave, p)
			default:
				break more
			}
		}
		rows := make([]store.AttemptRow, len(wave))
		for k, p := range wave {
			rows[k] = p.a
		}
		e.renewals.settle.ran(len(rows))
		for k, s := range e.renewals.settle.runSafely(context.WithoutCancel(ctx), rows) { // its own deadline
			p := wave[k]
			if !s.fallback {
				errs[p.i] = opError("RenewPeriod", s.err)
				p.span.end(&errs[p.i])
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer recoverRenewal(&errs[p.i])
				actx, cancel := after()
				defer cancel()
				_, err := e.settleInTx(actx, p.a)
				errs[p.i] = opError("RenewPeriod", err)
				p.span.end(&errs[p.i])
			}()
		}
	}
	wg.Wait()
	return errs
}

// recoverRenewal, deferred in a goroutine of a claimed chunk, turns a panic there (in a host's
// gateway or receipt contact, say) into that renewal's error, as River turns a renewal job's
// panic into the job's failure: the process goes on, the claim's other renewals are
// recorded, and this one is claimed again after a backoff, where its attempt is looked up.
func recoverRenewal(err *error) {
	if p := recover(); p != nil {
		*err = opError("RenewPeriod", fmt.Errorf("billing: a claimed renewal panicked: %v", p))
	}
}

// insertClaimJob inserts a claim job in the engine's queue.
func (e *Engine) insertClaimJob(ctx context.Context) error {
	client, err := e.riverClient()
	if err != nil {
		return err
	}
	_, err = client.Insert(ctx, jobs.ClaimRenewalsArgs{}, nil)
	return err
}

// scheduleRenewal schedules the renewal run of period of subscription id at at, in tx: the
// renewal job (try counts the dunning retries, each its own unique job) or, with
// Config.ClaimRenewals, the subscription's renew_at.
func (e *Engine) scheduleRenewal(ctx context.Context, tx pgx.Tx, id string, period, try int, at time.Time) error {
	return e.insertJobs(ctx, tx, renewalJob(id, period, try, at))
}

// claimRenewalJobs takes the renewal jobs out of params and, with Config.ClaimRenewals,
// sets each one's subscription's renew_at to its scheduled time instead, in tx (a batch's
// pipeline included); without claims it returns params as they are.
func (e *Engine) claimRenewalJobs(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]river.InsertManyParams, error) {
	if !e.cfg.ClaimRenewals && !e.skipRenewalJobs {
		return params, nil
	}
	var rest []river.InsertManyParams
	for _, p := range params {
		r, ok := p.Args.(jobs.RenewArgs)
		if !ok {
			rest = append(rest, p)
			continue
		}
		if e.skipRenewalJobs {
			continue
		}
		at := e.clock.Now()
		if p.InsertOpts != nil && !p.InsertOpts.ScheduledAt.IsZero() {
			at = p.InsertOpts.ScheduledAt
		}
		if err := store.SetRenewAt(ctx, tx, r.SubscriptionID, at); err != nil {
			return nil, err
		}
	}
	return rest, nil
}
