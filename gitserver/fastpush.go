package gitserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gitserver/hooks"
)

// The hook-free push (issue 15's small-push target).
//
// Every hook is a start of this binary (InstallHooks), about 15 ms of exec
// and package initialization, twice per push: more than half of a small
// push's time (59 ms, against 25 ms without the hooks). Most pushes are one fast-forward of one existing branch: the build
// system's hot path. For those, nothing in pre-receive needs the hook:
//
//   - the push policy's only question is ancestry, which receive-pack asks
//     itself (receive.denyNonFastForwards, set on every push) before it
//     updates the ref, with the same meaning (in_merge_bases of the claimed
//     old value and the new one, inside the quarantine);
//   - one update is atomic by itself, the name already exists, and a mirror
//     (refused whole) never takes this path;
//
// and post-receive's work (queue the build, tell the pusher) is done by the
// server itself, which reads from receive-pack's report-status which refs
// git updated. So such a push runs receive-pack with no hooks at all. The
// server reads the command list ahead of git (smart HTTP sends it before
// the pack), and filters receive-pack's side-band output: git's
// non-fast-forward message is replaced by the policy's own line, so that
// the pusher sees the same "rejected <ref>: <reason>" line on both paths
// (docs/api.md §6), and the final flush is held until the build is queued
// and announced, as post-receive does. Every other push (several refs,
// creations, deletions, tags, mirrors, SSH, old clients without side-band
// or report-status) takes the hook path unchanged.

// maxCommandSection bounds how much of a receive-pack request is read ahead
// of git to find its command list (one command is ~100 bytes plus
// capabilities); a longer section goes to git unread, on the hook path.
const maxCommandSection = 16 << 10

// pushCommands is the command list at the head of a receive-pack request.
type pushCommands struct {
	// Head is every byte read from the request, to be replayed to git.
	Head []byte
	// Updates are the commands, Caps the capabilities of the first.
	Updates []hooks.RefUpdate
	Caps    []string
	// OK is false when the section was not read to its flush as a plain
	// list of commands (shallow lines, a push certificate, too long,
	// malformed, cut short): git then gets the request as it came.
	OK bool
}

// readPushCommands reads the command list of a receive-pack request from r:
// pkt-lines "<old> <new> <ref>" (the first with "\0<capabilities>") up to
// a flush. It never reads past that flush, so Head followed by the rest of
// r is the request git would have read. A read error is returned with what
// was read; git, given the same reader, meets the same error.
func readPushCommands(r io.Reader) (pushCommands, error) {
	var pc pushCommands
	var hdr [4]byte
	for {
		if m, err := io.ReadFull(r, hdr[:]); err != nil {
			pc.Head = append(pc.Head, hdr[:m]...)
			return pc, readErr(err)
		}
		n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
		pc.Head = append(pc.Head, hdr[:]...)
		if err != nil || n == 1 || n == 2 || n == 3 {
			return pc, nil
		}
		if n == 0 {
			pc.OK = len(pc.Updates) > 0
			return pc, nil
		}
		if len(pc.Head)+int(n)-4 > maxCommandSection {
			return pc, nil
		}
		start := len(pc.Head)
		pc.Head = append(pc.Head, make([]byte, n-4)...)
		if m, err := io.ReadFull(r, pc.Head[start:]); err != nil {
			pc.Head = pc.Head[:start+m]
			return pc, readErr(err)
		}
		line := string(pc.Head[start:])
		if len(pc.Updates) == 0 {
			var caps string
			line, caps, _ = strings.Cut(line, "\x00")
			pc.Caps = strings.Fields(caps)
		}
		u, err := hooks.ParseUpdate(strings.TrimSuffix(line, "\n"))
		if err != nil {
			return pc, nil
		}
		pc.Updates = append(pc.Updates, u)
	}
}

// readErr keeps a clean end of input from looking like a failure: git
// reports a request cut short itself.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return err
}

// hookFree reports whether a push with these commands may run without
// hooks: one fast-forward candidate of an existing branch (the policy's
// only question is then ancestry, which receive-pack's
// denyNonFastForwards answers), from a client that reads side-band and
// report-status (so that the server can rewrite git's message and learn
// the result).
func (pc pushCommands) hookFree() bool {
	if !pc.OK || len(pc.Updates) != 1 {
		return false
	}
	u := pc.Updates[0]
	// (refs/heads/ is never the reserved namespace, refs/gitserver/.)
	if u.Created() || u.Deleted() || u.Old == u.New || !strings.HasPrefix(u.Ref, "refs/heads/") ||
		len(hooks.CheckNames(pc.Updates)) > 0 {
		return false
	}
	sideband, report := false, false
	for _, c := range pc.Caps {
		switch c {
		case "side-band-64k":
			sideband = true
		case "report-status", "report-status-v2":
			report = true
		}
	}
	return sideband && report
}

// pushOutput filters receive-pack's side-band output to the client on the
// hook-free path: it rewrites git's non-fast-forward message into the
// policy's line, records the report-status result of each ref, and holds
// back the final flush (Finish writes it). Anything it cannot parse is
// passed through untouched from there on (and the result is then unknown).
type pushOutput struct {
	w       io.Writer
	pending []byte // an incomplete outer pkt-line
	report  []byte // band-1 payload not yet parsed as inner pkt-lines
	raw     bool
	held    bool // the final flush was read and not yet written
	// Results maps each ref in the report to "ok" or git's reason.
	Results map[string]string
}

// maxPktLen is the longest pkt-line (LARGE_PACKET_MAX).
const maxPktLen = 65520

func newPushOutput(w io.Writer) *pushOutput {
	return &pushOutput{w: w, Results: map[string]string{}}
}

func (o *pushOutput) Write(p []byte) (int, error) {
	if o.raw {
		return o.w.Write(p)
	}
	o.pending = append(o.pending, p...)
	for len(o.pending) >= 4 {
		n, err := strconv.ParseUint(string(o.pending[:4]), 16, 16)
		if err != nil || (n > 0 && n < 5) || n > maxPktLen {
			o.giveUp()
			break
		}
		if n == 0 {
			o.releaseHeld()
			o.held = true
			o.pending = o.pending[4:]
			continue
		}
		if len(o.pending) < int(n) {
			break
		}
		pkt := o.pending[:n]
		o.pending = o.pending[n:]
		o.releaseHeld()
		switch pkt[4] {
		case 1:
			o.report = append(o.report, pkt[5:]...)
			o.parseReport()
		case 2:
			if msg, ok := policyMessage(string(pkt[5:])); ok {
				pkt = sideband(2, msg)
			}
		}
		if _, err := o.w.Write(pkt); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// giveUp passes what is pending, and everything after it, through as is.
func (o *pushOutput) giveUp() {
	o.releaseHeld()
	o.raw = true
	o.w.Write(o.pending)
	o.pending = nil
	o.Results = map[string]string{}
}

// releaseHeld writes a held flush that turned out not to be the last
// packet.
func (o *pushOutput) releaseHeld() {
	if o.held {
		o.held = false
		o.w.Write([]byte("0000"))
	}
}

// parseReport reads the complete inner pkt-lines of report-status(-v2):
// "unpack ok", "ok <ref>", "ng <ref> <reason>", v2's "option ..." lines.
func (o *pushOutput) parseReport() {
	for len(o.report) >= 4 {
		n, err := strconv.ParseUint(string(o.report[:4]), 16, 16)
		if err != nil || (n > 0 && n < 4) {
			o.report = nil
			return
		}
		if n == 0 {
			o.report = o.report[4:]
			continue
		}
		if len(o.report) < int(n) {
			return
		}
		line := strings.TrimSuffix(string(o.report[4:n]), "\n")
		o.report = o.report[n:]
		switch {
		case strings.HasPrefix(line, "ok "):
			o.Results[strings.TrimPrefix(line, "ok ")] = "ok"
		case strings.HasPrefix(line, "ng "):
			ref, reason, _ := strings.Cut(strings.TrimPrefix(line, "ng "), " ")
			o.Results[ref] = reason
		}
	}
}

// Updated reports whether the report said git updated ref.
func (o *pushOutput) Updated(ref string) bool { return o.Results[ref] == "ok" }

// Finish writes lines as side-band messages (the "remote:" lines
// post-receive would print), then the held flush. Without a held flush (git
// failed before its end, or the output could not be parsed) it writes
// nothing: the stream is not ours to end.
func (o *pushOutput) Finish(lines []string) {
	if len(o.pending) > 0 && !o.raw {
		// git's output ended inside a packet: pass on what it wrote.
		o.releaseHeld()
		o.w.Write(o.pending)
		o.pending = nil
		return
	}
	if o.raw || !o.held {
		return
	}
	for _, l := range lines {
		o.w.Write(sideband(2, l+"\n"))
	}
	o.held = false
	o.w.Write([]byte("0000"))
}

// policyMessage turns receive-pack's refusal of a non-fast-forward
// (denyNonFastForwards: "error: denying non-fast-forward <ref> (you should
// pull first)") into the policy's line for that ref.
func policyMessage(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "error: denying non-fast-forward ")
	if !ok {
		return "", false
	}
	ref, ok := strings.CutSuffix(rest, " (you should pull first)\n")
	if !ok || strings.ContainsAny(ref, " \n") {
		return "", false
	}
	return hooks.Rejection{Ref: ref, Reason: hooks.ReasonNonFastForward}.String() + "\n", true
}

// sideband frames msg as one pkt-line on band.
func sideband(band byte, msg string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%04x", len(msg)+5)
	b.WriteByte(band)
	b.WriteString(msg)
	return b.Bytes()
}
