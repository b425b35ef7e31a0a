package gitserver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBodyStalled is the error of reading a request body that made no
// progress for the body timeout (see WithBodyTimeout).
var ErrBodyStalled = errors.New("request body stalled")

// WithBodyTimeout ends the reading of a request body that makes no progress:
// a read that receives no byte for timeout fails with ErrBodyStalled, and
// so does every later one. The git handlers copy the body into git's stdin,
// so git then sees EOF (a push updates nothing) and exits, and the
// connection is closed. Without it, a client that sends half a body and
// stalls holds a git process (and a connection) forever: the server has no
// whole-request ReadTimeout, since pushes and clones may rightly take
// hours.
//
// It wraps every request with a body, authenticated or not: the server
// itself reads an unread body (up to 256 KiB) after an early answer such as
// a 401, and that read is bounded by the same deadline. Time the handler
// spends not reading (git busy with what it received) does not count. Once
// the body has been read to its end the deadline is lifted, so a long
// answer (a clone's pack, a build claim's wait) is not cut short. timeout
// <= 0 returns next unchanged.
func WithBodyTimeout(next http.Handler, timeout time.Duration) http.Handler {
	if timeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		// HTTP/1 and HTTP/2 support read deadlines; anything else is
		// served without the bound.
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			next.ServeHTTP(w, r)
			return
		}
		sr := &stallReader{r: r.Body, rc: rc, timeout: timeout}
		r.Body = sr
		next.ServeHTTP(w, r)
		sr.finish()
		if sr.stalled.Load() {
			// What is left of the body on the wire must never be read
			// as a next request, yet net/http keeps a full-duplex
			// connection whose body read failed. Send what the handler
			// answered, then drop the connection (ErrAbortHandler: no
			// stack trace is logged).
			rc.Flush()
			panic(http.ErrAbortHandler)
		}
	})
}

// stallReader extends the connection's read deadline before every read of
// the body and lifts it at the body's end.
type stallReader struct {
	r       io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	err     error // sticky: io.EOF, or a stalled body stays stalled
	stalled atomic.Bool

	// A handler may leave a goroutine reading the body (RunService does
	// not wait for its stdin copy); once the handler has returned, the
	// connection may serve the next request, whose deadlines are not
	// this reader's to set.
	mu   sync.Mutex
	done bool
}

// setDeadline sets the connection's read deadline while the handler runs.
func (s *stallReader) setDeadline(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.rc.SetReadDeadline(t)
	}
}

// finish is called when the handler has returned.
func (s *stallReader) finish() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	s.setDeadline(time.Now().Add(s.timeout))
	n, err := s.r.Read(p)
	switch {
	case err == io.EOF:
		// net/http now reads in the background to notice a client that
		// leaves (and lifts the deadline for that read); a deadline set
		// again by a later Read would fail it and cancel the request
		// while it is still being answered. So EOF is sticky here.
		s.err = io.EOF
		s.setDeadline(time.Time{})
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		s.err = fmt.Errorf("%w: no byte received for %v", ErrBodyStalled, s.timeout)
		s.stalled.Store(true)
		err = s.err
	}
	return n, err
}

func (s *stallReader) Close() error { return s.r.Close() }
