package hooks

import (
	"strings"
	"testing"
)

const (
	fzZero40 = "0000000000000000000000000000000000000000"
	fzA40    = "1111111111111111111111111111111111111111"
	fzB40    = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
	fzZero64 = "0000000000000000000000000000000000000000000000000000000000000000"
	fzB64    = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
)

func isHexID(id string) bool {
	if len(id) != 40 && len(id) != 64 {
		return false
	}
	return strings.Trim(id, "0123456789abcdef") == ""
}

// FuzzParseUpdates: ParseUpdates never panics; every accepted update has
// valid ids of one length, a refs/ name without control characters, and
// re-serialises to exactly the line it came from (so nothing is silently
// normalised, trimmed or skipped).
func FuzzParseUpdates(f *testing.F) {
	for _, seed := range []string{
		"",
		"\n",
		fzZero40 + " " + fzB40 + " refs/heads/master\n",
		fzA40 + " " + fzB40 + " refs/heads/master\n" + fzB40 + " " + fzZero40 + " refs/heads/topic\n",
		fzA40 + " " + fzB40 + " refs/tags/v1.0\n\n" + fzB40 + " " + fzA40 + " refs/heads/x",
		fzZero64 + " " + fzB64 + " refs/heads/main\n",
		fzZero40 + " " + fzZero40 + " refs/heads/master\n",
		fzA40 + " " + fzB64 + " refs/heads/mixed\n",
		fzA40 + "  " + fzB40 + " refs/heads/double-space\n",
		fzA40 + " " + fzB40 + " refs/heads/with space\n",
		fzA40 + " " + fzB40 + " refs/heads/crlf\r\n",
		fzA40 + " " + fzB40 + " refs/\n",
		fzA40 + " " + fzB40 + " HEAD\n",
		fzA40 + " " + strings.ToUpper(fzB40) + " refs/heads/upper\n",
		fzA40 + " " + fzB40 + " refs/stash\n",
		fzA40 + " " + fzB40 + " refs/gitserver/pins/x\n",
		fzA40 + " " + fzB40 + " refs/heads/\x7f\n",
		fzA40 + " " + fzB40 + " refs/heads/" + strings.Repeat("x", 5000) + "\n",
		"garbage\n",
		fzA40 + " " + fzB40 + " refs/heads/ünïcode\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		updates, err := ParseUpdates(strings.NewReader(input))
		if err != nil {
			if updates != nil {
				t.Fatalf("error %v with %d updates returned", err, len(updates))
			}
			return
		}
		// The accepted input is exactly its non-empty lines (a line may end
		// in "\r\n", as bufio.ScanLines defines lines).
		var lines []string
		for _, l := range strings.Split(input, "\n") {
			l = strings.TrimSuffix(l, "\r")
			if l != "" {
				lines = append(lines, l)
			}
		}
		if len(lines) != len(updates) {
			t.Fatalf("%d non-empty lines, %d updates", len(lines), len(updates))
		}
		for i, u := range updates {
			if got := u.Old + " " + u.New + " " + u.Ref; got != lines[i] {
				t.Fatalf("update %d re-serialises to %q, input line %q", i, got, lines[i])
			}
			if !isHexID(u.Old) || !isHexID(u.New) || len(u.Old) != len(u.New) {
				t.Fatalf("update %d has bad ids %q %q", i, u.Old, u.New)
			}
			if !strings.HasPrefix(u.Ref, "refs/") || len(u.Ref) == len("refs/") {
				t.Fatalf("update %d ref %q", i, u.Ref)
			}
			if strings.ContainsFunc(u.Ref, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("update %d ref %q has a control character", i, u.Ref)
			}
			if u.Created() && u.Deleted() {
				t.Fatalf("update %d both creates and deletes", i)
			}
			// ParseUpdate agrees with ParseUpdates line by line.
			if v, err := ParseUpdate(lines[i]); err != nil || v != u {
				t.Fatalf("ParseUpdate(%q) = %v, %v; ParseUpdates gave %v", lines[i], v, err, u)
			}
		}
	})
}
