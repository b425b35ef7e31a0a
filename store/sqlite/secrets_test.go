package sqlite

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"gitserver/store/sqlcore"
)

// TestResealAll: every registered sealed column of an existing table is
// re-sealed with its aad, NULL and empty values are skipped, a registered
// table that does not exist yet is skipped, and a failure changes nothing.
func TestResealAll(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.ResealAll(ctx, nil); err != nil || n != 0 {
		t.Fatalf("ResealAll over the real registry = %d, %v; want 0 (no sealed column yet)", n, err)
	}

	s.Sealed = []sqlcore.SealedColumn{
		{Table: "not_yet", Column: "secret", IDColumn: "id"},
		{Table: "things", Column: "secret", IDColumn: "id"},
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE things (id INTEGER PRIMARY KEY, secret BLOB)`); err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{[]byte("v1:a"), nil, []byte{}, []byte("v1:b")} {
		if _, err := s.w.ExecContext(ctx, `INSERT INTO things (secret) VALUES (?)`, v); err != nil {
			t.Fatal(err)
		}
	}
	values := func() []string {
		rows, err := s.r.QueryContext(ctx, `SELECT coalesce(secret, 'NULL') FROM things ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v []byte
			rows.Scan(&v)
			out = append(out, string(v))
		}
		return out
	}
	var aads []string
	n, err := s.ResealAll(ctx, func(sealed, aad []byte) ([]byte, error) {
		aads = append(aads, string(aad))
		return bytes.Replace(sealed, []byte("v1:"), []byte("v2:"), 1), nil
	})
	if err != nil || n != 2 {
		t.Fatalf("ResealAll = %d, %v; want 2", n, err)
	}
	if got := strings.Join(aads, " "); got != "things.secret:1 things.secret:4" {
		t.Fatalf("aads %q", got)
	}
	if got := strings.Join(values(), ","); got != "v2:a,NULL,,v2:b" {
		t.Fatalf("after re-sealing: %q", got)
	}

	// A failure on the second value leaves the first unchanged too, and
	// the error names the row but not the value.
	calls := 0
	_, err = s.ResealAll(ctx, func(sealed, aad []byte) ([]byte, error) {
		if calls++; calls == 2 {
			return nil, errors.New("does not open")
		}
		return []byte("v3:x"), nil
	})
	if err == nil || !strings.Contains(err.Error(), "things.secret of row 4") || strings.Contains(err.Error(), "v2:") {
		t.Fatalf("failing re-seal: %v", err)
	}
	if got := strings.Join(values(), ","); got != "v2:a,NULL,,v2:b" {
		t.Fatalf("after a failed re-seal: %q", got)
	}
}
