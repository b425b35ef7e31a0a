package mirror

import (
	"context"
	"sync"
	"time"
)

// Scheduler runs syncs: triggers for one repository coalesce (a trigger
// while its sync is waiting joins it; one while it runs makes exactly one
// more sync afterwards), at most Max run at once, and Close cancels and
// waits for them.
type Scheduler struct {
	// Sync performs one sync; ctx ends at Close.
	Sync func(ctx context.Context, repoID int64, pusher string)
	// Max bounds the syncs running at once (default 4).
	Max int

	mu      sync.Mutex
	started bool
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	sem     chan struct{}
	state   map[int64]*pending
	wg      sync.WaitGroup
	stop    chan struct{}
}

type pending struct {
	running bool
	again   bool
	pusher  string
}

func (s *Scheduler) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked()
}

func (s *Scheduler) startLocked() {
	if s.started {
		return
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.Background())
	n := s.Max
	if n <= 0 {
		n = 4
	}
	s.sem = make(chan struct{}, n)
	s.state = map[int64]*pending{}
	s.stop = make(chan struct{})
}

// goLoop runs f in a goroutine Close stops (by closing the channel) and
// waits for.
func (s *Scheduler) goLoop(f func(stop <-chan struct{})) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.stop)
	}()
}

// Trigger asks for a sync of repoID.
func (s *Scheduler) Trigger(repoID int64, pusher string) { s.trigger(repoID, pusher, false) }

// TriggerIfIdle asks for a sync of repoID unless one is pending or running
// (the poller: a due mirror already being synced needs no more).
func (s *Scheduler) TriggerIfIdle(repoID int64) { s.trigger(repoID, "", true) }

func (s *Scheduler) trigger(repoID int64, pusher string, ifIdle bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked()
	if s.closed {
		return
	}
	if p := s.state[repoID]; p != nil {
		if ifIdle {
			return
		}
		if pusher != "" {
			p.pusher = pusher
		}
		if p.running {
			p.again = true
		}
		return
	}
	p := &pending{pusher: pusher}
	s.state[repoID] = p
	s.wg.Add(1)
	go s.run(repoID, p)
}

func (s *Scheduler) run(repoID int64, p *pending) {
	defer s.wg.Done()
	for {
		select {
		case s.sem <- struct{}{}:
		case <-s.ctx.Done():
			s.mu.Lock()
			delete(s.state, repoID)
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		p.running, p.again = true, false
		pusher := p.pusher
		p.pusher = ""
		s.mu.Unlock()
		s.Sync(s.ctx, repoID, pusher)
		<-s.sem
		s.mu.Lock()
		p.running = false
		if !p.again || s.closed {
			delete(s.state, repoID)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// Close stops new syncs, cancels running ones and waits up to timeout for
// them; it reports whether they all ended.
func (s *Scheduler) Close(timeout time.Duration) bool {
	s.mu.Lock()
	s.startLocked()
	if !s.closed {
		s.closed = true
		close(s.stop)
		s.cancel()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}
