package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeBlock is one fenced ```sh block of README.md.
type readmeBlock struct {
	Line    int    // 1-based line of the opening fence
	Section string // the "## " heading it is under
	Mode    string // "" (run), or the word after "readme-test:" in the comment before it
	Text    string
}

var readmeMarkRE = regexp.MustCompile(`^<!--\s*readme-test:\s*(\S+)`)

// readmeBlocks returns README.md's ```sh blocks in order. A block preceded
// by a `<!-- readme-test: MODE ... -->` comment carries that mode ("skip",
// "background").
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks  []readmeBlock
		cur     *readmeBlock
		mode    string
		section string
		n       int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur, mode = nil, ""
		case cur != nil:
			cur.Text += line + "\n"
		case strings.HasPrefix(line, "```sh"):
			cur = &readmeBlock{Line: n, Section: section, Mode: mode}
		case strings.HasPrefix(line, "## "):
			section, mode = strings.TrimPrefix(line, "## "), ""
		case readmeMarkRE.MatchString(line):
			mode = readmeMarkRE.FindStringSubmatch(line)[1]
		case strings.TrimSpace(line) != "":
			mode = ""
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("README.md:%d: unterminated code block", cur.Line)
	}
	return blocks
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// readmeEnv prepares a directory laid out as a user who ran `make run`
// has it (./bin/gitserver, ./gitserver-data) and a HOME with an isolated
// git and OpenSSH configuration, and starts a fresh server on localhost
// ports. Addresses in the examples (localhost:8080, localhost:2222) are
// rewritten to the server's ports; nothing else of the README is changed.
type readmeEnv struct {
	Dir, Home         string
	Env               []string
	HTTPPort, SSHPort int
	Server            *TestServer
}

func newReadmeEnv(t *testing.T) *readmeEnv {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "jq", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's examples need %s (.ci/run installs it): %v", tool, err)
		}
	}
	root := t.TempDir()
	e := &readmeEnv{Dir: filepath.Join(root, "work"), Home: filepath.Join(root, "home")}
	for _, d := range []string{filepath.Join(e.Dir, "bin"), filepath.Join(e.Home, ".ssh"), filepath.Join(root, "path")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(binPath, filepath.Join(e.Dir, "bin", "gitserver")); err != nil {
		t.Fatal(err)
	}
	// OpenSSH reads ~/.ssh from the passwd entry, not $HOME: a wrapper
	// points it at the test's HOME (keys, known_hosts) and never prompts.
	realSSH, _ := exec.LookPath("ssh")
	sshCfg := filepath.Join(e.Home, ".ssh", "config")
	cfg := fmt.Sprintf("Host *\n  IdentityFile %s\n  UserKnownHostsFile %s\n  StrictHostKeyChecking accept-new\n  BatchMode yes\n",
		filepath.Join(e.Home, ".ssh", "id_ed25519"), filepath.Join(e.Home, ".ssh", "known_hosts"))
	if err := os.WriteFile(sshCfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s -F %s \"$@\"\n", realSSH, sshCfg)
	if err := os.WriteFile(filepath.Join(root, "path", "ssh"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	e.HTTPPort, e.SSHPort = freePort(t), freePort(t)
	e.Server = StartServer(t, WithData(filepath.Join(e.Dir, "gitserver-data")), WithArgs(
		"--http-addr", "127.0.0.1:"+strconv.Itoa(e.HTTPPort),
		"--ssh-addr", "127.0.0.1:"+strconv.Itoa(e.SSHPort),
		"--base-url", "http://localhost:"+strconv.Itoa(e.HTTPPort)))
	e.Env = []string{
		"HOME=" + e.Home,
		"PATH=" + filepath.Join(root, "path") + ":" + os.Getenv("PATH"),
		"XDG_CONFIG_HOME=" + filepath.Join(e.Home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Reader", "GIT_AUTHOR_EMAIL=reader@example.com",
		"GIT_COMMITTER_NAME=Reader", "GIT_COMMITTER_EMAIL=reader@example.com",
		"LANG=C",
	}
	return e
}

func (e *readmeEnv) rewrite(text string) string {
	text = strings.ReplaceAll(text, "localhost:8080", "localhost:"+strconv.Itoa(e.HTTPPort))
	return strings.ReplaceAll(text, "localhost:2222", "localhost:"+strconv.Itoa(e.SSHPort))
}

// TestReadmeExamples runs the README's shell examples in order, as one
// shell session, against a fresh server, and fails when any of them does.
func TestReadmeExamples(t *testing.T) {
	t.Parallel()
	e := newReadmeEnv(t)
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	ran := 0
	for _, b := range readmeBlocks(t) {
		fmt.Fprintf(&script, "echo '>>> README.md:%d (%s)' >&2\n", b.Line, b.Section)
		switch b.Mode {
		case "skip":
			continue
		case "":
			script.WriteString(e.rewrite(b.Text))
		case "background":
			// An endless loop (the build worker): run it in the background,
			// as a reader runs it in another terminal, until build 1 has
			// finished; stop it when the script ends.
			fmt.Fprintf(&script, "(\n%s) >worker.log 2>&1 &\ntrap 'kill %%1 2>/dev/null; cat worker.log >&2' EXIT\n", e.rewrite(b.Text))
			fmt.Fprintf(&script, `for i in $(seq 1 300); do
  case "$(curl -s -u admin:$(cat gitserver-data/initial-admin-password) http://localhost:%d/api/v1/builds/1 | jq -r .status)" in
    succeeded|failed) break;;
  esac
  sleep 0.2
done
`, e.HTTPPort)
		default:
			t.Fatalf("README.md:%d: unknown readme-test mode %q", b.Line, b.Mode)
		}
		ran++
	}
	if ran < 7 {
		t.Fatalf("found only %d runnable README blocks; the extraction is broken", ran)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir, cmd.Env = e.Dir, e.Env
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("README examples did not finish in 3 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("a README example failed (the last '>>>' line names its block): %v\n%s\n--- server ---\n%s", err, out, e.Server.Output())
	}
	t.Logf("ran %d README blocks:\n%s", ran, out)
}
