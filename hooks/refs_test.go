package hooks_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"gitserver/hooks"
)

var (
	refZero1 = strings.Repeat("0", 40)
	refZero2 = strings.Repeat("0", 64)
	refA1    = strings.Repeat("a", 40)
	refB1    = "0123456789abcdef0123456789abcdef01234567"
	refA2    = strings.Repeat("a", 64)
	refB2    = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestIsZero(t *testing.T) {
	for id, want := range map[string]bool{
		refZero1: true, refZero2: true, refA1: false, refB1: false, "": false, "0": true,
		strings.Repeat("0", 39) + "1": false,
	} {
		if got := hooks.IsZero(id); got != want {
			t.Errorf("hooks.IsZero(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestParseUpdateValid(t *testing.T) {
	cases := []struct {
		line             string
		want             hooks.RefUpdate
		created, deleted bool
	}{
		{refA1 + " " + refB1 + " refs/heads/master", hooks.RefUpdate{refA1, refB1, "refs/heads/master"}, false, false},
		{refZero1 + " " + refB1 + " refs/heads/new", hooks.RefUpdate{refZero1, refB1, "refs/heads/new"}, true, false},
		{refA1 + " " + refZero1 + " refs/heads/gone", hooks.RefUpdate{refA1, refZero1, "refs/heads/gone"}, false, true},
		{refA2 + " " + refB2 + " refs/heads/sha256", hooks.RefUpdate{refA2, refB2, "refs/heads/sha256"}, false, false},
		{refZero2 + " " + refB2 + " refs/tags/v1", hooks.RefUpdate{refZero2, refB2, "refs/tags/v1"}, true, false},
		{refA2 + " " + refZero2 + " refs/tags/v1", hooks.RefUpdate{refA2, refZero2, "refs/tags/v1"}, false, true},
		{refA1 + " " + refB1 + " refs/notes/commits", hooks.RefUpdate{refA1, refB1, "refs/notes/commits"}, false, false},
		{refA1 + " " + refB1 + " refs/heads/ünïcode/ok", hooks.RefUpdate{refA1, refB1, "refs/heads/ünïcode/ok"}, false, false},
	}
	for _, c := range cases {
		u, err := hooks.ParseUpdate(c.line)
		if err != nil {
			t.Errorf("hooks.ParseUpdate(%q): %v", c.line, err)
			continue
		}
		if u != c.want || u.Created() != c.created || u.Deleted() != c.deleted {
			t.Errorf("hooks.ParseUpdate(%q) = %+v created=%v deleted=%v; want %+v %v %v",
				c.line, u, u.Created(), u.Deleted(), c.want, c.created, c.deleted)
		}
	}
}

func TestParseUpdateMalformed(t *testing.T) {
	cases := map[string]string{
		"empty":               "",
		"one field":           refA1,
		"two fields":          refA1 + " " + refB1,
		"four fields":         refA1 + " " + refB1 + " refs/heads/x extra",
		"double space":        refA1 + "  " + refB1 + " refs/heads/x",
		"tab separated":       refA1 + "\t" + refB1 + "\trefs/heads/x",
		"trailing space":      refA1 + " " + refB1 + " refs/heads/x ",
		"uppercase hex":       strings.ToUpper(refB1) + " " + refA1 + " refs/heads/x",
		"non-hex old":         strings.Repeat("g", 40) + " " + refB1 + " refs/heads/x",
		"non-hex new":         refA1 + " " + strings.Repeat("z", 40) + " refs/heads/x",
		"short id":            refA1[:39] + " " + refB1 + " refs/heads/x",
		"long id":             refA1 + "a " + refB1 + " refs/heads/x",
		"41 hex":              refA1 + "0 " + refB1 + "0 refs/heads/x",
		"mixed lengths":       refA1 + " " + refB2 + " refs/heads/x",
		"mixed zero lengths":  refZero1 + " " + refB2 + " refs/heads/x",
		"mixed zero lengths2": refA2 + " " + refZero1 + " refs/heads/x",
		"both zero":           refZero1 + " " + refZero1 + " refs/heads/x",
		"both zero sha256":    refZero2 + " " + refZero2 + " refs/heads/x",
		"ref not under refs/": refA1 + " " + refB1 + " heads/master",
		"bare HEAD":           refA1 + " " + refB1 + " HEAD",
		"refs/ only":          refA1 + " " + refB1 + " refs/",
		"empty ref":           refA1 + " " + refB1 + " ",
		"control char":        refA1 + " " + refB1 + " refs/heads/a\x01b",
		"escape char":         refA1 + " " + refB1 + " refs/heads/\x1b[31mred",
		"DEL char":            refA1 + " " + refB1 + " refs/heads/a\x7f",
		"carriage return":     refA1 + " " + refB1 + " refs/heads/x\r",
		"NUL":                 refA1 + " " + refB1 + " refs/heads/x\x00",
	}
	for name, line := range cases {
		if u, err := hooks.ParseUpdate(line); err == nil {
			t.Errorf("%s: hooks.ParseUpdate(%q) = %+v, want an error", name, line, u)
		}
	}
}

func TestParseUpdatesManyRefs(t *testing.T) {
	const n = 5000
	var sb strings.Builder
	var want []hooks.RefUpdate
	for i := 0; i < n; i++ {
		old, new := fmt.Sprintf("%040x", i+1), fmt.Sprintf("%040x", i+n+1)
		if i%7 == 0 {
			old = refZero1
		}
		ref := fmt.Sprintf("refs/heads/branch-%d", i)
		fmt.Fprintf(&sb, "%s %s %s\n", old, new, ref)
		want = append(want, hooks.RefUpdate{old, new, ref})
	}
	got, err := hooks.ParseUpdates(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("parsed %d updates, want %d", len(got), n)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("update %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// drainReader records whether its underlying reader was drained.
type drainReader struct {
	r   io.Reader
	eof bool
}

func (c *drainReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

func TestParseUpdatesReadsAllLines(t *testing.T) {
	// The last line has no newline, blank lines are skipped; every line is
	// parsed and the input is read to its end.
	in := refA1 + " " + refB1 + " refs/heads/one\n\n" +
		refZero2 + " " + refB2 + " refs/heads/two\n" +
		refA1 + " " + refZero1 + " refs/tags/three"
	cr := &drainReader{r: strings.NewReader(in)}
	got, err := hooks.ParseUpdates(cr)
	if err != nil {
		t.Fatal(err)
	}
	want := []hooks.RefUpdate{{refA1, refB1, "refs/heads/one"}, {refZero2, refB2, "refs/heads/two"}, {refA1, refZero1, "refs/tags/three"}}
	if len(got) != len(want) {
		t.Fatalf("got %d updates %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("update %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !cr.eof {
		t.Error("input not read to the end")
	}

	empty, err := hooks.ParseUpdates(strings.NewReader(""))
	if err != nil || len(empty) != 0 {
		t.Errorf("empty input: %v, %v", empty, err)
	}
}

func TestParseUpdatesRejectsAnyBadLine(t *testing.T) {
	good := refA1 + " " + refB1 + " refs/heads/ok\n"
	for name, bad := range map[string]string{
		"bad middle line": good + "garbage\n" + good,
		"bad last line":   good + good + refA1 + " " + refB1 + " notref\n",
		"bad first line":  refZero1 + " " + refZero1 + " refs/heads/x\n" + good,
		"overlong line":   good + refA1 + " " + refB1 + " refs/heads/" + strings.Repeat("x", 8192) + "\n",
	} {
		got, err := hooks.ParseUpdates(strings.NewReader(bad))
		if err == nil {
			t.Errorf("%s: parsed %d updates, want an error", name, len(got))
			continue
		}
		if got != nil {
			t.Errorf("%s: partial result %+v returned with the error", name, got)
		}
		if !strings.Contains(err.Error(), "line") {
			t.Errorf("%s: error %q does not name the line", name, err)
		}
	}
	// The error names the failing line number.
	_, err := hooks.ParseUpdates(strings.NewReader(good + good + "x y z\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %v, want it to name line 3", err)
	}
}
