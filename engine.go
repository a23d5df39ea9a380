// Package billing is the shell of the billing engine: [Engine] runs every command (subscribe,
// consume, renew, refund…) as one PostgreSQL transaction that locks its rows, asks the pure
// policy packages for the decision, and writes the new state, the ledger entries and the
// River jobs together. Commit or nothing.
//
// The host application owns the [*pgxpool.Pool] and its River client; the engine registers
// its workers into the host's [*river.Workers] and inserts jobs through the host's client.
//
// The package example (Example) is that wiring, compiled, with every error handled:
// [New], [Engine.Migrate] (or the host's own tool over [MigrationsFS]),
// [Engine.RegisterWorkers] before the River client is made, [Engine.UseRiver],
// [Engine.CheckSchema] before serving.
//
// The rules the engine enforces come from the service terms (see the README's rules table);
// the policy itself lives in the packages [tariff], [subscription], [payment], [refund],
// [ledger] and [calendar].
//
// # Money is never lost and never taken twice
//
// The provider is the truth about money. Whatever customers, operators, the provider and the
// machines do at once:
//   - Every charge the gateway reports as succeeded is in the ledger exactly once: applied to
//     its period (activation, renewal), or, when the subscription can no longer take it
//     (abandoned checkout, ended, terminated, refunded, suspended, the period paid by another
//     charge), booked as an unapplied payment owed back and refunded through the gateway with
//     its 54-FZ return receipt ([Engine.UnappliedPaymentList]). Every refund the gateway paid is in the
//     ledger exactly once, whatever state the subscription is in. No transaction after a
//     gateway call rolls back the record of that call because a lifecycle transition refused.
//   - At most one applied charge per subscription period (a unique index), and no charge
//     without a live reason: right before every Charge, in the transaction that marks the
//     attempt sent, the engine re-checks that the subscription still waits for that period,
//     auto-renew is on (renewals and retries), consent stands and the token belongs to the
//     subscription's customer. Otherwise the attempt is canceled and never sent.
//   - Gateway keys are unguessable (an HMAC under a per-installation secret) and the same
//     for the same attempt after a lost commit; webhooks are hints, confirmed with the
//     gateway before anything changes ([ErrWebhookNotConfirmed]).
//   - Every subscription has a way forward: final, a scheduled job, or suspended (waiting for
//     a person). Reconciliation and the sweeper handle items one by one; a failing item is
//     retried with backoff and parked for a person ([Engine.AttemptListParked]), never blocking others.
//
// RELIABILITY.md says how this is checked: regression tests, a model-based test of every
// command against the fake provider's own record, and a multi-process kill -9 test.
//
// # Commands in the host's transaction
//
// Every command that changes state without calling the provider has a …Tx form
// ([Engine.SubscribeTx], [Engine.ConsumeTx], [Engine.RequestRefundTx]…) that runs in a pgx.Tx
// the host began: the host's rows and the engine's commit together, and a rollback leaves
// nothing of either. The engine's work runs in a savepoint, so a refused command leaves the
// host's transaction usable; the …Tx forms never retry (only the host can retry its whole
// transaction). Commands that call the provider have none: what the provider answered must
// be recorded whatever the host's transaction does next. dbtx.go lists the traps.
//
// # Errors
//
// Every command's error is an [*Error] (or an [*InputError]) of one [ErrorKind]; [KindOf]
// and [HTTPStatus] map any of them, and errors.Is matches the kind's sentinel
// ([ErrInvalidInput], [ErrNotFound], [ErrConflict], [ErrNoAccess], [ErrLimitExceeded],
// [ErrUnavailable], [ErrInternal]) as well as every detail sentinel in the cause.
package billing

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/internal/store"
)

// Engine is the billing engine. It is safe for concurrent use; create one per process
// with [New].
type Engine struct {
	pool   *pgxpool.Pool
	loc    *time.Location
	clock  Clock
	logger *slog.Logger
	cfg    Config
	tel    *telemetry // spans and metrics (telemetry.go); wraps cfg.Gateway

	mu    sync.RWMutex
	river *river.Client[pgx.Tx]

	keyMu     sync.Mutex
	keySecret []byte // the installation's gateway key secret, read once (gatewayKey)

	renewals *renewalBatches // the renewal batchers (renewals_batch.go)

	consumeCommon store.ConsumeCrossing                       // Consume's common-case statement for cfg.UsageThresholds
	consumeBatch  *batcher[consumeItem, store.ConsumeOutcome] // Consume's batches (usage_batch.go)
	consumeAlone  consumeAlone                                // how many Consume calls run the one-call path on their own now

	// skipRenewalJobs: insertJobs leaves out renewal jobs (billing_renew). Set only by a
	// benchmark (export_test.go, SkipRenewalJobs) that measures renewals claimed in batches
	// without a River job per period (BenchmarkRenewalsDueAtOnce, the claimed cases).
	skipRenewalJobs bool

	sweepChunk  int // the renewal sweep's chunk (sweepRenewals); 0: sweepChunk. Tests set it (export_test.go).
	sweepChunks int // the renewal sweep's chunks per run; 0: sweepChunks. Tests set it.

	sweepMu     sync.Mutex
	sweepCursor store.DueCursor            // where the last renewal sweep stopped (sweepRenewals); zero: at the first
	sweepRetry  []store.SubscriptionPeriod // renewals the last sweep found but could not enqueue: the next tries them first

	pendingListRefused atomic.Bool // the role may not clean River's GIN pending list (said once; cleanArgsPendingList)
}

// New returns an Engine on pool. It fills every default of cfg (each [Config] field says
// its own), validates the result and returns a [*ConfigError] naming every missing or bad
// field; a nil pool is refused too. New does no I/O: call [Engine.Migrate] before the
// first command.
func New(pool *pgxpool.Pool, cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	err := cfg.validate()
	if pool == nil {
		var ce *ConfigError
		if !errors.As(err, &ce) {
			ce = &ConfigError{}
		}
		ce.Problems = append([]FieldProblem{{"pool", "required: a *pgxpool.Pool connected to the billing database"}}, ce.Problems...)
		err = ce
	}
	if err != nil {
		return nil, err
	}
	tel := newTelemetry(pool, &cfg) // before cfg is copied: it wraps cfg.Gateway
	e := &Engine{pool: pool, loc: cfg.Location, clock: cfg.Clock, logger: cfg.Logger, cfg: cfg, tel: tel,
		consumeCommon: store.NewConsumeCrossing(cfg.UsageThresholds)}
	e.consumeAlone.max.Store(consumeAloneAtOnce)
	e.renewals = e.newRenewalBatches()
	e.consumeBatch = &batcher[consumeItem, store.ConsumeOutcome]{max: cfg.ConsumeBatchSize, run: e.consumeCalls,
		fail: func(error) store.ConsumeOutcome { return store.ConsumeOutcome{} }}
	return e, nil
}

// RegisterWorkers adds the engine's River workers to the host's workers bundle. Call it
// before [river.NewClient], which takes the bundle in its Config. The engine inserts every
// job in [Config].Queue (River's default queue unless set): the host must run a River client
// that works that queue ([river.Config].Queues), or the engine's jobs (renewals, refunds,
// reservation expiry…) wait forever.
func (e *Engine) RegisterWorkers(workers *river.Workers) error {
	if workers == nil {
		return errors.New("billing: RegisterWorkers: nil *river.Workers")
	}
	w := jobWorker{e}
	return errors.Join(
		river.AddWorkerSafely(workers, &jobs.ExpireReservationWorker{Engine: w}),
		river.AddWorkerSafely(workers, &jobs.RecognizeRevenueWorker{Engine: w}),
		river.AddWorkerSafely(workers, &jobs.EscalateRefundWorker{Engine: w}),
		river.AddWorkerSafely(workers, &jobs.RetryRefundWorker{Engine: w}),
		river.AddWorkerSafely(workers, &jobs.EscalateDeletionWorker{Engine: w}),
		river.AddWorkerSafely(workers, &jobs.RenewWorker{Engine: w}),
		river.AddWorkerSafely(workers, &jobs.SweepWorker{Engine: w}),
		river.AddWorkerSafely(workers, &jobs.ClaimRenewalsWorker{Engine: w}),
		river.AddWorkerSafely(workers, &jobs.ReconcileWorker{Engine: w}),
		river.AddWorkerSafely(workers, &jobs.RefundUnappliedWorker{Engine: w}),
		river.AddWorkerSafely(workers, &jobs.PruneExpiredWorker{Engine: pruneWorker{e}}),
		river.AddWorkerSafely(workers, &jobs.LedgerCheckpointWorker{Engine: ledgerWorker{e}}),
		river.AddWorkerSafely(workers, &jobs.DeliverEventWorker{Engine: eventWorker{e}}),
		river.AddWorkerSafely(workers, &jobs.RenewalNoticeWorker{Engine: eventWorker{e}}),
	)
}

// jobWorker is the engine as the River workers of internal/jobs see it (Renewer,
// RefundHandler, DeletionHandler, ReservationExpirer, RevenueRecognizer, Maintainer,
// UnappliedRefunder), as River keeps its maintenance work off its Client: the handlers that
// only a job runs stay off Engine's exported methods. Where a host or an operator may also
// call the work by hand (RecognizeRevenue, SweepDueRenewals, ReconcilePayments,
// RefundUnapplied), the worker calls the same exported method.
type jobWorker struct{ e *Engine }

// RenewPeriod is renewPeriod (jobs.RenewWorker).
func (w jobWorker) RenewPeriod(ctx context.Context, subscriptionID string, period int) error {
	return w.e.renewPeriod(ctx, subscriptionID, period)
}

// ClaimRenewalsJob is claimRenewals with the next claim job inserted after a full chunk
// (jobs.ClaimRenewalsWorker).
func (w jobWorker) ClaimRenewalsJob(ctx context.Context) (int, error) {
	return w.e.claimRenewals(ctx, true)
}

// RetryRefund is retryRefund (jobs.RetryRefundWorker).
func (w jobWorker) RetryRefund(ctx context.Context, requestID string) error {
	return w.e.retryRefund(ctx, requestID)
}

// EscalateRefund is escalateRefund (jobs.EscalateRefundWorker).
func (w jobWorker) EscalateRefund(ctx context.Context, requestID string) error {
	return w.e.escalateRefund(ctx, requestID)
}

// EscalateAccountDeletion is escalateAccountDeletion (jobs.EscalateDeletionWorker).
func (w jobWorker) EscalateAccountDeletion(ctx context.Context, requestID string) error {
	return w.e.escalateAccountDeletion(ctx, requestID)
}

// ExpireReservation is expireReservation (jobs.ExpireReservationWorker).
func (w jobWorker) ExpireReservation(ctx context.Context, reservationID string) error {
	return w.e.expireReservation(ctx, reservationID)
}

// RecognizeRevenue is Engine.RecognizeRevenue (jobs.RecognizeRevenueWorker).
func (w jobWorker) RecognizeRevenue(ctx context.Context, subscriptionID string, period int) error {
	return w.e.RecognizeRevenue(ctx, subscriptionID, period)
}

// SweepDueRenewals is Engine.SweepDueRenewals (jobs.SweepWorker).
func (w jobWorker) SweepDueRenewals(ctx context.Context) (int, error) {
	return w.e.SweepDueRenewals(ctx)
}

// ReconcilePayments is Engine.ReconcilePayments (jobs.ReconcileWorker).
func (w jobWorker) ReconcilePayments(ctx context.Context) (int, error) {
	return w.e.ReconcilePayments(ctx)
}

// RefundUnapplied is Engine.RefundUnapplied (jobs.RefundUnappliedWorker).
func (w jobWorker) RefundUnapplied(ctx context.Context, unappliedID string) error {
	return w.e.RefundUnapplied(ctx, unappliedID)
}

// riverClient returns the client given to UseRiver, wrapped to insert in the engine's queue
// at its priority, or ErrNoRiverClient.
func (e *Engine) riverClient() (*jobClient, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.river == nil {
		return nil, ErrNoRiverClient
	}
	return &jobClient{client: e.river, queue: e.cfg.Queue, priority: e.cfg.Priority}, nil
}

// riverSchema returns the schema of the client given to UseRiver ("" before UseRiver, or
// when River is on the search_path).
func (e *Engine) riverSchema() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.river == nil {
		return ""
	}
	return e.river.Schema()
}

// jobClient is the host's River client as the engine inserts through it: every job goes in
// Config.Queue at Config.Priority, unless its insert options name their own.
type jobClient struct {
	client   *river.Client[pgx.Tx]
	queue    string
	priority int
}

// InsertTx is river.Client.InsertTx in the engine's queue.
func (c *jobClient) InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return c.client.InsertTx(ctx, tx, args, c.opts(opts))
}

// Insert is river.Client.Insert in the engine's queue.
func (c *jobClient) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return c.client.Insert(ctx, args, c.opts(opts))
}

// InsertManyTx is river.Client.InsertManyTx in the engine's queue.
func (c *jobClient) InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	out := make([]river.InsertManyParams, len(params))
	for i, p := range params {
		out[i] = river.InsertManyParams{Args: p.Args, InsertOpts: c.opts(p.InsertOpts)}
	}
	return c.client.InsertManyTx(ctx, tx, out)
}

// opts returns a copy of opts with the engine's queue and priority where opts has none.
func (c *jobClient) opts(opts *river.InsertOpts) *river.InsertOpts {
	out := river.InsertOpts{}
	if opts != nil {
		out = *opts
	}
	out.Queue = cmp.Or(out.Queue, c.queue)
	out.Priority = cmp.Or(out.Priority, c.priority)
	return &out
}

// queueOpts returns insert options that put a job in the engine's queue at its priority.
func (e *Engine) queueOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: e.cfg.Queue, Priority: e.cfg.Priority}
}

// riverInsertOpts is River's InsertOpts under a short name.
type riverInsertOpts = river.InsertOpts

// UseRiver hands the engine the host's River client, through which it inserts its jobs
// (always inside the command's own transaction, with InsertTx). Call it once, after
// [river.NewClient]; commands that schedule jobs fail with [ErrNoRiverClient] before it.
// The engine reads River's tables in the client's schema ([river.Config].Schema) from then
// on: the renewal sweeper, [Engine.Migrate] and [Engine.CheckSchema].
func (e *Engine) UseRiver(client *river.Client[pgx.Tx]) error {
	if client == nil {
		return errors.New("billing: UseRiver: nil client")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.river = client
	return nil
}

// ErrNoRiverClient is returned by a command that must schedule a job when
// [Engine.UseRiver] has not been called.
var ErrNoRiverClient = errors.New("billing: no River client: call Engine.UseRiver first")

// Location returns the engine's location ([Config].Location).
func (e *Engine) Location() *time.Location { return e.loc }

// Now returns the engine clock's current instant.
func (e *Engine) Now() time.Time { return e.clock.Now() }
