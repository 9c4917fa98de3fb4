package delivery_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
)

var (
	t0    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) // received
	t1    = t0.Add(time.Minute)                         // first retry due
	tNow  = t0.Add(time.Hour)                           // attempt / replay time
	tNext = tNow.Add(time.Minute)                       // next retry due
	a1    = delivery.Attempt{At: t0, StatusCode: 503, LatencyMS: 1}
	aNow  = delivery.Attempt{At: tNow, StatusCode: 200, LatencyMS: 2}
)

// The delivery states a transition starts from.
var (
	missing   = delivery.Delivery{Target: "t"}
	pending   = delivery.Delivery{Target: "t", Status: delivery.Pending, Attempts: []delivery.Attempt{a1}, NextAt: t1, Tries: 1}
	replaying = delivery.Delivery{Target: "t", Status: delivery.Pending, Attempts: []delivery.Attempt{a1}, NextAt: t1, Tries: 0, Replay: true}
	delivered = delivery.Delivery{Target: "t", Status: delivery.Delivered, Attempts: []delivery.Attempt{a1}, Tries: 1}
	dead      = delivery.Delivery{Target: "t", Status: delivery.Dead, Attempts: []delivery.Attempt{a1}, Tries: 1}
)

func attempted(o delivery.Outcome, current bool) delivery.Input {
	r := delivery.Result{Attempt: aNow, Outcome: o}
	if o == delivery.Retry {
		r.RetryAt = tNext
	}
	return delivery.AttemptedFor(r, t1, current)
}

// with returns d changed by fn (d's attempts are copied first).
func with(d delivery.Delivery, fn func(*delivery.Delivery)) delivery.Delivery {
	d.Attempts = append([]delivery.Attempt{}, d.Attempts...)
	fn(&d)
	return d
}

func plusNow(d *delivery.Delivery) { d.Attempts = append(d.Attempts, aNow) }

func TestNext(t *testing.T) {
	policy := delivery.Policy{MaxAttempts: 3}
	fresh := delivery.Delivery{Target: "t", Status: delivery.Pending, Attempts: []delivery.Attempt{}, NextAt: t0}
	replayedFrom := func(d delivery.Delivery) delivery.Delivery {
		return with(d, func(d *delivery.Delivery) {
			if d.Attempts == nil {
				d.Attempts = []delivery.Attempt{}
			}
			d.Status, d.NextAt, d.Tries, d.Replay = delivery.Pending, tNow, 0, true
		})
	}
	tests := []struct {
		name   string
		d      delivery.Delivery
		in     delivery.Input
		want   delivery.Delivery
		wantOp delivery.QueueOp
	}{
		// Created: always a fresh pending delivery due at receive time.
		{"missing created", missing, delivery.IngestedAt(t0), fresh, delivery.QueueOp{Add: t0}},
		{"pending created", pending, delivery.IngestedAt(t0), fresh, delivery.QueueOp{Add: t0}},
		{"delivered created", delivered, delivery.IngestedAt(t0), fresh, delivery.QueueOp{Add: t0}},
		{"dead created", dead, delivery.IngestedAt(t0), fresh, delivery.QueueOp{Add: t0}},

		// Replayed: pending, due now, tries reset, a replay; a pending
		// delivery's entry moves.
		{"missing replayed", missing, delivery.ReplayedAt(tNow), replayedFrom(missing), delivery.QueueOp{Add: tNow}},
		{"pending replayed", pending, delivery.ReplayedAt(tNow), replayedFrom(pending), delivery.QueueOp{Remove: t1, Add: tNow}},
		{"replaying replayed", replaying, delivery.ReplayedAt(tNow), replayedFrom(replaying), delivery.QueueOp{Remove: t1, Add: tNow}},
		{"delivered replayed", delivered, delivery.ReplayedAt(tNow), replayedFrom(delivered), delivery.QueueOp{Add: tNow}},
		{"dead replayed", dead, delivery.ReplayedAt(tNow), replayedFrom(dead), delivery.QueueOp{Add: tNow}},

		// Attempted with its entry current.
		{"pending ok", pending, attempted(delivery.OK, true),
			with(pending, func(d *delivery.Delivery) {
				plusNow(d)
				d.Status, d.NextAt, d.Tries = delivery.Delivered, time.Time{}, 2
			}),
			delivery.QueueOp{Remove: t1}},
		{"pending retry", pending, attempted(delivery.Retry, true),
			with(pending, func(d *delivery.Delivery) { plusNow(d); d.NextAt, d.Tries = tNext, 2 }),
			delivery.QueueOp{Remove: t1, Add: tNext}},
		{"pending permanent", pending, attempted(delivery.Permanent, true),
			with(pending, func(d *delivery.Delivery) { plusNow(d); d.Status, d.NextAt, d.Tries = delivery.Dead, time.Time{}, 2 }),
			delivery.QueueOp{Remove: t1}},
		{"pending expired", pending, attempted(delivery.Expired, true),
			with(pending, func(d *delivery.Delivery) { plusNow(d); d.Status, d.NextAt, d.Tries = delivery.Dead, time.Time{}, 2 }),
			delivery.QueueOp{Remove: t1}},
		{"replaying ok clears replay", replaying, attempted(delivery.OK, true),
			with(replaying, func(d *delivery.Delivery) {
				plusNow(d)
				d.Status, d.NextAt, d.Tries, d.Replay = delivery.Delivered, time.Time{}, 1, false
			}),
			delivery.QueueOp{Remove: t1}},
		{"replaying retry stays a replay", replaying, attempted(delivery.Retry, true),
			with(replaying, func(d *delivery.Delivery) { plusNow(d); d.NextAt, d.Tries = tNext, 1 }),
			delivery.QueueOp{Remove: t1, Add: tNext}},
		{"replaying permanent clears replay", replaying, attempted(delivery.Permanent, true),
			with(replaying, func(d *delivery.Delivery) {
				plusNow(d)
				d.Status, d.NextAt, d.Tries, d.Replay = delivery.Dead, time.Time{}, 1, false
			}),
			delivery.QueueOp{Remove: t1}},
		{"missing ok", missing, attempted(delivery.OK, true),
			delivery.Delivery{Target: "t", Status: delivery.Delivered, Attempts: []delivery.Attempt{aNow}, Tries: 1},
			delivery.QueueOp{Remove: t1}},
		{"missing retry", missing, attempted(delivery.Retry, true),
			delivery.Delivery{Target: "t", Status: delivery.Pending, Attempts: []delivery.Attempt{aNow}, NextAt: tNext, Tries: 1},
			delivery.QueueOp{Remove: t1, Add: tNext}},
		{"missing permanent", missing, attempted(delivery.Permanent, true),
			delivery.Delivery{Target: "t", Status: delivery.Dead, Attempts: []delivery.Attempt{aNow}, Tries: 1},
			delivery.QueueOp{Remove: t1}},
		{"missing expired", missing, attempted(delivery.Expired, true),
			delivery.Delivery{Target: "t", Status: delivery.Dead, Attempts: []delivery.Attempt{aNow}, Tries: 1},
			delivery.QueueOp{Remove: t1}},
		// A current entry of a settled delivery (an old store, a lost
		// race): the attempt's outcome still decides.
		{"delivered ok", delivered, attempted(delivery.OK, true),
			with(delivered, func(d *delivery.Delivery) { plusNow(d); d.Tries = 2 }),
			delivery.QueueOp{Remove: t1}},
		{"delivered retry", delivered, attempted(delivery.Retry, true),
			with(delivered, func(d *delivery.Delivery) { plusNow(d); d.Status, d.NextAt, d.Tries = delivery.Pending, tNext, 2 }),
			delivery.QueueOp{Remove: t1, Add: tNext}},
		{"delivered permanent", delivered, attempted(delivery.Permanent, true),
			with(delivered, func(d *delivery.Delivery) { plusNow(d); d.Status, d.Tries = delivery.Dead, 2 }),
			delivery.QueueOp{Remove: t1}},
		{"delivered expired", delivered, attempted(delivery.Expired, true),
			with(delivered, func(d *delivery.Delivery) { plusNow(d); d.Status, d.Tries = delivery.Dead, 2 }),
			delivery.QueueOp{Remove: t1}},
		{"dead ok", dead, attempted(delivery.OK, true),
			with(dead, func(d *delivery.Delivery) { plusNow(d); d.Status, d.Tries = delivery.Delivered, 2 }),
			delivery.QueueOp{Remove: t1}},
		{"dead retry", dead, attempted(delivery.Retry, true),
			with(dead, func(d *delivery.Delivery) { plusNow(d); d.Status, d.NextAt, d.Tries = delivery.Pending, tNext, 2 }),
			delivery.QueueOp{Remove: t1, Add: tNext}},
		{"dead permanent", dead, attempted(delivery.Permanent, true),
			with(dead, func(d *delivery.Delivery) { plusNow(d); d.Tries = 2 }),
			delivery.QueueOp{Remove: t1}},
		{"dead expired", dead, attempted(delivery.Expired, true),
			with(dead, func(d *delivery.Delivery) { plusNow(d); d.Tries = 2 }),
			delivery.QueueOp{Remove: t1}},

		// Max attempts: the try that reaches MaxAttempts is the last.
		{"retry below max", with(pending, func(d *delivery.Delivery) { d.Tries = 1 }), attempted(delivery.Retry, true),
			with(pending, func(d *delivery.Delivery) { plusNow(d); d.NextAt, d.Tries = tNext, 2 }),
			delivery.QueueOp{Remove: t1, Add: tNext}},
		{"retry reaching max is dead", with(pending, func(d *delivery.Delivery) { d.Tries = 2 }), attempted(delivery.Retry, true),
			with(pending, func(d *delivery.Delivery) { plusNow(d); d.Status, d.NextAt, d.Tries = delivery.Dead, time.Time{}, 3 }),
			delivery.QueueOp{Remove: t1}},
		{"retry past max is dead", with(pending, func(d *delivery.Delivery) { d.Tries = 7 }), attempted(delivery.Retry, true),
			with(pending, func(d *delivery.Delivery) { plusNow(d); d.Status, d.NextAt, d.Tries = delivery.Dead, time.Time{}, 8 }),
			delivery.QueueOp{Remove: t1}},
		{"ok at max is delivered", with(pending, func(d *delivery.Delivery) { d.Tries = 2 }), attempted(delivery.OK, true),
			with(pending, func(d *delivery.Delivery) {
				plusNow(d)
				d.Status, d.NextAt, d.Tries = delivery.Delivered, time.Time{}, 3
			}),
			delivery.QueueOp{Remove: t1}},

		// Superseded by a replay: only the attempt is recorded, whatever
		// the outcome and the status.
		{"missing superseded", missing, attempted(delivery.OK, false),
			delivery.Delivery{Target: "t", Attempts: []delivery.Attempt{aNow}}, delivery.QueueOp{}},
		{"pending superseded ok", pending, attempted(delivery.OK, false), with(pending, plusNow), delivery.QueueOp{}},
		{"replaying superseded ok", replaying, attempted(delivery.OK, false), with(replaying, plusNow), delivery.QueueOp{}},
		{"replaying superseded retry", replaying, attempted(delivery.Retry, false), with(replaying, plusNow), delivery.QueueOp{}},
		{"replaying superseded permanent", replaying, attempted(delivery.Permanent, false), with(replaying, plusNow), delivery.QueueOp{}},
		{"replaying superseded expired", replaying, attempted(delivery.Expired, false), with(replaying, plusNow), delivery.QueueOp{}},
		{"delivered superseded", delivered, attempted(delivery.Retry, false), with(delivered, plusNow), delivery.QueueOp{}},
		{"dead superseded", dead, attempted(delivery.OK, false), with(dead, plusNow), delivery.QueueOp{}},

		{"unknown input", pending, delivery.Input{}, pending, delivery.QueueOp{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.d
			before.Attempts = slices.Clone(tt.d.Attempts)
			got, op := delivery.Next(tt.d, tt.in, policy)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Next(%+v, %v) =\n  %+v\nwant\n  %+v", tt.d, tt.in.Kind, got, tt.want)
			}
			if op != tt.wantOp {
				t.Errorf("QueueOp = %+v, want %+v", op, tt.wantOp)
			}
			if !reflect.DeepEqual(tt.d, before) {
				t.Errorf("Next changed its argument: %+v, was %+v", tt.d, before)
			}
		})
	}
}

func TestNextMaxAttemptsPolicy(t *testing.T) {
	tests := []struct {
		max, tries int
		want       delivery.Status
	}{
		{0, 0, delivery.Dead}, // below 1 means 1
		{-1, 0, delivery.Dead},
		{1, 0, delivery.Dead},
		{2, 0, delivery.Pending},
		{2, 1, delivery.Dead},
		{10, 8, delivery.Pending},
		{10, 9, delivery.Dead},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			d := with(pending, func(d *delivery.Delivery) { d.Tries = tt.tries })
			got, _ := delivery.Next(d, attempted(delivery.Retry, true), delivery.Policy{MaxAttempts: tt.max})
			if got.Status != tt.want || got.Tries != tt.tries+1 {
				t.Errorf("max_attempts %d after %d tries: %s with %d tries, want %s with %d", tt.max, tt.tries, got.Status, got.Tries, tt.want, tt.tries+1)
			}
		})
	}
}

func TestNextRetryWithoutTime(t *testing.T) {
	in := delivery.AttemptedFor(delivery.Result{Attempt: aNow, Outcome: delivery.Retry}, t1, true)
	got, op := delivery.Next(pending, in, delivery.Policy{MaxAttempts: 5})
	if got.Status != delivery.Pending || !got.NextAt.Equal(tNow) || op != (delivery.QueueOp{Remove: t1, Add: tNow}) {
		t.Errorf("retry with no RetryAt: %+v, %+v; want pending due at the attempt", got, op)
	}
}

func TestNextKeepsBoundedHistory(t *testing.T) {
	full := pending
	full.Attempts = make([]delivery.Attempt, 0, delivery.MaxAttemptsKept+10)
	for i := range delivery.MaxAttemptsKept {
		full.Attempts = append(full.Attempts, delivery.Attempt{At: t0.Add(time.Duration(i) * time.Second)})
	}
	for _, in := range []delivery.Input{attempted(delivery.Retry, true), attempted(delivery.OK, false)} {
		t.Run(in.Result.Outcome.String(), func(t *testing.T) {
			got, _ := delivery.Next(full, in, delivery.Policy{MaxAttempts: 1000})
			if n := len(got.Attempts); n != delivery.MaxAttemptsKept {
				t.Fatalf("%d attempts kept, want %d", n, delivery.MaxAttemptsKept)
			}
			if first, last := got.Attempts[0], got.Attempts[len(got.Attempts)-1]; !first.At.Equal(t0.Add(time.Second)) || last != aNow {
				t.Errorf("kept attempts %v .. %v, want the oldest dropped and the new one last", first.At, last.At)
			}
			if spare := full.Attempts[:cap(full.Attempts)][len(full.Attempts)]; spare != (delivery.Attempt{}) {
				t.Errorf("Next wrote into its argument's spare capacity: %+v", spare)
			}
		})
	}
}

func TestEventStatusOf(t *testing.T) {
	d := func(statuses ...delivery.Status) []delivery.Delivery {
		out := []delivery.Delivery{}
		for _, s := range statuses {
			out = append(out, delivery.Delivery{Status: s})
		}
		return out
	}
	tests := []struct {
		name string
		ds   []delivery.Delivery
		want delivery.EventStatus
	}{
		{"none", nil, delivery.EventUnrouted},
		{"empty", d(), delivery.EventUnrouted},
		{"delivered", d(delivery.Delivered), delivery.EventDelivered},
		{"all delivered", d(delivery.Delivered, delivery.Delivered), delivery.EventDelivered},
		{"pending", d(delivery.Pending), delivery.EventPending},
		{"one pending", d(delivery.Delivered, delivery.Pending), delivery.EventPending},
		{"dead", d(delivery.Dead), delivery.EventDead},
		{"dead wins over pending", d(delivery.Pending, delivery.Dead, delivery.Delivered), delivery.EventDead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := delivery.EventStatusOf(tt.ds); got != tt.want {
				t.Errorf("EventStatusOf(%v) = %q, want %q", tt.ds, got, tt.want)
			}
		})
	}
}

func TestParseEventStatus(t *testing.T) {
	tests := []struct {
		in      string
		want    delivery.EventStatus
		wantErr bool
	}{
		{"", "", false},
		{"pending", delivery.EventPending, false},
		{"delivered", delivery.EventDelivered, false},
		{"dead", delivery.EventDead, false},
		{"unrouted", delivery.EventUnrouted, false},
		{"failed", "", true},
		{"Dead", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := delivery.ParseEventStatus(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseEventStatus(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestEventStatusDelivery(t *testing.T) {
	tests := []struct {
		in     delivery.EventStatus
		want   delivery.Status
		wantOK bool
	}{
		{"", "", false},
		{delivery.EventUnrouted, "", false},
		{delivery.EventPending, delivery.Pending, true},
		{delivery.EventDelivered, delivery.Delivered, true},
		{delivery.EventDead, delivery.Dead, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.in), func(t *testing.T) {
			if got, ok := tt.in.Delivery(); got != tt.want || ok != tt.wantOK {
				t.Errorf("%q.Delivery() = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestDeliveryJSON pins the stored form of a delivery (what relay/store
// keeps): stores written before this package existed must still read.
func TestDeliveryJSON(t *testing.T) {
	stored := `{"target":"media","status":"pending","attempts":[{"at":"2026-01-02T03:04:05Z","status_code":503,"latency_ms":1.5,"replay":true},{"at":"2026-01-02T03:05:05Z","error":"timeout","latency_ms":0}],"next_at":"2026-01-02T03:06:05Z","tries":2,"replay":true}`
	var d delivery.Delivery
	if err := json.Unmarshal([]byte(stored), &d); err != nil {
		t.Fatal(err)
	}
	if d.Status != delivery.Pending || d.Tries != 2 || !d.Replay || len(d.Attempts) != 2 || d.Attempts[1].Error != "timeout" {
		t.Errorf("decoded %+v", d)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != stored {
		t.Errorf("re-encoded\n  %s\nwant\n  %s", b, stored)
	}
	b, _ = json.Marshal(delivery.Delivery{Target: "media", Status: delivery.Delivered, Attempts: []delivery.Attempt{}, Tries: 1})
	if got, want := string(b), `{"target":"media","status":"delivered","attempts":[],"tries":1}`; got != want {
		t.Errorf("settled delivery encodes as %s, want %s", got, want)
	}
}
