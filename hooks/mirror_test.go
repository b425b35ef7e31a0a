package hooks

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestPreReceiveRefusesMirrors: every update of a mirror is refused,
// naming the upstream, before any git check runs.
func TestPreReceiveRefusesMirrors(t *testing.T) {
	z := strings.Repeat("0", 40)
	a := strings.Repeat("a", 40)
	in := z + " " + a + " refs/heads/master\n" + z + " " + a + " refs/tags/v1\n"
	var stderr bytes.Buffer
	env := Env{RepoID: 1, DefaultBranch: "master", Pusher: "alice", Mirror: "git@gitea.example:team/app.git"}
	if code := PreReceive(context.Background(), env, "/nonexistent/git", strings.NewReader(in), &stderr); code != 1 {
		t.Fatalf("exit %d", code)
	}
	want := "rejected refs/heads/master: this repository mirrors git@gitea.example:team/app.git; push there\n" +
		"rejected refs/tags/v1: this repository mirrors git@gitea.example:team/app.git; push there\n"
	if stderr.String() != want {
		t.Fatalf("stderr %q", stderr.String())
	}
	back, err := EnvFrom(func(k string) string {
		for _, kv := range env.Environ() {
			if key, v, _ := strings.Cut(kv, "="); key == k {
				return v
			}
		}
		return ""
	})
	if err != nil || back.Mirror != env.Mirror {
		t.Fatalf("env round trip: %+v %v", back, err)
	}
}
