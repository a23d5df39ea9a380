package billingtest

import (
	"context"
	"sync"

	"github.com/smm-gpt/billing"
)

// EventLog is a billing.Config.OnEvent handler that records what it receives, for tests:
// set cfg.OnEvent = log.Handle (NewHarness does, and StartHarness when cfg has no OnEvent). It is safe for
// concurrent use.
type EventLog struct {
	mu     sync.Mutex
	events []billing.Event // first delivery of each ID, in delivery order
	times  map[string]int  // deliveries per ID
	fail   func(billing.Event) error
}

// NewEventLog returns an empty EventLog.
func NewEventLog() *EventLog {
	return &EventLog{times: map[string]int{}}
}

// Handle records ev and returns nil, or the error FailWith's function returns for it (then
// the delivery counts but the engine retries it).
func (l *EventLog) Handle(_ context.Context, ev billing.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.times[ev.ID] == 0 {
		l.events = append(l.events, ev)
	}
	l.times[ev.ID]++
	if l.fail != nil {
		return l.fail(ev)
	}
	return nil
}

// FailWith makes Handle return fail(ev) for each event it receives from now on (nil: accept
// it). A nil fail accepts everything again.
func (l *EventLog) FailWith(fail func(billing.Event) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail = fail
}

// Events returns the events received (each ID once, at its first delivery), in the order
// they first arrived.
func (l *EventLog) Events() []billing.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]billing.Event(nil), l.events...)
}

// Deliveries returns how many times the event with id was handed to Handle.
func (l *EventLog) Deliveries(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.times[id]
}

// Of returns the events received of kind, each ID once, in arrival order.
func (l *EventLog) Of(kind billing.EventKind) []billing.Event {
	var out []billing.Event
	for _, ev := range l.Events() {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}
