// Package delivery is hookrelay's delivery state machine: the statuses of a
// delivery (one event to one target) and of an event, and Next, the one
// pure transition function that ingest, attempt recording and replay apply.
//
// It knows nothing of Badger or HTTP. The store applies Next inside its
// transactions and performs the QueueOp it returns; the delivery engine
// only decides an attempt's Outcome.
package delivery

import (
	"fmt"
	"time"
)

// Status is the status of one delivery.
type Status string

// Delivery statuses.
const (
	Pending   Status = "pending"   // waiting for its first attempt or a retry
	Delivered Status = "delivered" // the target answered 2xx
	Dead      Status = "dead"      // failed permanently or ran out of attempts
)

// EventStatus is the status of an event, derived from its deliveries by
// EventStatusOf.
type EventStatus string

// Event statuses: an event is unrouted (no delivery), dead (any delivery
// dead), pending (any pending, none dead) or delivered (all delivered).
const (
	EventUnrouted  EventStatus = "unrouted"
	EventPending   EventStatus = EventStatus(Pending)
	EventDelivered EventStatus = EventStatus(Delivered)
	EventDead      EventStatus = EventStatus(Dead)
)

// ParseEventStatus reads a status filter (CLI --status, admin API): one of
// pending, delivered, dead or unrouted; "" means any.
func ParseEventStatus(s string) (EventStatus, error) {
	switch es := EventStatus(s); es {
	case "", EventPending, EventDelivered, EventDead, EventUnrouted:
		return es, nil
	}
	return "", fmt.Errorf("unknown status %q (want pending, delivered, dead or unrouted)", s)
}

// Delivery returns the delivery status of the same name, and false for
// unrouted and "" (which name no delivery status).
func (s EventStatus) Delivery() (Status, bool) {
	switch s {
	case EventPending, EventDelivered, EventDead:
		return Status(s), true
	}
	return "", false
}

// EventStatusOf derives an event's status from its deliveries: unrouted
// (none), dead (any dead), pending (any pending), else delivered.
func EventStatusOf(ds []Delivery) EventStatus {
	if len(ds) == 0 {
		return EventUnrouted
	}
	status := EventDelivered
	for _, d := range ds {
		switch d.Status {
		case Dead:
			return EventDead
		case Pending:
			status = EventPending
		}
	}
	return status
}

// Attempt is one delivery attempt.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	LatencyMS  float64   `json:"latency_ms"`
	Replay     bool      `json:"replay,omitempty"`
}

// Delivery is the state of one event's delivery to one target. Its JSON
// form is what the store keeps.
type Delivery struct {
	Target   string    `json:"target"`
	Status   Status    `json:"status"`
	Attempts []Attempt `json:"attempts"` // oldest first, at most MaxAttemptsKept
	// NextAt is when a pending delivery is due: the due time of its queue
	// entry. Zero once delivered or dead.
	NextAt time.Time `json:"next_at,omitzero"`
	// Tries counts attempts since the delivery was created or last replayed;
	// the retry policy's max_attempts applies to it.
	Tries int `json:"tries"`
	// Replay is set while a replay of this delivery is pending.
	Replay bool `json:"replay,omitempty"`
}

// MaxAttemptsKept bounds the attempt history of one delivery: Next drops
// the oldest attempts beyond it.
const MaxAttemptsKept = 100

// Policy is the retry policy of a target.
type Policy struct {
	// MaxAttempts is how many attempts a delivery gets (since its creation
	// or last replay) before a retryable failure makes it dead. Values
	// below 1 mean 1.
	MaxAttempts int
}

// Kind says what happened to a delivery.
type Kind int

// Inputs of the state machine.
const (
	// Created: ingest stored the event; the delivery is due at Input.At
	// (the receive time).
	Created Kind = iota + 1
	// Attempted: an attempt finished (Input.Result), made for the queue
	// entry due at Input.Entry; Input.Current says whether that entry was
	// still queued.
	Attempted
	// Replayed: an operator replays the delivery, due at Input.At.
	Replayed
)

func (k Kind) String() string {
	switch k {
	case Created:
		return "created"
	case Attempted:
		return "attempted"
	case Replayed:
		return "replayed"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Outcome is what one attempt means for its delivery, as the delivery
// engine reads the target's answer.
type Outcome int

// Attempt outcomes.
const (
	// OK: the target answered 2xx.
	OK Outcome = iota + 1
	// Retry: 408, 429, 5xx, a timeout or a connection error; try again at
	// Result.RetryAt unless the policy's attempts are used up.
	Retry
	// Permanent: any other answer; the delivery is dead.
	Permanent
	// Expired: the event expired before it could be delivered.
	Expired
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Retry:
		return "retry"
	case Permanent:
		return "permanent"
	case Expired:
		return "expired"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is one finished attempt as the delivery engine reports it.
type Result struct {
	Attempt Attempt
	Outcome Outcome
	RetryAt time.Time // with Retry: when to try again (zero: at Attempt.At)
}

// Input is one event of a delivery's life; build it with IngestedAt,
// ReplayedAt or AttemptedFor.
type Input struct {
	Kind Kind
	// At is when the delivery falls due (Created, Replayed).
	At time.Time
	// Result is the attempt's (Attempted).
	Result Result
	// Entry is the due time of the queue entry the attempt was made for,
	// and Current whether that entry was still queued when the attempt was
	// recorded: a replay replaces it, and then the replay decides what is
	// next (Attempted).
	Entry   time.Time
	Current bool
}

// IngestedAt is the input of a delivery created at ingest, due at due.
func IngestedAt(due time.Time) Input { return Input{Kind: Created, At: due} }

// ReplayedAt is the input of a replay due at now.
func ReplayedAt(now time.Time) Input { return Input{Kind: Replayed, At: now} }

// AttemptedFor is the input of attempt result r, made for the queue entry
// due at entry, which is still queued if current.
func AttemptedFor(r Result, entry time.Time, current bool) Input {
	return Input{Kind: Attempted, Result: r, Entry: entry, Current: current}
}

// QueueOp is the change to a target's delivery queue that goes with a
// transition, in due times of the delivery's entries (zero: none). The
// entry at Remove is removed before the one at Add is added.
type QueueOp struct {
	Remove time.Time
	Add    time.Time
}

// Next is the delivery state machine: it returns d after input in under
// policy p, and the queue change that goes with it.
//
//   - Created: a fresh pending delivery due at in.At (no attempts, no
//     tries); add its entry.
//   - Replayed: pending again, due at in.At, tries reset, marked as a
//     replay, attempts kept; the entry of a pending delivery moves to
//     in.At (a missing delivery starts with no attempts).
//   - Attempted, entry not current (a replay superseded it): only the
//     attempt is recorded; status, schedule and queue stay the replay's.
//   - Attempted, entry current: the attempt is recorded, tries counted and
//     the entry removed. OK makes it delivered; Permanent and Expired
//     make it dead; Retry makes it pending again at RetryAt (entry added)
//     unless p.MaxAttempts tries are used up, which makes it dead. A
//     delivered or dead delivery is no longer a replay.
//
// An input of unknown Kind changes nothing. Next never changes d.Target
// and never shares or writes d.Attempts' backing array.
func Next(d Delivery, in Input, p Policy) (Delivery, QueueOp) {
	var op QueueOp
	switch in.Kind {
	case Created:
		d = Delivery{Target: d.Target, Status: Pending, Attempts: []Attempt{}, NextAt: in.At}
		op.Add = in.At
	case Replayed:
		if d.Status == Pending {
			op.Remove = d.NextAt
		}
		d.Attempts = keep(d.Attempts)
		d.Status, d.Replay, d.NextAt, d.Tries = Pending, true, in.At, 0
		op.Add = in.At
	case Attempted:
		d.Attempts = keep(d.Attempts, in.Result.Attempt)
		if !in.Current {
			return d, op
		}
		op.Remove = in.Entry
		d.Tries++
		d.NextAt = time.Time{}
		switch {
		case in.Result.Outcome == OK:
			d.Status = Delivered
		case in.Result.Outcome == Retry && d.Tries < max(p.MaxAttempts, 1):
			at := in.Result.RetryAt
			if at.IsZero() {
				at = in.Result.Attempt.At // never unscheduled: retry at once
			}
			d.Status, d.NextAt = Pending, at
			op.Add = at
		default: // Permanent, Expired, or out of attempts
			d.Status = Dead
		}
		if d.Status != Pending {
			d.Replay = false
		}
	}
	return d, op
}

// keep returns a new slice (never nil) of as followed by more, holding at
// most the last MaxAttemptsKept of them.
func keep(as []Attempt, more ...Attempt) []Attempt {
	all := make([]Attempt, 0, len(as)+len(more))
	all = append(append(all, as...), more...)
	return all[max(0, len(all)-MaxAttemptsKept):]
}
