package storage

import (
	"context"
	"fmt"
)

// HandOff gives q to a store's committer through queue and waits for its
// answer on done. It fails with ErrUnavailable if ctx ends or stop closes
// before the committer took q. Once taken, it waits for the answer even if
// ctx ends (the event may be stored, and the caller must not answer as if
// it were not), unless dead closes first: the committer has exited, and an
// answer it sent before is still taken.
func HandOff[Q, A any](ctx context.Context, queue chan<- Q, q Q, done <-chan A, stop, dead <-chan struct{}) (A, error) {
	var zero A
	select {
	case queue <- q:
	case <-ctx.Done():
		return zero, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	case <-stop:
		return zero, fmt.Errorf("%w: store closed", ErrUnavailable)
	}
	select {
	case a := <-done:
		return a, nil
	case <-dead:
		select {
		case a := <-done:
			return a, nil
		default:
			return zero, fmt.Errorf("%w: store closed", ErrUnavailable)
		}
	}
}
