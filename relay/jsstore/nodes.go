package jsstore

// Node name claims: at most one running process per cluster.node.
//
// A claim is one message on <p>.n.<node>, holding a NodeClaim as JSON,
// with a Nats-TTL: it is created only if the subject is empty (expected
// last subject sequence 0), refreshed every Refresh by a compare-and-set
// on the sequence this holder last wrote (Nats-Expected-Last-Subject-
// Sequence), and deleted by that sequence on Release. A holder that dies
// without releasing stops refreshing, and its claim expires TTL after its
// last refresh. Every check is the server's, on the stream leader, in one
// publish: no read-then-write (the nats-server#5162 race of kv.Create
// after a delete marker cannot happen here).
//
// A claimant that finds the name held watches the claim: a live holder
// refreshes it within Refresh (the claimant gives up with a
// *NodeInUseError naming the holder), a dead one lets it expire (the
// claimant then takes the name). A holder the caller can prove to be an
// earlier, dead instance of itself (NodeClaimOptions.Same) is replaced at
// once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Default claim timing: a refresh every 5 s, expiry 15 s after the last
// one. A claim survives two failed refreshes in a row (a stream leader
// election takes up to ~9 s); a node killed with SIGKILL holds its name
// for at most 15 s (and not at all against its own restart, see Same);
// a duplicate is refused within about one refresh interval.
const (
	DefaultNodeRefresh = 5 * time.Second
	DefaultNodeTTL     = 15 * time.Second
)

// NodeClaim is who holds a node name.
type NodeClaim struct {
	Node  string    `json:"node"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	// Instance identifies the node's state on disk (a random id kept in
	// its store directory), if it has one: see NodeClaimOptions.Same.
	Instance string `json:"instance,omitempty"`
	// Token is random per claim: a holder recognizes its own write.
	Token string `json:"token"`
	// LowSpace is set while the disk under the node's replicas of the
	// stream is nearly full (Options.Space): every node then refuses new
	// events, since each one would be stored there too.
	LowSpace *storage.LowSpaceError `json:"low_space,omitempty"`
}

// NodeInUseError is the answer to a claim of a name a live node holds.
type NodeInUseError struct{ Holder NodeClaim }

func (e *NodeInUseError) Error() string {
	h := e.Holder
	return fmt.Sprintf("node name %q is already used by a running node (host %s, pid %d, since %s)",
		h.Node, h.Host, h.PID, h.Since.UTC().Format(time.RFC3339))
}

// NodeClaimOptions tune ClaimNode and CheckNode.
type NodeClaimOptions struct {
	Refresh time.Duration // default DefaultNodeRefresh
	TTL     time.Duration // default DefaultNodeTTL; whole seconds, > Refresh
	// Wait bounds how long a claim that neither changes nor expires is
	// watched before the claimant gives up (default TTL + Refresh + 2s).
	Wait time.Duration
	// Same, if set, reports whether holder is provably an earlier
	// instance of the claimant that is no longer running: its claim is
	// then replaced at once instead of waited out.
	Same   func(holder NodeClaim) bool
	Logger *slog.Logger
}

func (o *NodeClaimOptions) defaults() {
	if o.Refresh <= 0 {
		o.Refresh = DefaultNodeRefresh
	}
	if o.TTL <= 0 {
		o.TTL = DefaultNodeTTL
	}
	o.TTL = max(o.TTL.Round(time.Second), time.Second)
	if o.Wait <= 0 {
		o.Wait = o.TTL + o.Refresh + 2*time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// NodeLease is a held node name.
type NodeLease struct {
	s    *Store
	me   NodeClaim
	o    NodeClaimOptions
	subj string
	seq  uint64 // of the last write; the refresher's, then Release's

	ctx      context.Context // the refresher's; Release cancels it
	cancel   context.CancelFunc
	done     chan struct{}
	lost     chan struct{}
	lostErr  error
	stopOnce sync.Once
}

func nodeSubj(p, node string) string { return p + "n." + token(node) }

// ClaimNode takes the name me.Node for this process (me.Token is set
// here) and keeps it until Release. It returns a *NodeInUseError if a live
// holder has it, storage.ErrUnavailable-wrapped errors if JetStream does
// not answer.
func (s *Store) ClaimNode(ctx context.Context, me NodeClaim, o NodeClaimOptions) (*NodeLease, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	o.defaults()
	me.Token = nuid.Next()
	l := &NodeLease{s: s, me: me, o: o, subj: nodeSubj(s.p, me.Node),
		done: make(chan struct{}), lost: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	seq, err := acquire(ctx, s.stream, l.subj, o, func(ctx context.Context, expected uint64) (uint64, error) {
		return l.write(ctx, expected)
	})
	if err != nil {
		l.cancel()
		return nil, err
	}
	l.seq = seq
	go l.refresh()
	return l, nil
}

// CheckNode reports, without writing anything, whether me.Node may be
// claimed in stream name ("" = the default): nil if it is free, expires
// while watched, or is held by a dead earlier instance (o.Same); a
// *NodeInUseError if a live node holds it. js needs no open Store (the
// embedded server checks before it joins the cluster).
func CheckNode(ctx context.Context, js jetstream.JetStream, name string, me NodeClaim, o NodeClaimOptions) error {
	o.defaults()
	if name == "" {
		name = "hookrelay"
	}
	// Each request gets its own deadline: without a quorum JetStream does
	// not answer at all, and the check must not hold the start up long.
	sctx, cancel := context.WithTimeout(ctx, readWait)
	st, err := js.Stream(sctx, name)
	cancel()
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // a new cluster: no claims at all
	}
	if err != nil {
		return fmt.Errorf("%w: stream %s: %w", storage.ErrUnavailable, name, err)
	}
	_, err = acquire(ctx, st, nodeSubj(name+".", me.Node), o, nil)
	return err
}

// acquire takes subj with write (expected last sequence: 0 for a free
// subject, the holder's for a dead earlier instance), or with write nil
// only reports whether it could.
func acquire(ctx context.Context, st jetstream.Stream, subj string, o NodeClaimOptions, write func(context.Context, uint64) (uint64, error)) (uint64, error) {
	deadline := time.Now().Add(o.Wait)
	var watched uint64 // the holder's sequence when first seen
	for {
		if write != nil {
			seq, err := write(ctx, 0)
			if err == nil {
				return seq, nil
			}
			if !isConflict(err) {
				return 0, err
			}
		}
		cur, cseq, err := readClaim(ctx, st, subj)
		if err != nil {
			return 0, err
		}
		switch {
		case cseq == 0:
			if write == nil {
				return 0, nil // free (or it just expired)
			}
			continue
		case o.Same != nil && o.Same(cur):
			if write == nil {
				return 0, nil
			}
			seq, err := write(ctx, cseq)
			if err == nil {
				o.Logger.Info("took over this node's own claim of its name, left by an earlier run", "node", cur.Node, "host", cur.Host, "pid", cur.PID)
				return seq, nil
			}
			if !isConflict(err) {
				return 0, err
			}
			continue
		case watched == 0:
			watched = cseq
			o.Logger.Info("node name claimed by another process: waiting to see whether it is alive (its claim is refreshed) or dead (its claim expires)",
				"node", cur.Node, "host", cur.Host, "pid", cur.PID, "since", cur.Since, "ttl", o.TTL)
		case cseq != watched || time.Now().After(deadline):
			return 0, &NodeInUseError{Holder: cur}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: claim node name: %w", storage.ErrUnavailable, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// readWait bounds one read of a claim (or of the stream's info).
const readWait = 3 * time.Second

func readClaim(ctx context.Context, st jetstream.Stream, subj string) (NodeClaim, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, readWait)
	defer cancel()
	m, err := st.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return NodeClaim{}, 0, nil
	}
	if err != nil {
		return NodeClaim{}, 0, fmt.Errorf("%w: read node claim %s: %w", storage.ErrUnavailable, subj, err)
	}
	var c NodeClaim
	if err := json.Unmarshal(m.Data, &c); err != nil {
		return NodeClaim{}, 0, fmt.Errorf("node claim %s: %w", subj, err)
	}
	return c, m.Sequence, nil
}

// write publishes the claim, with the node's disk state now, if the
// subject's last sequence is expected; l.me.LowSpace is what was stored.
func (l *NodeLease) write(ctx context.Context, expected uint64) (uint64, error) {
	me := l.me
	me.LowSpace = l.s.localLowSpace()
	data, err := json.Marshal(me)
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ack, err := l.s.js.PublishMsg(wctx, expect(newMsg(l.subj, data, l.o.TTL), expected))
	if err != nil {
		var ae *jetstream.APIError
		if errors.As(err, &ae) && (ae.ErrorCode == errWrongLastSeq || ae.ErrorCode == errWrongLastSeqConstant) {
			return 0, &apiError{Code: ae.Code, ErrCode: int(ae.ErrorCode), Description: ae.Description}
		}
		return 0, fmt.Errorf("%w: node claim %s: %w", storage.ErrUnavailable, l.subj, err)
	}
	l.me.LowSpace = me.LowSpace
	return ack.Sequence, nil
}

// refresh renews the claim every Refresh until Release, or until it finds
// the claim taken (then it reports and stops). A change of the node's
// disk state (low or not) against the one last stored is written at the
// next spacePoll tick, and tried again at each one until it is stored.
func (l *NodeLease) refresh() {
	defer close(l.done)
	t := time.NewTicker(l.o.Refresh)
	defer t.Stop()
	poll := time.NewTicker(spacePoll)
	defer poll.Stop()
	log := l.o.Logger.With("node", l.me.Node)
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		case <-poll.C:
			if (l.s.localLowSpace() == nil) == (l.me.LowSpace == nil) {
				continue
			}
		}
		seq, err := l.write(l.ctx, l.seq)
		if err == nil {
			l.seq = seq
			continue
		}
		if !isConflict(err) {
			log.Warn("could not refresh this node's claim of its name (it expires ttl after the last refresh)", "ttl", l.o.TTL, "err", err)
			continue
		}
		cur, cseq, err := readClaim(l.ctx, l.s.stream, l.subj)
		switch {
		case err != nil:
			log.Warn("could not read this node's claim of its name", "err", err)
		case cseq != 0 && cur.Token == l.me.Token:
			l.seq = cseq // an earlier refresh was stored, its ack lost
		case cseq == 0:
			// Expired (refreshes failed for a whole TTL), nobody took it.
			if seq, err := l.write(l.ctx, 0); err == nil {
				l.seq = seq
				log.Warn("this node's claim of its name had expired (refreshes failed); claimed again")
			}
		default:
			l.lostErr = fmt.Errorf("this node's name was taken over: %w", &NodeInUseError{Holder: cur})
			log.Error("another process now holds this node's name (its claim expired while this node could not refresh it): this node stops claiming it",
				"holder_host", cur.Host, "holder_pid", cur.PID, "holder_since", cur.Since)
			close(l.lost)
			return
		}
	}
}

// Lost is closed when a refresh found the name held by another process.
func (l *NodeLease) Lost() <-chan struct{} { return l.lost }

// Done is closed once the lease no longer refreshes: released, or lost.
func (l *NodeLease) Done() <-chan struct{} { return l.done }

// Err is why the lease was lost (nil while it is held).
func (l *NodeLease) Err() error {
	select {
	case <-l.lost:
		return l.lostErr
	default:
		return nil
	}
}

// Release stops the refreshes (a refresh in progress is cut short) and
// deletes the claim (by its sequence: a claim someone else wrote since
// stays), so the name is free at once. The delete waits at most 5 s.
func (l *NodeLease) Release() {
	l.stopOnce.Do(func() {
		l.cancel()
		<-l.done
		select {
		case <-l.lost:
			return
		default:
		}
		l.s.remove([]uint64{l.seq})
	})
}

// abandon stops the refreshes without releasing (tests: a killed node).
func (l *NodeLease) abandon() {
	l.stopOnce.Do(func() {
		l.cancel()
		<-l.done
	})
}

// NodeClaims returns the names held now, one claim per running node (a
// claim past its TTL is gone). One read per claim. A claim that cannot be
// decoded is an error, after the others are read.
func (s *Store) NodeClaims(ctx context.Context) ([]NodeClaim, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var out []NodeClaim
	var bad error
	err := s.scanByGet(ctx, s.p+"n.*", func(subj string, r rec) bool {
		var c NodeClaim
		if err := json.Unmarshal(r.data, &c); err != nil {
			bad = errors.Join(bad, fmt.Errorf("node claim %s: %w", subj, err))
			return true
		}
		c.Token, c.Instance = "", "" // the holder's own business
		out = append(out, c)
		return true
	})
	if err == nil {
		err = bad
	}
	return out, err
}
