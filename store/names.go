package store

import (
	"strings"
)

// ValidName reports whether s is an acceptable account, organisation or
// repository name: [A-Za-z0-9][A-Za-z0-9_.-]{0,99}, not ending in ".git"
// (case-insensitively).
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return !strings.HasSuffix(strings.ToLower(s), ".git")
}

// CheckName returns an ErrInvalid error unless ValidName(s); kind ("user",
// "organisation", "repository") names the thing in the message.
func CheckName(kind, s string) error {
	if !ValidName(s) {
		return Errorf(ErrInvalid, "%s name %q must match [A-Za-z0-9][A-Za-z0-9_.-]{0,99} and not end in .git", kind, Truncate(s, 120))
	}
	return nil
}

// reservedAccountNames are names no new account may take: they are the
// first path segment of the server's own routes (the web pages'
// /{owner}/{name} never matches them; see ui/web.IsReserved). "admin" and
// "user" are not: the first account is named admin.
var reservedAccountNames = map[string]bool{
	"api": true, "git": true, "hooks": true, "scm": true, "healthz": true, "readyz": true, "metrics": true,
	"login": true, "logout": true, "oidc": true, "-": true,
}

// IsReservedName reports whether s (case-insensitively) is a route's first
// path segment, which no new account may be named.
func IsReservedName(s string) bool { return reservedAccountNames[strings.ToLower(s)] }

// CheckAccountName is CheckName for a new user or organisation: also
// ErrInvalid for a reserved name (IsReservedName).
func CheckAccountName(kind, s string) error {
	if err := CheckName(kind, s); err != nil {
		return err
	}
	if IsReservedName(s) {
		return Errorf(ErrInvalid, "%s name %q is reserved (a path of the server's own pages)", kind, s)
	}
	return nil
}

// Truncate shortens s to n bytes for an error message.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ValidObjectID reports whether id is a full git object id in lower-case
// hex: 40 digits (SHA-1) or 64 (SHA-256).
func ValidObjectID(id string) bool {
	if len(id) != 40 && len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
