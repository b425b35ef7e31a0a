package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Every error an implementation returns for a caller
// mistake or a lost race wraps one of these (see each method's doc).
var (
	ErrNotFound  = errors.New("not found")
	ErrExists    = errors.New("already exists")
	ErrConflict  = errors.New("conflict")
	ErrInvalid   = errors.New("invalid")
	ErrForbidden = errors.New("forbidden")
)

// ErrBadCredentials is returned by the credential checks for any failure to
// authenticate (unknown user, wrong password, revoked token).
var ErrBadCredentials = errors.New("bad credentials")

// IsSentinel reports whether err wraps one of the sentinel errors above.
func IsSentinel(err error) bool {
	for _, s := range []error{ErrNotFound, ErrConflict, ErrInvalid, ErrExists, ErrForbidden, ErrBadCredentials} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// RandomHex returns n random bytes, hex encoded.
func RandomHex(n int) string {
	return hex.EncodeToString(RandomBytes(n))
}

// RandomBytes returns n bytes from crypto/rand. It panics if the system's
// random source fails.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("store: crypto/rand failed: " + err.Error())
	}
	return b
}

// Credential errors. ErrBadCredentials (accounts.go) is the store's answer to
// any failed credential check; these two are what an authenticator adds at
// the edge. They are declared here, once, so that every edge classifies
// them with errors.Is/As without importing the authenticator.
var (
	// ErrNoCredentials: the request carried no credentials at all (the
	// caller decides whether anonymous access applies).
	ErrNoCredentials = errors.New("authentication required")
)

// ThrottledError is returned while a client address is refused after too
// many failed sign-ins.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-ins from this address; retry in %s", e.RetryAfter.Round(time.Second))
}

// Error is a caller mistake whose text is safe to show to any client: Kind
// is one of the sentinels (ErrNotFound, ErrExists, ErrConflict, ErrInvalid,
// ErrForbidden) and Message says what was wrong, in words meant for the
// client. Internal failures (SQL, I/O) are never an *Error, so nothing of
// them reaches a client.
type Error struct {
	Kind    error
	Message string
}

// Errorf returns an *Error of kind with a client-safe message.
func Errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Error is "<kind>: <message>", the text clients have always been shown.
func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Message }

func (e *Error) Unwrap() error { return e.Kind }
