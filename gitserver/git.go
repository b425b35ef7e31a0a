package gitserver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Git runs the system's C git.
type Git struct {
	// Path is the git executable.
	Path string
	// HooksDir is passed as core.hooksPath to receive-pack.
	HooksDir string
	// PackObjectsHook, when set, is passed as uploadpack.packObjectsHook to
	// upload-pack (the pack cache).
	PackObjectsHook string
	// PackObjectsHookEnv is added to upload-pack's environment (the
	// options of a hook that git runs without a shell).
	PackObjectsHookEnv []string
	// Home is used as HOME for git processes so that no admin's personal
	// configuration leaks in.
	Home string
}

// MinGitVersion is the oldest git the server supports.
var MinGitVersion = [2]int{2, 30}

// FindGit locates git on PATH and checks its version.
func FindGit() (path, version string, err error) {
	path, err = exec.LookPath("git")
	if err != nil {
		return "", "", fmt.Errorf("git not found on PATH: gitserver needs git >= %d.%d installed", MinGitVersion[0], MinGitVersion[1])
	}
	out, err := exec.Command(path, "version").Output()
	if err != nil {
		return "", "", fmt.Errorf("running %s version: %w", path, err)
	}
	version = strings.TrimSpace(string(out))
	m := regexp.MustCompile(`git version (\d+)\.(\d+)`).FindStringSubmatch(version)
	if m == nil {
		return "", "", fmt.Errorf("cannot parse %q", version)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < MinGitVersion[0] || major == MinGitVersion[0] && minor < MinGitVersion[1] {
		return "", "", fmt.Errorf("%s is too old: gitserver needs git >= %d.%d", version, MinGitVersion[0], MinGitVersion[1])
	}
	return path, version, nil
}

// baseEnv is the environment of every git process: no system or global
// config, no terminal prompts.
func (g *Git) baseEnv() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + g.Home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"LANG=C",
	}
	if tz := os.Getenv("TZ"); tz != "" {
		env = append(env, "TZ="+tz)
	}
	return env
}

// Command prepares git with args in dir. The process gets its own process
// group, killed as a whole when ctx ends (upload-pack forks pack-objects).
func (g *Git) Command(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, g.Path, args...)
	cmd.Dir = dir
	cmd.Env = append(g.baseEnv(), env...)
	cmd.SysProcAttr = procAttr()
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// Output runs git and returns its trimmed stdout.
func (g *Git) Output(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := g.Command(ctx, dir, nil, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// Service is a git service the server runs: the git subcommand's name.
type Service string

// Services.
const (
	UploadPack    Service = "upload-pack"
	ReceivePack   Service = "receive-pack"
	UploadArchive Service = "upload-archive"
)

// Valid reports whether s is one of the services.
func (s Service) Valid() bool { return s == UploadPack || s == ReceivePack || s == UploadArchive }

// Program is the name clients ask for the service by ("git-upload-pack"),
// in an SSH command and in smart HTTP's ?service= and paths.
func (s Service) Program() string { return "git-" + string(s) }

// ParseService reads a service as clients name it ("git-upload-pack",
// "git-receive-pack", "git-upload-archive"); anything else is not one.
func ParseService(program string) (Service, bool) {
	name, ok := strings.CutPrefix(program, "git-")
	if s := Service(name); ok && s.Valid() {
		return s, true
	}
	return "", false
}

// ServiceArgs are the arguments for running service in a repository: the
// server's configuration is given on the command line (which beats any repo
// config), and the repository is always ".".
func (g *Git) ServiceArgs(service Service, extra ...string) []string {
	return g.serviceArgs(service, true, true, extra...)
}

// serviceArgs is ServiceArgs; packHook false leaves the pack-objects hook
// out (a request the response cache handles: the hook process would cost
// more than it can save).
// pushHooks false runs receive-pack without any hook (the hook-free push,
// fastpush.go).
func (g *Git) serviceArgs(service Service, packHook, pushHooks bool, extra ...string) []string {
	args := []string{
		"-c", "uploadpack.hideRefs=refs/gitserver/",
		"-c", "receive.hideRefs=refs/gitserver/",
	}
	switch service {
	case UploadPack:
		args = append(args,
			"-c", "uploadpack.allowFilter=true",
			"-c", "uploadpack.allowAnySHA1InWant=false",
			// Partial clones over protocol v0/v1 lazily fetch blobs by id;
			// allow objects reachable from the advertised refs (hidden
			// refs excluded). Must come after allowAnySHA1InWant=false,
			// which clears this bit too.
			"-c", "uploadpack.allowReachableSHA1InWant=true",
			"-c", "pack.useBitmaps=true",
		)
		if g.PackObjectsHook != "" && packHook {
			args = append(args, "-c", "uploadpack.packObjectsHook="+g.PackObjectsHook)
		}
	case ReceivePack:
		args = append(args,
			"-c", "core.hooksPath="+g.hooksPath(pushHooks),
			"-c", "receive.fsckObjects=true",
			"-c", "receive.denyNonFastForwards=true",
			"-c", "receive.denyCurrentBranch=refuse",
			"-c", "receive.advertisePushOptions=false",
			"-c", "core.logAllRefUpdates=true",
		)
	}
	args = append(args, string(service))
	args = append(args, extra...)
	return append(args, ".")
}

// hooksPath is core.hooksPath for receive-pack: HooksDir, or with hooks
// false a directory without hooks (it need not exist: git looks for each
// hook with access(2) and runs none it cannot find).
func (g *Git) hooksPath(hooks bool) string {
	if hooks {
		return g.HooksDir
	}
	return filepath.Join(g.HooksDir, "none")
}

var safeProtocol = regexp.MustCompile(`^[0-9a-zA-Z]+=[0-9a-zA-Z]+(:[0-9a-zA-Z]+=[0-9a-zA-Z]+)*$`)

// ProtocolEnv validates a Git-Protocol header / GIT_PROTOCOL value and
// returns the env entry for git, or nil when absent or unsafe.
func ProtocolEnv(v string) []string {
	if v == "" || len(v) > 256 || !safeProtocol.MatchString(v) {
		return nil
	}
	return []string{"GIT_PROTOCOL=" + v}
}

// IsV2 reports whether a Git-Protocol value asks for protocol version 2.
func IsV2(v string) bool {
	for _, kv := range strings.Split(v, ":") {
		if kv == "version=2" {
			return true
		}
	}
	return false
}
