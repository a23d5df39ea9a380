package billing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Moscow must load in a bare container.

	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/smm-gpt/billing/calendar"
	"github.com/smm-gpt/billing/payment"
)

// Config configures an Engine. Start from [DefaultConfig] and change what differs. Each
// field's comment ends with its default ("Defaults to …") or says it is required; [New]
// fills every default and then validates every field, naming each bad one in a
// [*ConfigError].
type Config struct {
	// Location is where calendar reasoning happens: business days, month ends, "the day
	// after" (TERMS 6.3). [DefaultConfig] sets Europe/Moscow. A nil Location is refused
	// rather than silently taken as UTC, which would move deadlines by hours. Required.
	Location *time.Location

	// Clock is the engine's source of time. Tests pass a *billingtest.Clock. Defaults to
	// [SystemClock].
	Clock Clock

	// Logger receives the engine's logs. Defaults to a logger that discards them
	// ([slog.DiscardHandler]).
	Logger *slog.Logger

	// TracerProvider gives the engine's tracer (scope [InstrumentationName]): a span per
	// command ("billing.Subscribe"…) and per payment provider call ("billing.gateway.Charge"…),
	// under the caller's span in ctx. The engine never reads OpenTelemetry's global
	// provider on its own: a host that wants it passes otel.GetTracerProvider(). Spans carry
	// no personal data (no token, no receipt contact, no customer ID; TERMS 5.1). Defaults
	// to a no-op provider.
	TracerProvider trace.TracerProvider

	// MeterProvider gives the engine's meter (scope [InstrumentationName]): billing.charges,
	// billing.renewal.lag, billing.consume.duration, billing.consume.refusals and the
	// gauges billing.attempts.open, billing.parked and billing.refunds.near_deadline (each
	// one indexed count per collection, on the engine's pool). Trap: New registers the
	// gauges' callback for the provider's lifetime, so make one engine per process and
	// provider, or every engine reports the gauges. The engine never reads OpenTelemetry's
	// global provider on its own: a host that wants it passes otel.GetMeterProvider().
	// Defaults to a no-op provider.
	MeterProvider metric.MeterProvider

	// Gateway is the payment provider adapter charges and refunds go through. Tests use
	// billingtest.Gateway. Defaults to none: commands that must call the provider return
	// [ErrNoGateway] (a host that reports payments with [Engine.ConfirmFirstPayment] needs
	// none).
	Gateway payment.Gateway

	// Dunning is when a soft-declined renewal is retried, counted from the period end.
	// Each retry is a new attempt with its own key; after the last one fails the
	// subscription ends. Defaults to [payment.DefaultDunningSchedule] (1, 3 and 5 days).
	Dunning payment.DunningSchedule

	// VAT is the VAT code put on 54-FZ receipts. Most operators on the general tax system
	// set the calculated rate of prepayment ([payment.VAT22Of122] from 2026). Defaults to
	// [payment.VATNone].
	VAT payment.VATCode

	// ReceiptContact, when set, returns where customerID's 54-FZ receipts go (an e-mail or a
	// phone). The engine asks it before every charge and refund, since it keeps no personal
	// data (TERMS 5.1), and puts the contact on the receipt. An error makes the charge or
	// refund wait for a later run, as an unknown outcome does; nothing is sent without the
	// receipt the law asks for. Defaults to none: receipts go without a contact, which some
	// providers (YooKassa) refuse, so set it with a real provider.
	ReceiptContact func(ctx context.Context, customerID string) (payment.Contact, error)

	// Calendar is the production calendar business days are counted on: the 3.7 refund
	// window and the 3.8 payout deadline. Trap: a calendar that does not cover the year of
	// a request makes the refund commands fail rather than guess. Defaults to
	// [calendar.Russia] (the Russian production calendar the library ships).
	Calendar calendar.BusinessCalendar

	// OnRefundEscalation, when set, is called by the escalation job for each refund
	// request still unpaid two days before its payout deadline (TERMS 3.8); the engine
	// logs the escalation at Warn either way. It runs inside a River worker: keep it
	// quick and non-blocking (hand the event to a queue or channel), and make it safe to
	// call twice for one request, since a job may run again after a crash. Defaults to
	// none.
	//
	// Deprecated: use OnEvent and [EventRefundDueSoon], which is recorded in the
	// transaction that marks the request escalated and delivered at least once. It is
	// still called as before.
	OnRefundEscalation func(RefundEscalation)

	// OnAccountDeletionEscalation, when set, is called by the escalation job for each
	// account deletion request not yet executed two days before its deadline (TERMS
	// 2.2.4); the engine logs the escalation at Warn either way. A request executed
	// before is not escalated. It runs inside a River worker: keep it quick and
	// non-blocking, and make it safe to call twice for one request, since a job may run
	// again after a crash. Defaults to none.
	//
	// Deprecated: use OnEvent and [EventAccountDeletionDueSoon], which is recorded in the
	// transaction that marks the request escalated and delivered at least once. It is
	// still called as before.
	OnAccountDeletionEscalation func(AccountDeletionEscalation)

	// OnEvent, when set, receives every business event ([EventKind]: subscribed, renewed,
	// payment declined, ended, usage threshold, refund due soon…). Each event is recorded
	// in the transaction of the change it reports, so a change rolled back reports
	// nothing, and is delivered at least once, by a River job inserted in that same
	// transaction: the handler may see an event twice (a retried job, a crash after it
	// returned), so deduplicate by [Event].ID, which is the same for the same fact. An error
	// (or a panic) makes River retry the delivery with backoff; after River's last attempt
	// the sweep ([Engine.PeriodicJobs]) starts it again, until the handler returns nil.
	// Events come in no guaranteed order: order by OccurredAt if needed. It runs inside a
	// River worker: keep it quick (hand the event to a queue or an outbox of your own).
	// Needs [Engine.UseRiver]: with OnEvent set and no River client, a command that records
	// an event fails with [ErrNoRiverClient]. Defaults to none: events are still recorded
	// ([Engine.EventList]), and nothing delivers them.
	OnEvent func(ctx context.Context, ev Event) error

	// RenewalNotice is how long before a renewal charge the customer is told about it
	// ([EventRenewalUpcoming]): a job scheduled when a period starts makes the event at the
	// period end minus RenewalNotice (at once for a period shorter than that), if the
	// subscription will still renew then. A negative value turns the notice off. Defaults
	// to [DefaultRenewalNotice] (3 days).
	RenewalNotice time.Duration

	// UsageThresholds are the percentages of a hard limit at which an [Engine.Consume] or
	// [Engine.ReservationCommit] that reaches them makes an [EventUsageThreshold], once per period,
	// meter and percentage: each from 1 to 100, no repeats, in any order. Trap: nil means
	// the default; a non-nil empty slice turns the events off. Defaults to
	// [DefaultUsageThresholds] (80 and 100).
	UsageThresholds []int

	// Queue is the River queue of every job the engine inserts (renewals, refunds,
	// reservation expiry, revenue recognition, and the periodic jobs of
	// [Engine.PeriodicJobs]). Trap: the host's River client must work this queue
	// ([river.Config].Queues), or the engine's jobs wait forever. A name River accepts:
	// lower-case letters and digits, separated by single underscores or hyphens, at most
	// 64 characters. Defaults to [river.QueueDefault] ("default").
	Queue string

	// Priority is the River priority of every job the engine inserts, 1 (first) to 4.
	// Defaults to [river.PriorityDefault] (1).
	Priority int

	// RenewalBatchSize is how many renewals at most share one transaction of each step of
	// the charge protocol (renewals_batch.go): the renewal jobs River runs at the same moment
	// lock their subscriptions and insert their attempts together, call the provider each on
	// its own, and start their paid periods together. A batch forms from the jobs that arrive
	// while the one before runs, with no timer, so a renewal alone is never held back. 1
	// turns batching off: every renewal runs its own transactions. Defaults to
	// [DefaultRenewalBatchSize] (100).
	RenewalBatchSize int

	// ClaimRenewals renews without a River job per period (renewals_claims.go): the
	// subscriptions table is the queue. Where the engine would schedule a renewal job it
	// sets the subscription's renew_at instead, and a claim job, started every
	// [RenewalClaimInterval] by [Engine.PeriodicJobs], takes up to ClaimChunk due
	// subscriptions at once (FOR UPDATE SKIP LOCKED, each leased for ClaimLease),
	// inserts the next claim job when it took a full chunk, and renews them concurrently
	// through the renewal batches. Every other job (recognition, notices, events, refunds)
	// stays a River job, and the charge protocol is the same, so the guarantees are too
	// (RELIABILITY.md). Off by default: the host must run PeriodicJobs for renewals to
	// happen. Switching it on for an installation that ran without it: the due subscriptions
	// are picked up by the next [Engine.SweepDueRenewals], the others at their period's end
	// by the sweep after it (renewal jobs already scheduled still run, and do nothing twice).
	// Defaults to false: a River job per renewal.
	ClaimRenewals bool

	// ClaimLease is how long a subscription a claim took stays out of other claims
	// ([Config].ClaimRenewals): a claimer killed in its run leaves its subscriptions to the
	// next claim after it. Make it longer than a claimed chunk's run takes: its provider calls
	// are bounded (under a minute each, and River's job timeout ends the calls of a claim job
	// that outlives it), but what follows a call that came back runs on under a deadline of
	// its own (up to about a minute and a half more), so that a charge that succeeded is
	// recorded. A shorter lease charges nothing twice (a second run finds the first's attempt
	// and asks the provider), but may run a renewal twice at once and ask the provider twice.
	// At least a second. Defaults to [RenewalClaimLease] (2 minutes).
	ClaimLease time.Duration

	// ClaimChunk is how many due subscriptions one claim takes ([Config].ClaimRenewals) and
	// renews at once: its step-1 batches and step-3 waves hold up to RenewalBatchSize of them
	// each, and its provider calls are in flight together (so up to ClaimChunk × the queue's
	// MaxWorkers calls at once). Bigger chunks with batches as big renew faster during a
	// backlog but hold more subscriptions locked in each transaction, and a command on one of
	// them (Suspend, SetAutoRenew…) waits for that transaction to end: 400 with
	// RenewalBatchSize 400 renewed 1.23× as fast as the default with four callers running a
	// command on the renewing subscriptions, whose 99th percentile wait was 665 ms against
	// 107 ms (BENCHMARKS.md). Keep it within a few RenewalBatchSize: a claim's step-1 batches
	// run one after another, and a claim of many batches can outlast River's job timeout and
	// ClaimLease (nothing is charged twice: a second run finds the attempts and asks the
	// provider, but asks twice). A small chunk brings back a claim job for every few renewals.
	// Size the host's pool and the provider's rate limit for ClaimChunk × MaxWorkers calls.
	// From 1 to 1 000. Defaults to [RenewalClaimChunk] (100).
	ClaimChunk int

	// ConsumeBatchSize is how many [Engine.Consume] calls at most share one statement and
	// one commit (usage_batch.go): under load (more than four calls at once through the
	// engine's pool), the calls made at the same moment count their volume together when
	// each leaves volume under its limit and crosses no usage threshold; any other call
	// (and every [Engine.ConsumeTx]) runs its own statements, exactly as it would alone. A
	// batch forms from the calls that arrive while the one before runs, with no timer, so
	// no call waits for one. 1 turns batching off. Defaults to [DefaultConsumeBatchSize] (64).
	ConsumeBatchSize int

	// RetentionHorizon is how long the engine keeps the records that only serve replays of
	// retried commands: the idempotency keys of Subscribe, RequestRefund and
	// RequestAccountDeletion (pruned once older than the horizon), and the usage events that
	// are Consume's idempotency record (pruned once their period ended longer ago than the
	// horizon, so a key of a period still open is never pruned, whatever its age). The
	// periodic job of [Engine.PeriodicJobs] and [Engine.PruneExpired] delete them; nothing
	// else is ever pruned: not the ledger, the audit log, payment attempts, refunds, periods
	// or usage counters (billing_usage), which are what every decision reads (access, the
	// 3.7 "not used" test, pro-rata refunds and revenue read the counters, never the events).
	//
	// A retry older than the horizon is then a new command: a Consume retried with the key
	// of a period pruned counts again in the current period, a Subscribe makes a new pending
	// subscription, and a RequestRefund or RequestAccountDeletion is refused by its request's
	// unique key rather than replayed. So choose the horizon longer than any retry a host or
	// an operator may still make. It must be at least [MinRetentionHorizon] (90 days), or New
	// refuses it. A negative value turns pruning off (the job runs and deletes nothing), for
	// an operator who archives these tables by other means.
	//
	// Defaults to [DefaultRetentionHorizon] (400 days): a year-long period, the longest a
	// tariff is commonly sold for, plus the 30 business days of the 6.2 claim period, so the
	// keys of every command about an annual period outlive the claims about it.
	RetentionHorizon time.Duration

	// SkipRiverMigrations makes [Engine.Migrate] leave River's schema alone: the host runs
	// River's migrations itself (`river migrate-up`, or rivermigrate), for instance into
	// another schema. [Engine.CheckSchema] still checks them. Defaults to false: Migrate
	// migrates River too.
	SkipRiverMigrations bool
}

// DefaultConfig returns a Config for a Russian operator: Location Europe/Moscow, the only
// field without a default, and the system clock; [New] fills every other default.
func DefaultConfig() Config {
	return Config{Location: moscow(), Clock: SystemClock{}}
}

// withDefaults returns c with every unset field at the default its comment states. New
// calls it once, before validate; no other code fills a default of Config. It copies
// UsageThresholds, sorted, so the engine never shares the caller's slice.
func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TracerProvider == nil {
		c.TracerProvider = tracenoop.NewTracerProvider()
	}
	if c.MeterProvider == nil {
		c.MeterProvider = metricnoop.NewMeterProvider()
	}
	if len(c.Dunning.Delays) == 0 {
		c.Dunning = payment.DefaultDunningSchedule()
	}
	c.VAT = cmp.Or(c.VAT, payment.VATNone)
	if c.Calendar == nil {
		c.Calendar = calendar.Russia()
	}
	c.RenewalNotice = cmp.Or(c.RenewalNotice, DefaultRenewalNotice)
	if c.UsageThresholds == nil {
		c.UsageThresholds = DefaultUsageThresholds
	}
	c.UsageThresholds = slices.Clone(c.UsageThresholds) // non-nil stays non-nil: empty is "off"
	slices.Sort(c.UsageThresholds)
	c.Queue = cmp.Or(c.Queue, river.QueueDefault)
	c.Priority = cmp.Or(c.Priority, river.PriorityDefault)
	c.RetentionHorizon = cmp.Or(c.RetentionHorizon, DefaultRetentionHorizon)
	c.RenewalBatchSize = cmp.Or(c.RenewalBatchSize, DefaultRenewalBatchSize)
	c.ConsumeBatchSize = cmp.Or(c.ConsumeBatchSize, DefaultConsumeBatchSize)
	c.ClaimLease = cmp.Or(c.ClaimLease, RenewalClaimLease)
	c.ClaimChunk = cmp.Or(c.ClaimChunk, RenewalClaimChunk)
	return c
}

// DefaultRenewalBatchSize is [Config].RenewalBatchSize's default.
const DefaultRenewalBatchSize = 100

// DefaultConsumeBatchSize is [Config].ConsumeBatchSize's default.
const DefaultConsumeBatchSize = 64

// DefaultRenewalNotice is [Config].RenewalNotice's default: three days before the charge.
const DefaultRenewalNotice = 72 * time.Hour

// DefaultUsageThresholds is [Config].UsageThresholds' default: 80% and 100% of a hard limit.
var DefaultUsageThresholds = []int{80, 100}

// DefaultRetentionHorizon is [Config].RetentionHorizon's default: 400 days, a year-long
// period plus the 6.2 claim period (30 business days, at most about 50 calendar days across
// the New Year holidays) with some margin.
const DefaultRetentionHorizon = 400 * 24 * time.Hour

// MinRetentionHorizon is the shortest [Config].RetentionHorizon [New] accepts: 90 days. The
// longest TERMS deadline during which a request about a period may still be retried or
// re-sent is the 6.2 claim period, 30 business days from receipt (up to about 50 calendar
// days across the New Year holidays); the others are shorter (3.7: 5 business days, 3.8:
// 10 calendar days, 2.2.4: 10 business days). A shorter horizon would turn a replay within
// those deadlines into a new command. The length of a tariff's period needs no room here:
// a usage event is pruned only counting from its period's end.
const MinRetentionHorizon = 90 * 24 * time.Hour

func moscow() *time.Location {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil { // unreachable: tzdata is embedded
		panic(err)
	}
	return loc
}

// ErrInvalidConfig is matched (errors.Is) by every *ConfigError.
var ErrInvalidConfig = errors.New("billing: invalid config")

// ConfigError names the Config fields New refused and why.
type ConfigError struct {
	// Problems maps a field name ("Location", "pool") to what is wrong with it.
	Problems []FieldProblem
}

// FieldProblem is one refused field of a configuration or a request.
type FieldProblem struct {
	// Field is the name of the field, as in the Go struct.
	Field string
	// Problem says what is wrong, in words a caller can act on.
	Problem string
}

// Error lists every problem.
func (e *ConfigError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Problem
	}
	return fmt.Sprintf("billing: invalid config: %s", strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Has reports whether field is among the problems.
func (e *ConfigError) Has(field string) bool {
	for _, p := range e.Problems {
		if p.Field == field {
			return true
		}
	}
	return false
}

// validate returns a *ConfigError naming each bad field of c, a Config whose defaults
// withDefaults has filled. It changes nothing.
func (c Config) validate() error {
	var problems []FieldProblem
	if c.Location == nil {
		problems = append(problems, FieldProblem{"Location", "required: the engine counts business days and period ends in it (use DefaultConfig for Europe/Moscow)"})
	}
	if !c.VAT.Valid() {
		problems = append(problems, FieldProblem{"VAT", fmt.Sprintf("unknown VAT code %q", c.VAT)})
	}
	if err := c.Dunning.Validate(); err != nil {
		problems = append(problems, FieldProblem{"Dunning", err.Error()})
	}
	if !riverQueueName.MatchString(c.Queue) || len(c.Queue) > 64 {
		problems = append(problems, FieldProblem{"Queue", fmt.Sprintf("%q is not a River queue name: lower-case letters and digits separated by single underscores or hyphens, at most 64 characters", c.Queue)})
	}
	if c.RenewalBatchSize < 1 {
		problems = append(problems, FieldProblem{"RenewalBatchSize", fmt.Sprintf("%d: at least 1 (1 turns batching off)", c.RenewalBatchSize)})
	}
	if c.ClaimLease < time.Second {
		problems = append(problems, FieldProblem{"ClaimLease", fmt.Sprintf("%s: at least a second", c.ClaimLease)})
	}
	if c.ClaimChunk < 1 || c.ClaimChunk > maxClaimChunk {
		problems = append(problems, FieldProblem{"ClaimChunk", fmt.Sprintf("%d: from 1 to %d", c.ClaimChunk, maxClaimChunk)})
	}
	if c.ConsumeBatchSize < 1 {
		problems = append(problems, FieldProblem{"ConsumeBatchSize", fmt.Sprintf("%d: at least 1 (1 turns batching off)", c.ConsumeBatchSize)})
	}
	if c.Priority < 1 || c.Priority > 4 {
		problems = append(problems, FieldProblem{"Priority", fmt.Sprintf("%d is not a River priority: 1 (first) to 4", c.Priority)})
	}
	if c.RetentionHorizon > 0 && c.RetentionHorizon < MinRetentionHorizon {
		problems = append(problems, FieldProblem{"RetentionHorizon", fmt.Sprintf(
			"%s (%.1f days) is shorter than MinRetentionHorizon (90 days): a request may still be retried within the TERMS deadlines (6.2 claims: 30 business days); use a negative value to turn pruning off",
			c.RetentionHorizon, c.RetentionHorizon.Hours()/24)})
	}
	for i, p := range c.UsageThresholds { // sorted by withDefaults
		switch {
		case p < 1 || p > 100:
			problems = append(problems, FieldProblem{"UsageThresholds", fmt.Sprintf("%d: a percentage from 1 to 100", p)})
		case i > 0 && c.UsageThresholds[i-1] == p:
			problems = append(problems, FieldProblem{"UsageThresholds", fmt.Sprintf("%d twice", p)})
		}
	}
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	return nil
}

// riverQueueName is River's rule for queue names (client.go, validateQueueName), checked
// here so that New names a bad Queue instead of every insert failing later.
var riverQueueName = regexp.MustCompile(`^(?:[a-z0-9])+(?:[_|\-]?[a-z0-9]+)*$`)
