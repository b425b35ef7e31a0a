package hooks

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"gitserver/store"
)

// RefUpdate is one line of pre-/post-receive input.
type RefUpdate struct {
	Old string // all zeros for a creation
	New string // all zeros for a deletion
	Ref string
}

// IsZero reports whether id is git's null object id (SHA-1 or SHA-256).
func IsZero(id string) bool {
	return id != "" && strings.Trim(id, "0") == ""
}

// Created reports whether the update creates the ref.
func (u RefUpdate) Created() bool { return IsZero(u.Old) }

// Deleted reports whether the update deletes the ref.
func (u RefUpdate) Deleted() bool { return IsZero(u.New) }

// MaxUpdates bounds how many ref updates one push may carry.
const MaxUpdates = 100000

const maxLine = 4096

// ParseUpdates reads every "<old> <new> <ref>" line from r. It rejects
// malformed lines rather than skipping them, and reads to the end.
func ParseUpdates(r io.Reader) ([]RefUpdate, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLine)
	var out []RefUpdate
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" {
			continue
		}
		u, err := ParseUpdate(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if len(out) >= MaxUpdates {
			return nil, fmt.Errorf("more than %d ref updates", MaxUpdates)
		}
		out = append(out, u)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return out, nil
}

// ParseUpdate parses one "<old> <new> <ref>" line.
func ParseUpdate(line string) (RefUpdate, error) {
	f := strings.Split(line, " ")
	if len(f) != 3 {
		return RefUpdate{}, fmt.Errorf("want \"<old> <new> <ref>\", got %d fields", len(f))
	}
	u := RefUpdate{Old: f[0], New: f[1], Ref: f[2]}
	if !store.ValidObjectID(u.Old) || !store.ValidObjectID(u.New) || len(u.Old) != len(u.New) {
		return RefUpdate{}, fmt.Errorf("bad object ids")
	}
	if !strings.HasPrefix(u.Ref, "refs/") || len(u.Ref) <= len("refs/") {
		return RefUpdate{}, fmt.Errorf("ref name must start with refs/")
	}
	for i := 0; i < len(u.Ref); i++ {
		if u.Ref[i] < 0x20 || u.Ref[i] == 0x7f {
			return RefUpdate{}, fmt.Errorf("control character in ref name")
		}
	}
	if IsZero(u.Old) && IsZero(u.New) {
		return RefUpdate{}, fmt.Errorf("both object ids are zero")
	}
	return u, nil
}
