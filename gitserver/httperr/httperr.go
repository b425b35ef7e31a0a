package httperr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"gitserver/store"
)

// Error is an HTTP error answer.
type Error struct {
	Status  int    // HTTP status code
	Code    string // machine-readable: "not_found", "unauthorized", ...
	Message string // safe to show to any client
	Err     error  // internal cause, for logs only; never rendered

	// Challenge asks for HTTP Basic credentials (WWW-Authenticate), so
	// that git prompts or uses its credential helper.
	Challenge bool
	// RetryAfter, if set, is sent as Retry-After (whole seconds, rounded up).
	RetryAfter time.Duration
}

// New returns an Error without internal cause.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Error is the client message, followed by the cause when there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Unauthorized is the answer that asks a client to sign in.
func Unauthorized() *Error { return From(store.ErrNoCredentials) }

// Internal is a 500 whose message reveals nothing of err.
func Internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error", Err: err}
}

// kinds maps the store's sentinels to a status and code.
var kinds = []struct {
	kind   error
	status int
	code   string
}{
	{store.ErrNotFound, http.StatusNotFound, "not_found"},
	{store.ErrExists, http.StatusConflict, "already_exists"},
	{store.ErrConflict, http.StatusConflict, "conflict"},
	{store.ErrInvalid, http.StatusBadRequest, "invalid"},
	{store.ErrForbidden, http.StatusForbidden, "forbidden"},
}

// From classifies err: an *Error (anywhere in the chain) as it is;
// credential errors as 401 or 429; store errors by their sentinel, with the
// client-safe message of a *store.Error; anything else as Internal(err).
func From(err error) *Error {
	var he *Error
	if errors.As(err, &he) {
		return he
	}
	var te *store.ThrottledError
	switch {
	case errors.As(err, &te):
		return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: te.Error(), RetryAfter: te.RetryAfter}
	case errors.Is(err, store.ErrNoCredentials):
		return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "authentication required", Challenge: true}
	case errors.Is(err, store.ErrBadCredentials):
		return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "invalid credentials", Challenge: true}
	}
	for _, k := range kinds {
		if errors.Is(err, k.kind) {
			return &Error{Status: k.status, Code: k.code, Message: clientMessage(err), Err: err}
		}
	}
	return Internal(err)
}

// IsAuth reports whether err is a credential error (no or bad credentials,
// throttled), as opposed to a failure to check them.
func IsAuth(err error) bool {
	var te *store.ThrottledError
	return errors.Is(err, store.ErrNoCredentials) || errors.Is(err, store.ErrBadCredentials) || errors.As(err, &te)
}

// clientMessage is the text of a store error meant for clients. A
// *store.Error says it explicitly. The store's other caller-mistake errors
// (fmt.Errorf("%w: ...", ErrX), which wrap nothing internal) are written for
// clients too; they become *store.Error as the store's code moves.
func clientMessage(err error) string {
	var se *store.Error
	if errors.As(err, &se) {
		return se.Error()
	}
	return err.Error()
}

func (e *Error) writeHeader(w http.ResponseWriter, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
	}
	if e.Challenge {
		h.Set("WWW-Authenticate", `Basic realm="gitserver", charset="UTF-8"`)
	}
}

// WriteJSON renders e as the API's error object:
// {"error": {"code": CODE, "message": MESSAGE}}.
func (e *Error) WriteJSON(w http.ResponseWriter) {
	e.writeHeader(w, "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	type object struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(map[string]object{"error": {Code: e.Code, Message: e.Message}})
}

// WriteText renders e for git clients (and plain HTTP clients): the message
// on one line of text/plain.
func (e *Error) WriteText(w http.ResponseWriter) {
	e.writeHeader(w, "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(e.Status)
	w.Write([]byte(e.Message + "\n"))
}
