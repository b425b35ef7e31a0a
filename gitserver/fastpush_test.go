package gitserver

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const (
	oidA = "1111111111111111111111111111111111111111"
	oidB = "2222222222222222222222222222222222222222"
	zero = "0000000000000000000000000000000000000000"
)

func pktOf(s string) string { return string(pktLine(s)) }

const modernCaps = " report-status-v2 side-band-64k object-format=sha1 agent=git/2.39.5"

func TestReadPushCommands(t *testing.T) {
	pack := "PACK\x00\x00\x00\x02\x00\x00\x00\x00rest-of-pack"
	for _, tc := range []struct {
		name     string
		body     string
		ok       bool
		hookFree bool
		updates  int
	}{
		{"one fast-forward candidate", pktOf(oidA+" "+oidB+" refs/heads/master\x00"+modernCaps+"\n") + "0000" + pack, true, true, 1},
		{"report-status v1", pktOf(oidA+" "+oidB+" refs/heads/master\x00report-status side-band-64k\n") + "0000" + pack, true, true, 1},
		{"without a trailing newline", pktOf(oidA+" "+oidB+" refs/heads/master\x00"+modernCaps) + "0000" + pack, true, true, 1},
		{"no side-band", pktOf(oidA+" "+oidB+" refs/heads/master\x00report-status\n") + "0000" + pack, true, false, 1},
		{"no report", pktOf(oidA+" "+oidB+" refs/heads/master\x00side-band-64k\n") + "0000" + pack, true, false, 1},
		{"creation", pktOf(zero+" "+oidB+" refs/heads/master\x00"+modernCaps+"\n") + "0000" + pack, true, false, 1},
		{"deletion", pktOf(oidA+" "+zero+" refs/heads/topic\x00"+modernCaps+"\n") + "0000", true, false, 1},
		{"tag", pktOf(oidA+" "+oidB+" refs/tags/v1\x00"+modernCaps+"\n") + "0000" + pack, true, false, 1},
		{"notes follow the branch rules, by the hook", pktOf(oidA+" "+oidB+" refs/notes/commits\x00"+modernCaps+"\n") + "0000" + pack, true, false, 1},
		{"reserved", pktOf(oidA+" "+oidB+" refs/heads/../gitserver/x\x00"+modernCaps+"\n") + "0000" + pack, true, false, 1},
		{"bad name", pktOf(oidA+" "+oidB+" refs/heads/a..b\x00"+modernCaps+"\n") + "0000" + pack, true, false, 1},
		{"no-op", pktOf(oidA+" "+oidA+" refs/heads/master\x00"+modernCaps+"\n") + "0000" + pack, true, false, 1},
		{"two refs", pktOf(oidA+" "+oidB+" refs/heads/master\x00"+modernCaps+"\n") + pktOf(oidA+" "+oidB+" refs/heads/topic\n") + "0000" + pack, true, false, 2},
		{"shallow line first", pktOf("shallow "+oidA+"\n") + pktOf(oidA+" "+oidB+" refs/heads/master\x00"+modernCaps+"\n") + "0000" + pack, false, false, 0},
		{"push certificate", pktOf("push-cert\x00"+modernCaps+"\n") + pktOf("certificate version 0.1\n") + "0000", false, false, 0},
		{"empty", "", false, false, 0},
		{"flush only", "0000", false, false, 0},
		{"cut in a header", pktOf(oidA+" "+oidB+" refs/heads/master\x00"+modernCaps+"\n") + "00", false, false, 1},
		{"cut in a line", pktOf(oidA + " " + oidB + " refs/heads/master\x00" + modernCaps + "\n")[:30], false, false, 0},
		{"no flush", pktOf(oidA + " " + oidB + " refs/heads/master\x00" + modernCaps + "\n"), false, false, 1},
		{"bad length", "zzzz" + pack, false, false, 0},
		{"delimiter", "0001" + pack, false, false, 0},
		{"too long", pktOf(oidA+" "+oidB+" refs/heads/"+strings.Repeat("x", maxCommandSection)+"\n") + "0000", false, false, 0},
		{"malformed command", pktOf("hello world\n") + "0000", false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := strings.NewReader(tc.body)
			pc, err := readPushCommands(iotest.HalfReader(r))
			if err != nil {
				t.Fatal(err)
			}
			if pc.OK != tc.ok || pc.hookFree() != tc.hookFree || len(pc.Updates) != tc.updates {
				t.Errorf("ok %v hookFree %v updates %d, want %v %v %d", pc.OK, pc.hookFree(), len(pc.Updates), tc.ok, tc.hookFree, tc.updates)
			}
			// Nothing is lost: what was read, then the rest, is the body.
			rest, _ := io.ReadAll(r)
			if got := string(pc.Head) + string(rest); got != tc.body {
				t.Errorf("replay differs from the body:\n got %q\nwant %q", got, tc.body)
			}
			if tc.ok && !strings.HasPrefix(string(rest), strings.TrimPrefix(tc.body, string(pc.Head))) {
				t.Errorf("read past the flush")
			}
		})
	}
}

func TestReadPushCommandsError(t *testing.T) {
	boom := errors.New("stalled")
	body := pktOf(oidA + " " + oidB + " refs/heads/master\x00" + modernCaps + "\n")
	pc, err := readPushCommands(io.MultiReader(strings.NewReader(body[:20]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want %v", err, boom)
	}
	if string(pc.Head) != body[:20] || pc.OK {
		t.Fatalf("head %q ok %v", pc.Head, pc.OK)
	}
}

// reportStream is receive-pack's side-band output for a push of refs with
// these results ("ok" or a reason), with msgs on band 2 first.
func reportStream(msgs []string, results [][2]string) string {
	var inner strings.Builder
	inner.WriteString(pktOf("unpack ok\n"))
	for _, r := range results {
		if r[1] == "ok" {
			inner.WriteString(pktOf("ok " + r[0] + "\n"))
		} else {
			inner.WriteString(pktOf("ng " + r[0] + " " + r[1] + "\n"))
		}
	}
	inner.WriteString("0000")
	var out strings.Builder
	for _, m := range msgs {
		out.Write(sideband(2, m))
	}
	out.Write(sideband(1, inner.String()))
	out.WriteString("0000")
	return out.String()
}

// writeInPieces writes s to w n bytes at a time.
func writeInPieces(t *testing.T, w io.Writer, s string, n int) {
	for len(s) > 0 {
		k := min(n, len(s))
		if m, err := w.Write([]byte(s[:k])); err != nil || m != k {
			t.Fatalf("write: %d, %v", m, err)
		}
		s = s[k:]
	}
}

func TestPushOutput(t *testing.T) {
	for _, piece := range []int{1, 3, 7, 1 << 20} {
		// Accepted: the report is read, the flush held until Finish,
		// which adds the lines before it.
		var b bytes.Buffer
		o := newPushOutput(&b)
		in := reportStream([]string{"progress\n"}, [][2]string{{"refs/heads/master", "ok"}})
		writeInPieces(t, o, in, piece)
		if !o.Updated("refs/heads/master") || o.Updated("refs/heads/other") {
			t.Fatalf("piece %d: results %v", piece, o.Results)
		}
		if !bytes.Equal(b.Bytes(), []byte(strings.TrimSuffix(in, "0000"))) {
			t.Fatalf("piece %d: before Finish\n got %q\nwant %q", piece, b.String(), strings.TrimSuffix(in, "0000"))
		}
		o.Finish([]string{"gitserver: build 1 queued"})
		if want := strings.TrimSuffix(in, "0000") + string(sideband(2, "gitserver: build 1 queued\n")) + "0000"; b.String() != want {
			t.Fatalf("piece %d: after Finish\n got %q\nwant %q", piece, b.String(), want)
		}

		// Refused by denyNonFastForwards: git's line becomes the
		// policy's; other band-2 lines pass unchanged.
		b.Reset()
		o = newPushOutput(&b)
		in = reportStream([]string{"error: denying non-fast-forward refs/heads/master (you should pull first)\n", "error: something else\n"},
			[][2]string{{"refs/heads/master", "non-fast-forward"}})
		writeInPieces(t, o, in, piece)
		o.Finish(nil)
		want := strings.Replace(in, string(sideband(2, "error: denying non-fast-forward refs/heads/master (you should pull first)\n")),
			string(sideband(2, "rejected refs/heads/master: non-fast-forward update would rewrite history\n")), 1)
		if b.String() != want {
			t.Fatalf("piece %d: refused\n got %q\nwant %q", piece, b.String(), want)
		}
		if o.Updated("refs/heads/master") || o.Results["refs/heads/master"] != "non-fast-forward" {
			t.Fatalf("piece %d: results %v", piece, o.Results)
		}
	}
}

func TestPushOutputUnparsable(t *testing.T) {
	// Not pkt-lines: passed through as is, nothing known, nothing added.
	var b bytes.Buffer
	o := newPushOutput(&b)
	in := "fatal: something went wrong\n0000"
	writeInPieces(t, o, in, 5)
	o.Finish([]string{"never"})
	if b.String() != in || o.Updated("refs/heads/master") {
		t.Fatalf("got %q, results %v", b.String(), o.Results)
	}
	// Cut short (git died): passed on as git wrote it, no end made up.
	b.Reset()
	o = newPushOutput(&b)
	in = reportStream(nil, [][2]string{{"refs/heads/master", "ok"}})
	in = in[:len(in)-10]
	writeInPieces(t, o, in, 4)
	o.Finish([]string{"never"})
	if b.String() != in {
		t.Fatalf("cut short:\n got %q\nwant %q", b.String(), in)
	}
}

func TestPolicyMessage(t *testing.T) {
	for in, want := range map[string]string{
		"error: denying non-fast-forward refs/heads/main (you should pull first)\n": "rejected refs/heads/main: non-fast-forward update would rewrite history\n",
		"error: denying non-fast-forward refs/heads/main (you should pull first)":   "",
		"error: denying non-fast-forward a b (you should pull first)\n":             "",
		"error: denying ref deletion for refs/heads/main\n":                         "",
	} {
		got, ok := policyMessage(in)
		if ok != (want != "") || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
}

// FuzzReadPushCommands: whatever a client sends, the command reader never
// panics, never reads past the flush it stops at, and loses no byte: what
// it read, then the rest, is the request git gets.
func FuzzReadPushCommands(f *testing.F) {
	f.Add([]byte(pktOf(oidA+" "+oidB+" refs/heads/master\x00"+modernCaps+"\n") + "0000PACK"))
	f.Add([]byte(pktOf("shallow "+oidA+"\n") + "0000"))
	f.Add([]byte("0004" + "ffff" + "0000"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := bytes.NewReader(body)
		pc, err := readPushCommands(r)
		if err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(r)
		if !bytes.Equal(append(append([]byte{}, pc.Head...), rest...), body) {
			t.Fatalf("lost bytes")
		}
		if pc.OK && !bytes.HasSuffix(pc.Head, []byte("0000")) {
			t.Fatalf("OK without a flush: %q", pc.Head)
		}
		if pc.hookFree() && (len(pc.Updates) != 1 || pc.Updates[0].Created() || pc.Updates[0].Deleted()) {
			t.Fatalf("hook-free: %v", pc.Updates)
		}
	})
}

// FuzzPushOutput: whatever receive-pack writes, the filter passes every
// byte on once and in order (with Finish adding nothing), unless it is the
// one message it rewrites.
func FuzzPushOutput(f *testing.F) {
	f.Add([]byte(reportStream([]string{"progress\n"}, [][2]string{{"refs/heads/master", "ok"}})), 3)
	f.Add([]byte("0000000000050100"), 1)
	f.Add([]byte("fatal: x\n"), 2)
	f.Fuzz(func(t *testing.T, out []byte, piece int) {
		if piece <= 0 || piece > 1<<16 {
			piece = 1 << 16
		}
		var b bytes.Buffer
		o := newPushOutput(&b)
		for s := out; len(s) > 0; {
			k := min(piece, len(s))
			if n, err := o.Write(s[:k]); n != k || err != nil {
				t.Fatalf("write %d: %d %v", k, n, err)
			}
			s = s[k:]
		}
		o.Finish(nil)
		if !bytes.Contains(out, []byte("denying non-fast-forward")) && !bytes.Equal(b.Bytes(), out) {
			t.Fatalf("output changed:\n got %q\nwant %q", b.Bytes(), out)
		}
	})
}
