package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
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
