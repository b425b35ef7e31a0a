package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Session lifetimes: a web session ends after SessionIdle without a request
// or SessionMaxAge after sign-in, whichever comes first.
const (
	SessionIdle   = 12 * time.Hour
	SessionMaxAge = 7 * 24 * time.Hour
)

// Session is a signed-in web session (the id itself is a secret the store
// does not keep; see Sessions).
type Session struct {
	UserID int64
	// CSRF is the session's anti-forgery token: every state-changing form
	// of the session carries it.
	CSRF      string
	CreatedAt time.Time
	LastSeen  time.Time
}

// Sessions are web sign-in sessions. The id is a random 256-bit secret
// handed to the browser; the store keeps only its SHA-256 (SessionIDHash).
type Sessions interface {
	// CreateSession starts a session of user userID and returns its id
	// (64 hex digits) and the session. Expired sessions are swept here.
	CreateSession(ctx context.Context, userID int64) (string, Session, error)
	// SessionByID returns a live session and its account, in one read
	// joined with the account: ErrNotFound when the id is unknown, the
	// session expired (SessionIdle, SessionMaxAge), or the account is
	// disabled. It records the use (LastSeen) at most once a minute.
	SessionByID(ctx context.Context, id string) (Account, Session, error)
	// DeleteSession ends a session (no error when there is none).
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions ends every session of userID and returns how
	// many. SetPassword and SetDisabled(true) also end them, in their own
	// transaction.
	DeleteUserSessions(ctx context.Context, userID int64) (int, error)
}

// SessionIDHash is what the store keeps of a session id.
func SessionIDHash(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}
