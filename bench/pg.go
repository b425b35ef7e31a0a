package main

// Two gitserver nodes on PostgreSQL against one node on SQLite (issue 14),
// side by side on this machine: small-push latency, claim wake-up latency
// (the claim waits on one node, the push goes through the other), and API
// throughput. The PostgreSQL cluster is a throwaway one (pgtest).

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gitserver/store/postgres/pgtest"
)

// gsNode is a running gitserver for the comparison.
type gsNode struct {
	base  string // http://127.0.0.1:PORT
	port  int
	token string
	proc  *proc
}

func (n *gsNode) repoURL(repo string) string {
	return fmt.Sprintf("http://admin:%s@127.0.0.1:%d/git/admin/%s.git", n.token, n.port, repo)
}

// startNode starts gitserver serve with data dir and extra args/env.
func startNode(bin, data string, args, env []string) (*gsNode, error) {
	port := freePort()
	p := start(bin, append([]string{"serve", "--data", data, "--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--ssh-addr", "",
		"--log-level", "warn"}, args...), env)
	procs = append(procs, p)
	if err := waitReady(fmt.Sprintf("http://127.0.0.1:%d/readyz", port)); err != nil {
		return nil, fmt.Errorf("%v: %s", err, p.out.String())
	}
	return &gsNode{base: fmt.Sprintf("http://127.0.0.1:%d", port), port: port, proc: p}, nil
}

func adminToken(bin, data string, env []string) (string, error) {
	cmd := exec.Command(bin, "admin", "token", "create", "admin", "--scope", "repo:read", "--scope", "repo:write",
		"--scope", "builds", "--scope", "admin", "--data", data)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("token: %v: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// apiThroughput is GET requests per second over d with conc clients,
// spread round-robin over the nodes.
func apiThroughput(nodes []*gsNode, path string, conc int, d time.Duration) (float64, int) {
	var n, fails atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	for i := 0; i < conc; i++ {
		node := nodes[i%len(nodes)]
		wg.Go(func() {
			for time.Now().Before(stop) {
				req, _ := http.NewRequest("GET", node.base+path, nil)
				req.Header.Set("Authorization", "Bearer "+node.token)
				resp, err := client.Do(req)
				if err != nil {
					fails.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					fails.Add(1)
					continue
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds(), int(fails.Load())
}

type pgResult struct {
	name, unit     string
	sqlite, pg     float64
	higherIsBetter bool
	comment        string
}

// comparePostgres measures one SQLite node, then two PostgreSQL nodes.
func comparePostgres(tmp, bin string) ([]pgResult, error) {
	if !pgtest.Available() {
		return nil, fmt.Errorf("PostgreSQL is not installed (%s/initdb)", pgtest.Bin)
	}
	iters := 1
	if !*flagQuick {
		iters = 3
	}
	type setup struct {
		nodes []*gsNode
	}
	measure := func(s setup) (push, wake []float64, rps float64, fails int, err error) {
		a, b := s.nodes[0], s.nodes[len(s.nodes)-1]
		for _, r := range []string{"push", "wake", "api"} {
			if code, m, err := apiJSON(a.base, a.token, "POST", "/api/v1/repos", map[string]any{"owner": "admin", "name": r, "visibility": "restricted"}); err != nil || code != 201 {
				return nil, nil, 0, 0, fmt.Errorf("create repo %s: %d %v %v", r, code, m, err)
			}
		}
		if push, err = pushTimes(tmp, a.repoURL("push"), 20*iters); err != nil {
			return
		}
		// The claim waits on the last node; the push goes through the first.
		if wake, _, err = wakeups(tmp, b.base, b.token, a.repoURL("wake"), 10*iters); err != nil {
			return
		}
		rps, fails = apiThroughput(s.nodes, "/api/v1/repos/admin/api", 8, time.Duration(2*iters)*time.Second)
		return
	}

	logf("PostgreSQL comparison: one node on SQLite")
	sqData := filepath.Join(tmp, "pg-cmp-sqlite")
	sq, err := startNode(bin, sqData, nil, []string{"GITSERVER_MAINTENANCE_DELAY=1s"})
	if err != nil {
		return nil, err
	}
	if sq.token, err = adminToken(bin, sqData, nil); err != nil {
		return nil, err
	}
	sqPush, sqWake, sqRPS, sqFails, err := measure(setup{[]*gsNode{sq}})
	if err != nil {
		return nil, err
	}
	stopAll()

	logf("PostgreSQL comparison: two nodes on PostgreSQL")
	cluster, err := pgtest.Shared()
	if err != nil {
		return nil, err
	}
	defer pgtest.Stop()
	url, _, err := cluster.NewDatabase()
	if err != nil {
		return nil, err
	}
	shared := filepath.Join(tmp, "pg-cmp-shared")
	if err := os.MkdirAll(shared, 0o700); err != nil {
		return nil, err
	}
	env := []string{"GITSERVER_MAINTENANCE_DELAY=1s", "GITSERVER_DATABASE_URL=" + url}
	args := []string{"--repos-dir", filepath.Join(shared, "repos"), "--secret-key-file", filepath.Join(shared, "secret.key")}
	var nodes []*gsNode
	for i := range 2 {
		data := filepath.Join(tmp, fmt.Sprintf("pg-cmp-node%d", i))
		n, err := startNode(bin, data, args, env)
		if err != nil {
			return nil, err
		}
		if n.token, err = adminToken(bin, data, env); err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	pgPush, pgWake, pgRPS, pgFails, err := measure(setup{nodes})
	if err != nil {
		return nil, err
	}
	stopAll()

	return []pgResult{
		{name: "small push, median wall time (git push, 1 commit)", unit: "ms", sqlite: median(sqPush), pg: median(pgPush),
			comment: fmt.Sprintf("p90 %.0f vs %.0f ms", pct(sqPush, 0.9), pct(pgPush, 0.9))},
		{name: "push -> waiting claim wake-up, median from queued_at (PostgreSQL: claim on node 2, push through node 1)", unit: "ms",
			sqlite: median(sqWake), pg: median(pgWake),
			comment: fmt.Sprintf("p90 %.1f vs %.1f ms; target: median < 100 ms", pct(sqWake, 0.9), pct(pgWake, 0.9))},
		{name: "API throughput, GET /api/v1/repos/admin/api, 8 clients (PostgreSQL: spread over both nodes)", unit: "req/s",
			sqlite: sqRPS, pg: pgRPS, higherIsBetter: true, comment: fmt.Sprintf("failures %d vs %d", sqFails, pgFails)},
	}, nil
}

func reportPostgres(rs []pgResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nTwo nodes on PostgreSQL against one node on SQLite (same machine, same run):\n\n")
	fmt.Fprintf(&b, "| measurement | 1 node, SQLite | 2 nodes, PostgreSQL | PostgreSQL / SQLite |\n|---|---|---|---|\n")
	for _, r := range rs {
		ratio := "-"
		if r.sqlite > 0 {
			ratio = fmt.Sprintf("%.2fx", r.pg/r.sqlite)
		}
		name := r.name + " [" + r.unit + "]"
		if r.comment != "" {
			name += " (" + r.comment + ")"
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %s |\n", name, r.sqlite, r.pg, ratio)
	}
	return b.String()
}

// runPostgresOnly is -only-postgres: build, compare, print.
func runPostgresOnly() error {
	tmp, err := os.MkdirTemp("", "gitserver-bench-")
	if err != nil {
		return err
	}
	cleanup = func() {
		stopAll()
		if !*flagKeep {
			os.RemoveAll(tmp)
		}
	}
	defer cleanup()
	bin := filepath.Join(tmp, "gitserver")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gitserver")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v: %s", err, out)
	}
	rs, err := comparePostgres(tmp, bin)
	if err != nil {
		return err
	}
	out := fmt.Sprintf("Run %s, nproc %d, %s\n%s", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), gitOut("", "version"), reportPostgres(rs))
	fmt.Print(out)
	if *flagOut != "" {
		return os.WriteFile(*flagOut, []byte(out), 0o644)
	}
	return nil
}
