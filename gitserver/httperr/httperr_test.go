package httperr

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gitserver/store"
)

func TestFrom(t *testing.T) {
	internal := errors.New("sqlite: disk I/O error at /var/lib/secret")
	for _, tc := range []struct {
		err           error
		status        int
		code, message string
	}{
		{store.ErrNoCredentials, 401, "unauthorized", "authentication required"},
		{store.ErrBadCredentials, 401, "unauthorized", "invalid credentials"},
		{fmt.Errorf("check: %w", store.ErrBadCredentials), 401, "unauthorized", "invalid credentials"},
		{&store.ThrottledError{RetryAfter: 90 * time.Second}, 429, "rate_limited", "too many failed sign-ins from this address; retry in 1m30s"},
		{store.Errorf(store.ErrInvalid, "bump must be %q", "minor"), 400, "invalid", `invalid: bump must be "minor"`},
		{fmt.Errorf("publish: %w", store.Errorf(store.ErrConflict, "build 3 is queued")), 409, "conflict", "conflict: build 3 is queued"},
		{fmt.Errorf("%w: no user %q", store.ErrNotFound, "bob"), 404, "not_found", `not found: no user "bob"`},
		{fmt.Errorf("%w: the name %q is taken", store.ErrExists, "x"), 409, "already_exists", `already exists: the name "x" is taken`},
		{store.Errorf(store.ErrForbidden, "only admins"), 403, "forbidden", "forbidden: only admins"},
		{fmt.Errorf("store: repo: %w", internal), 500, "internal", "internal error"},
		{fmt.Errorf("wrapped: %w", New(418, "teapot", "short and stout")), 418, "teapot", "short and stout"},
	} {
		e := From(tc.err)
		if e.Status != tc.status || e.Code != tc.code || e.Message != tc.message {
			t.Errorf("From(%v) = %d %q %q, want %d %q %q", tc.err, e.Status, e.Code, e.Message, tc.status, tc.code, tc.message)
		}
		if strings.Contains(e.Message, "secret") {
			t.Errorf("From(%v) reveals the internal cause: %q", tc.err, e.Message)
		}
	}
	if e := From(internal); !errors.Is(e, internal) {
		t.Errorf("the internal cause is lost for the log: %v", e)
	}
}

func TestRender(t *testing.T) {
	w := httptest.NewRecorder()
	From(store.ErrBadCredentials).WriteJSON(w)
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" || w.Header().Get("Content-Type") != "application/json" ||
		w.Body.String() != "{\n  \"error\": {\n    \"code\": \"unauthorized\",\n    \"message\": \"invalid credentials\"\n  }\n}\n" {
		t.Errorf("JSON: %d %v %q", w.Code, w.Header(), w.Body.String())
	}
	w = httptest.NewRecorder()
	Unauthorized().WriteText(w)
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" || w.Body.String() != "authentication required\n" ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("text: %d %v %q", w.Code, w.Header(), w.Body.String())
	}
	w = httptest.NewRecorder()
	From(&store.ThrottledError{RetryAfter: 1500 * time.Millisecond}).WriteText(w)
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("throttled: %d %v", w.Code, w.Header())
	}
	w = httptest.NewRecorder()
	Internal(errors.New("secret detail")).WriteText(w)
	if w.Code != 500 || strings.Contains(w.Body.String(), "secret") {
		t.Errorf("internal: %d %q", w.Code, w.Body.String())
	}
}
