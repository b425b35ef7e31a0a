package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bin is where Debian's postgresql package installs the server's programs:
// version 15's, else the newest installed.
var Bin = findBin()

func findBin() string {
	const want = "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(want, "initdb")); err == nil {
		return want
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return want
	}
	sort.Slice(found, func(i, j int) bool { return versionOf(found[i]) < versionOf(found[j]) })
	return filepath.Dir(found[len(found)-1])
}

func versionOf(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// Password is the password of the role that owns every test database (the
// cluster trusts local connections, so it is not checked; it is in the URL
// so that tests can see it is never printed).
const Password = "pgtest-Secret-9f3"

var (
	once     sync.Once
	cluster  *Cluster
	errStart error
	seq      atomic.Int64
)

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	Dir  string // its directory (data, log, socket)
	Port int
	Host string // 127.0.0.1
	run  func(name string, args ...string) *exec.Cmd
}

// Available reports whether PostgreSQL 15 is installed here.
func Available() bool {
	_, err := os.Stat(filepath.Join(Bin, "initdb"))
	return err == nil
}

// Start returns the URL of a fresh, empty database owned by a role with
// a password, on the test binary's cluster (started on first use). It skips
// t when PostgreSQL is not installed, unless CI=true: then it fails.
func Start(t testing.TB) string {
	t.Helper()
	if !Available() {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL 15 is not installed (%s/initdb missing) and CI=true", Bin)
		}
		t.Skipf("PostgreSQL 15 is not installed (%s/initdb missing)", Bin)
	}
	c, err := Shared()
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	url, drop, err := c.NewDatabase()
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(drop)
	return url
}

// NewDatabase creates a fresh database owned by the role "gitserver"
// (password Password) and returns its URL and a function that drops it.
func (c *Cluster) NewDatabase() (url string, drop func(), err error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), seq.Add(1))
	if err := c.exec(context.Background(), `CREATE DATABASE `+name+` OWNER gitserver`); err != nil {
		return "", nil, err
	}
	return c.URL("gitserver", Password, name), func() {
		c.exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	}, nil
}

// Shared starts the test binary's cluster once and returns it.
func Shared() (*Cluster, error) {
	once.Do(func() { cluster, errStart = start() })
	return cluster, errStart
}

// URL is a connection URL to database db of the cluster.
func (c *Cluster) URL(role, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", role, password, c.Host, c.Port, db)
}

func (c *Cluster) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres", "", "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop stops the cluster (if started) and removes its directory. TestMain
// calls it (see Main); a watchdog does the same should the test binary die
// first.
func Stop() {
	if cluster == nil {
		return
	}
	c := cluster
	cluster = nil
	c.stop()
}

func (c *Cluster) stop() {
	c.run(filepath.Join(Bin, "pg_ctl"), "-D", filepath.Join(c.Dir, "data"), "-m", "immediate", "-w", "stop").Run()
	os.RemoveAll(c.Dir)
}

// Main runs the tests and stops the cluster: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start() (*Cluster, error) {
	// Not under t.TempDir: its parent is 0700 root, which the postgres
	// user cannot enter; nor under a TMPDIR that user cannot reach.
	base := os.TempDir()
	if os.Geteuid() == 0 && !reachable(base) {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "gitserver-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Host: "127.0.0.1"}
	c.run = func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
	if os.Geteuid() == 0 {
		// initdb refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		c.run = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
		}
	}
	data := filepath.Join(dir, "data")
	if err := runLogged(c.run(filepath.Join(Bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if c.Port, err = freePort(); err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", c.Port, dir)
		err = runLogged(c.run(filepath.Join(Bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-o", opts, "start"))
		if err == nil {
			break
		}
		if attempt == 2 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	// The watchdog stops the cluster when this process is gone, however
	// it ended (a test timeout, kill -9).
	watch := c.run("sh", "-c", fmt.Sprintf(`while [ -d /proc/%d ]; do sleep 1; done; %s/pg_ctl -D %s -m immediate stop; rm -rf %s`,
		os.Getpid(), Bin, data, dir))
	watch.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := watch.Start(); err == nil {
		go watch.Wait()
	}
	if err := c.exec(context.Background(), `CREATE ROLE gitserver LOGIN PASSWORD '`+Password+`'`); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// reachable reports whether any user may enter dir: it and each of its
// parents are searchable by others.
func reachable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// runLogged runs cmd with its output in a file, not a pipe: the server that
// pg_ctl starts must not hold a pipe of this process open.
func runLogged(cmd *exec.Cmd) error {
	f, err := os.CreateTemp("", "gitserver-pgtest-*.out")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(f.Name())
		return fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, b)
	}
	return nil
}

// Restart restarts the shared cluster (a fast shutdown: every connection
// breaks), as a database restart under a running server would. Tests that
// call it must not run in parallel with others of their binary.
func Restart(t testing.TB) {
	t.Helper()
	c, err := Shared()
	if err != nil {
		t.Fatal(err)
	}
	if err := runLogged(c.run(filepath.Join(Bin, "pg_ctl"), "-D", filepath.Join(c.Dir, "data"), "-m", "fast", "-w", "restart")); err != nil {
		t.Fatalf("restart PostgreSQL: %v", err)
	}
}
