package billing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
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

// Config configures an Engine. Start from DefaultConfig and change what differs; New
// validates every field and names each bad one.
type Config struct {
	// Location is where calendar reasoning happens: business days, month ends, "the day
	// after" (TERMS 6.3). Required; DefaultConfig sets Europe/Moscow. A nil Location is
	// refused rather than silently taken as UTC, which would move deadlines by hours.
	Location *time.Location

	// Clock is the engine's source of time. Default SystemClock. Tests pass a
	// *billingtest.Clock.
	Clock Clock

	// Logger receives the engine's logs. Default: logs are discarded.
	Logger *slog.Logger

	// TracerProvider gives the engine's tracer (scope InstrumentationName): a span per
	// command ("billing.Subscribe"…) and per payment provider call ("billing.gateway.Charge"…),
	// under the caller's span in ctx. The engine never reads OpenTelemetry's global
	// provider on its own: a host that wants it passes otel.GetTracerProvider(). Spans carry
	// no personal data (no token, no receipt contact, no customer ID; TERMS 5.1). Defaults
	// to a no-op provider.
	TracerProvider trace.TracerProvider

	// MeterProvider gives the engine's meter (scope InstrumentationName): billing.charges,
	// billing.renewal.lag, billing.consume.duration, billing.consume.refusals and the
	// gauges billing.attempts.open, billing.parked and billing.refunds.near_deadline (each
	// one indexed count per collection, on the engine's pool). Trap: New registers the
	// gauges' callback for the provider's lifetime, so make one engine per process and
	// provider, or every engine reports the gauges. The engine never reads OpenTelemetry's
	// global provider on its own: a host that wants it passes otel.GetMeterProvider().
	// Defaults to a no-op provider.
	MeterProvider metric.MeterProvider

	// Gateway is the payment provider adapter charges and refunds go through. Optional:
	// without it, commands that must call the provider return ErrNoGateway (a host that
	// reports payments with ConfirmFirstPayment needs none). Tests use billingtest.Gateway.
	Gateway payment.Gateway

	// Dunning is when a soft-declined renewal is retried, counted from the period end.
	// Zero value: payment.DefaultDunningSchedule (1, 3 and 5 days). Each retry is a new
	// attempt with its own key; after the last one fails the subscription ends.
	Dunning payment.DunningSchedule

	// VAT is the VAT code put on 54-FZ receipts. Empty means payment.VATNone; most
	// operators on the general tax system set the calculated rate of prepayment
	// (payment.VAT22Of122 from 2026).
	VAT payment.VATCode

	// ReceiptContact, when set, returns where customerID's 54-FZ receipts go (an e-mail or a
	// phone). The engine asks it before every charge and refund, since it keeps no personal
	// data (TERMS 5.1), and puts the contact on the receipt. Nil: receipts go without a
	// contact, which some providers (YooKassa) refuse: set it with a real provider. An error
	// makes the charge or refund wait for a later run, as an unknown outcome does; nothing is
	// sent without the receipt the law asks for.
	ReceiptContact func(ctx context.Context, customerID string) (payment.Contact, error)

	// Calendar is the production calendar business days are counted on: the 3.7 refund
	// window and the 3.8 payout deadline. Nil means calendar.Russia() (the Russian
	// production calendar the library ships). Trap: a calendar that does not cover the
	// year of a request makes the refund commands fail rather than guess.
	Calendar calendar.BusinessCalendar

	// OnRefundEscalation, when set, is called by the escalation job for each refund
	// request still unpaid two days before its payout deadline (TERMS 3.8); the engine
	// logs the escalation at Warn either way. It runs inside a River worker: keep it
	// quick and non-blocking (hand the event to a queue or channel), and make it safe to
	// call twice for one request, since a job may run again after a crash.
	OnRefundEscalation func(RefundEscalation)

	// OnAccountDeletionEscalation, when set, is called by the escalation job for each
	// account deletion request not yet executed two days before its deadline (TERMS
	// 2.2.4); the engine logs the escalation at Warn either way. A request executed
	// before is not escalated. It runs inside a River worker: keep it quick and
	// non-blocking, and make it safe to call twice for one request, since a job may run
	// again after a crash. Defaults to none.
	OnAccountDeletionEscalation func(AccountDeletionEscalation)

	// Queue is the River queue of every job the engine inserts (renewals, refunds,
	// reservation expiry, revenue recognition, and the periodic jobs of PeriodicJobs).
	// Defaults to river.QueueDefault. Trap: the host's River client must work this queue
	// (river.Config.Queues), or the engine's jobs wait forever. A name River accepts:
	// lower-case letters and digits, separated by single underscores or hyphens, at most
	// 64 characters.
	Queue string

	// Priority is the River priority of every job the engine inserts, 1 (first) to 4.
	// Defaults to river.PriorityDefault (1).
	Priority int

	// SkipRiverMigrations makes Migrate leave River's schema alone: the host runs River's
	// migrations itself (`river migrate-up`, or rivermigrate), for instance into another
	// schema. CheckSchema still checks them. Defaults to false: Migrate migrates River too.
	SkipRiverMigrations bool
}

// DefaultConfig returns a Config for a Russian operator: Europe/Moscow, the system clock,
// logs discarded.
func DefaultConfig() Config {
	return Config{Location: moscow(), Clock: SystemClock{}}
}

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

// validate fills defaults and returns a *ConfigError naming each bad field.
func (c *Config) validate() error {
	var problems []FieldProblem
	if c.Location == nil {
		problems = append(problems, FieldProblem{"Location", "required: the engine counts business days and period ends in it (use DefaultConfig for Europe/Moscow)"})
	}
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
	if c.VAT == "" {
		c.VAT = payment.VATNone
	}
	if !c.VAT.Valid() {
		problems = append(problems, FieldProblem{"VAT", fmt.Sprintf("unknown VAT code %q", c.VAT)})
	}
	if err := c.Dunning.Validate(); err != nil {
		problems = append(problems, FieldProblem{"Dunning", err.Error()})
	}
	c.Queue = cmp.Or(c.Queue, river.QueueDefault)
	if !riverQueueName.MatchString(c.Queue) || len(c.Queue) > 64 {
		problems = append(problems, FieldProblem{"Queue", fmt.Sprintf("%q is not a River queue name: lower-case letters and digits separated by single underscores or hyphens, at most 64 characters", c.Queue)})
	}
	c.Priority = cmp.Or(c.Priority, river.PriorityDefault)
	if c.Priority < 1 || c.Priority > 4 {
		problems = append(problems, FieldProblem{"Priority", fmt.Sprintf("%d is not a River priority: 1 (first) to 4", c.Priority)})
	}
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	return nil
}

// riverQueueName is River's rule for queue names (client.go, validateQueueName), checked
// here so that New names a bad Queue instead of every insert failing later.
var riverQueueName = regexp.MustCompile(`^(?:[a-z0-9])+(?:[_|\-]?[a-z0-9]+)*$`)
