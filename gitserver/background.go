package gitserver

import (
	"context"
	"sync"
	"time"
)

// background tracks goroutines started by requests that must not outlive
// the store (the post-push build backstop).
type background struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
}

// Go runs f in a goroutine that Close waits for. f's context carries ctx's
// values but not its cancellation (the request may be over by then), and is
// cancelled when Close gives up waiting. After Close, f is not run: what it
// would have done is left to the start-up reconciliation.
func (b *background) Go(ctx context.Context, f func(context.Context)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if b.ctx == nil {
		b.ctx, b.cancel = context.WithCancel(context.Background())
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(b.ctx, cancel)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer cancel()
		defer stop()
		f(fctx)
	}()
}

// close refuses new work and waits up to timeout for the running work;
// past it, that work's context is cancelled and close waits up to 5 s more
// for it to return. It reports whether everything finished.
func (b *background) close(timeout time.Duration) bool {
	b.mu.Lock()
	b.closed = true
	cancel := b.cancel
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
	}
	if cancel != nil {
		cancel()
	}
	select {
	case <-done:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

// Close stops accepting background work (the post-push build backstop) and
// waits up to timeout for what runs; past it, that work is cancelled. It
// reports whether everything finished. Call it after the transports have
// stopped and before the store is closed.
func (s *Server) Close(timeout time.Duration) bool {
	return s.bg.close(timeout)
}
