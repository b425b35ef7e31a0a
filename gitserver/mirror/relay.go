package mirror

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// relayMarker starts the line the relay writes to stderr when it stops an
// upstream that sent too much; classify turns it into CodeTooLarge.
const relayMarker = "gitserver-relay: the upstream sent more than"

// RelayMain is `gitserver hook ssh-relay MAXBYTES SSH ARGS...`: git's
// GIT_SSH_COMMAND during a sync. It runs ssh with the same arguments and
// copies what ssh receives to git, counting; past MAXBYTES it kills ssh
// and fails, so git's fetch ends before a ref moves. git has no size bound
// for fetches (receive.maxInputSize is for pushes), and a watcher on the
// pack file is too slow for loopback speeds; this is exact.
func RelayMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: gitserver hook ssh-relay MAXBYTES SSH [ARGS...]")
		return 2
	}
	max, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || max <= 0 {
		fmt.Fprintln(stderr, "gitserver-relay: MAXBYTES must be a positive number")
		return 2
	}
	cmd := exec.Command(args[1], args[2:]...)
	cmd.Stdin, cmd.Stderr = stdin, stderr
	// A killed ssh's children may hold its pipes open: Wait gives up on
	// them after a moment.
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(stderr, "gitserver-relay:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "gitserver-relay:", err)
		return 1
	}
	n, copyErr := io.Copy(stdout, io.LimitReader(out, max))
	var one [1]byte
	if n == max && copyErr == nil {
		if _, err := io.ReadFull(out, one[:]); err == nil {
			n++ // one byte more than allowed: not passed on
		}
	}
	if n > max {
		cmd.Process.Kill()
		cmd.Wait()
		fmt.Fprintf(stderr, "%s %d bytes\n", relayMarker, max)
		return 1
	}
	err = cmd.Wait()
	if copyErr != nil && !errors.Is(copyErr, os.ErrClosed) {
		return 1
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}
