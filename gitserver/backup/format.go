package backup

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gitserver/store"
)

// Format is the manifest's "format" value; FormatVersion its "version".
// A reader refuses another format and a newer version.
const (
	Format        = "gitserver-backup"
	FormatVersion = 1
)

// Manifest is the archive's first entry, manifest.json.
type Manifest struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// SchemaVersion is the store's schema version of the dump (its last
	// migration); a gitserver whose schema is older refuses the archive.
	SchemaVersion int `json:"schema_version"`
	// CreatedAt is the database snapshot's time: every push acknowledged
	// before it is in the archive.
	CreatedAt time.Time `json:"created_at"`
	// Gitserver is the version of the gitserver that wrote the archive,
	// Store the kind of store it dumped ("sqlite", "postgres").
	Gitserver string `json:"gitserver_version,omitempty"`
	Store     string `json:"store,omitempty"`
	// Tables counts the rows of each table (store.BackupTables and
	// store.SequencesTable), Repositories the repositories.
	Tables       map[string]int `json:"tables"`
	Repositories int            `json:"repositories"`
	// Files names the data files in files/.
	Files []string `json:"files"`
}

func (m Manifest) check(schemaVersion int) error {
	if m.Format != Format {
		return fmt.Errorf("not a gitserver backup (manifest format %q)", store.Truncate(m.Format, 40))
	}
	if m.Version < 1 || m.Version > FormatVersion {
		return fmt.Errorf("backup format version %d is newer than this gitserver reads (%d); restore it with a newer gitserver", m.Version, FormatVersion)
	}
	if m.SchemaVersion > schemaVersion {
		return fmt.Errorf("the backup's database schema (version %d) is newer than this gitserver's (%d); restore it with the gitserver version that wrote it (%s) or a newer one",
			m.SchemaVersion, schemaVersion, store.Truncate(m.Gitserver, 40))
	}
	if m.SchemaVersion < 1 {
		return fmt.Errorf("the backup's manifest has no schema version")
	}
	for t, n := range m.Tables {
		if !isTable(t) || n < 0 {
			return fmt.Errorf("the backup's manifest counts an unknown table %q", store.Truncate(t, 40))
		}
	}
	if m.Repositories < 0 {
		return fmt.Errorf("the backup's manifest counts %d repositories", m.Repositories)
	}
	return nil
}

func isTable(name string) bool {
	return name == store.SequencesTable || slices.Contains(store.BackupTables, name)
}

// Entry kinds.
const (
	kindManifest = iota
	kindFile
	kindTable
	kindRepo
)

// Repository entry suffixes.
const (
	repoBundle  = ".bundle"
	repoEmpty   = ".empty"
	repoDeleted = ".deleted"
)

const manifestName = "manifest.json"

// parseName reads an entry's name by the archive's grammar: the kind, and
// the file name, the table, or the repository id and its suffix. Any
// other name is an error; no name is ever used as a path.
func parseName(name string, files map[string]string) (kind int, key string, id int64, err error) {
	switch {
	case name == manifestName:
		return kindManifest, "", 0, nil
	case strings.HasPrefix(name, "files/"):
		f := strings.TrimPrefix(name, "files/")
		if _, ok := files[f]; ok {
			return kindFile, f, 0, nil
		}
	case strings.HasPrefix(name, "db/") && strings.HasSuffix(name, ".jsonl"):
		t := strings.TrimSuffix(strings.TrimPrefix(name, "db/"), ".jsonl")
		if isTable(t) {
			return kindTable, t, 0, nil
		}
	case strings.HasPrefix(name, "repos/"):
		base := strings.TrimPrefix(name, "repos/")
		for _, suffix := range []string{repoBundle, repoEmpty, repoDeleted} {
			num, ok := strings.CutSuffix(base, suffix)
			if !ok || num == "" || num[0] == '0' || strings.Trim(num, "0123456789") != "" {
				continue
			}
			if n, perr := strconv.ParseInt(num, 10, 64); perr == nil {
				return kindRepo, suffix, n, nil
			}
		}
	}
	return 0, "", 0, fmt.Errorf("the archive holds an entry %q that is not part of a gitserver backup; refusing it (nothing outside the data directory is ever written)", store.Truncate(name, 100))
}

func tableEntry(table string) string { return "db/" + table + ".jsonl" }
func repoEntry(id int64, suffix string) string {
	return "repos/" + strconv.FormatInt(id, 10) + suffix
}

type b64 struct {
	Base64 string `json:"base64"`
}

// EncodeRow renders a row as one JSON object (no newline): int64 as a
// number, string as a string, nil as null, []byte as {"base64": "..."}.
func EncodeRow(r store.Row) ([]byte, error) {
	out := make(map[string]any, len(r))
	for k, v := range r {
		switch v := v.(type) {
		case nil, int64, string:
			out[k] = v
		case []byte:
			out[k] = b64{base64.StdEncoding.EncodeToString(v)}
		default:
			return nil, fmt.Errorf("backup: column %s holds a %T", k, v)
		}
	}
	return json.Marshal(out)
}

// DecodeRow reads a row written by EncodeRow. Any other JSON value (a
// fraction, a boolean, an array, an object but {"base64": ...}) is an
// error.
func DecodeRow(line []byte) (store.Row, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value on the line")
	}
	r := make(store.Row, len(raw))
	for k, msg := range raw {
		v, err := decodeValue(msg)
		if err != nil {
			return nil, fmt.Errorf("column %q: %v", store.Truncate(k, 64), err)
		}
		r[k] = v
	}
	return r, nil
}

func decodeValue(msg json.RawMessage) (any, error) {
	d := json.NewDecoder(bytes.NewReader(msg))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case nil, string:
		return v, nil
	case json.Number:
		n, err := strconv.ParseInt(v.String(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a 64-bit integer", store.Truncate(v.String(), 30))
		}
		return n, nil
	case map[string]any:
		s, ok := v["base64"].(string)
		if len(v) != 1 || !ok {
			return nil, errors.New(`an object other than {"base64": "..."}`)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("bad base64: %v", err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("a %T, not an integer, a string, bytes or null", v)
	}
}
