package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestStartUnderPrivateTMPDIR: as root the cluster belongs to the postgres
// user, which cannot enter a TMPDIR private to root (a CI runner's, or
// t.TempDir's): the cluster's directory must be one it can reach anyway.
func TestStartUnderPrivateTMPDIR(t *testing.T) {
	if !Available() {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is not installed and CI=true")
		}
		t.Skip("PostgreSQL is not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to the postgres user")
	}
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", private)
	c, err := start()
	if err != nil {
		t.Fatalf("start with TMPDIR=%s (0700, root's): %v", private, err)
	}
	defer c.stop()
	url, drop, err := c.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	defer drop()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
}
