package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gitserver/store"
)

// Limits on what a restore reads into memory.
const (
	maxManifest = 1 << 20
	maxFile     = 1 << 20
	maxRowLine  = 64 << 20
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// SchemaVersion is this gitserver's store schema version: an archive
	// of a newer one is refused before anything is created.
	SchemaVersion int
	// Open creates the new store (migrated, empty). Restore calls it once
	// the manifest is checked, and closes it when it fails.
	Open func(ctx context.Context) (store.Store, error)
	Git  Git
	// InitRepo creates a repository's bare directory (gitserver.Repos.Init)
	// and RepoDir names it.
	InitRepo func(ctx context.Context, r store.Repo) error
	RepoDir  func(store.Repo) string
	// Files maps the names of files/ entries this restore accepts to where
	// each goes; it is created 0600 and must not exist. An entry not named
	// here refuses the archive.
	Files map[string]string
	// CheckManifest, when set, is called with the checked manifest before
	// anything is created; its error refuses the archive.
	CheckManifest func(Manifest) error
	// TempDir holds one repository's bundle at a time.
	TempDir  string
	Progress func(Progress)
}

// Result is what Restore restored.
type Result struct {
	Manifest Manifest
	// Store is the restored store, open; the caller closes it.
	Store store.Store
	// Rows were loaded; Repositories were restored from a bundle, Empty
	// have no refs, Deleted were deleted while the backup ran (their rows
	// are deleted again).
	Rows, Repositories, Empty, Deleted int
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type entry struct {
	hdr  *tar.Header
	kind int
	key  string // file name, table, or repository suffix
	id   int64
}

// Restore reads an archive written by Create (gzip-compressed or not) and
// recreates the server it describes: the manifest is checked before
// anything is created (format, schema version), the data files are
// written, the rows loaded into a new store (opt.Open) in one
// transaction, then each repository is created and fetched from its
// bundle, its refs compared with the bundle's. An archive that is not
// exactly one written by Create, truncated or tampered with, is refused
// with an error naming the entry; what was created by then is the
// caller's to remove (Restore writes only below the paths opt gives).
func Restore(ctx context.Context, r io.Reader, opt RestoreOptions) (res Result, err error) {
	cr := &countingReader{r: r}
	br := bufio.NewReader(cr)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return res, fmt.Errorf("restore: not a gzip stream: %v", err)
		}
		defer zr.Close()
		src = zr
	}
	tr := tar.NewReader(src)
	seen := map[string]bool{}
	next := func() (*entry, error) {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("restore: not a readable archive (truncated or damaged?): %v", err)
		}
		kind, key, id, err := parseName(hdr.Name, opt.Files)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("restore: the archive's entry %q is not a regular file (type %q); refusing it", store.Truncate(hdr.Name, 100), hdr.Typeflag)
		}
		if seen[hdr.Name] {
			return nil, fmt.Errorf("restore: the archive holds %q twice; refusing it", hdr.Name)
		}
		seen[hdr.Name] = true
		return &entry{hdr: hdr, kind: kind, key: key, id: id}, nil
	}
	report := func(p Progress) {
		p.Bytes = cr.n
		if opt.Progress != nil {
			opt.Progress(p)
		}
	}

	// The manifest, first: nothing is created before it is checked.
	e, err := next()
	if err != nil {
		return res, err
	}
	if e == nil || e.kind != kindManifest {
		return res, errors.New("restore: the archive does not start with manifest.json: not a gitserver backup")
	}
	if e.hdr.Size > maxManifest {
		return res, errors.New("restore: manifest.json is too large")
	}
	var m Manifest
	dec := json.NewDecoder(tr)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return res, fmt.Errorf("restore: manifest.json: %v", err)
	}
	if err := m.check(opt.SchemaVersion); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	res.Manifest = m
	for _, f := range m.Files {
		if _, ok := opt.Files[f]; !ok {
			return res, fmt.Errorf("restore: the backup holds a data file %q this gitserver does not know", store.Truncate(f, 60))
		}
	}
	for _, f := range m.Files {
		if _, err := os.Lstat(opt.Files[f]); err == nil {
			return res, fmt.Errorf("restore: %s exists already; restore into a new data directory", opt.Files[f])
		}
	}
	if opt.CheckManifest != nil {
		if err := opt.CheckManifest(m); err != nil {
			return res, err
		}
	}

	// The data files.
	e, err = next()
	for err == nil && e != nil && e.kind == kindFile {
		if !slices.Contains(m.Files, e.key) {
			return res, fmt.Errorf("restore: the archive holds %s, which its manifest does not list", e.hdr.Name)
		}
		if e.hdr.Size > maxFile {
			return res, fmt.Errorf("restore: %s is too large", e.hdr.Name)
		}
		data, rerr := io.ReadAll(io.LimitReader(tr, maxFile))
		if rerr != nil {
			return res, fmt.Errorf("restore: %s: %v", e.hdr.Name, rerr)
		}
		if werr := writeNew(opt.Files[e.key], data); werr != nil {
			return res, fmt.Errorf("restore: %w", werr)
		}
		e, err = next()
	}
	if err != nil {
		return res, err
	}
	for _, f := range m.Files {
		if !seen["files/"+f] {
			return res, fmt.Errorf("restore: the archive is truncated or damaged: it lacks files/%s, which its manifest lists", f)
		}
	}

	// The database, in one transaction.
	s, err := opt.Open(ctx)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	dm, ok := s.(store.Dumper)
	if !ok {
		return res, fmt.Errorf("restore: the store (%T) cannot be loaded", s)
	}
	tables := append(slices.Clone(store.BackupTables), store.SequencesTable)
	var repos []store.Repo
	err = dm.Load(ctx, m.SchemaVersion, func(insert func(string, store.Row) error) error {
		at := 0 // tables must come in dependency order
		for ; e != nil && e.kind == kindTable; e, err = next() {
			i := slices.Index(tables, e.key)
			if i < at {
				return fmt.Errorf("restore: %s comes out of order", e.hdr.Name)
			}
			for ; at < i; at++ {
				if !seen[tableEntry(tables[at])] {
					return fmt.Errorf("restore: the archive is truncated or damaged: it lacks %s", tableEntry(tables[at]))
				}
			}
			n, err := loadTable(tr, e, insert, func(row store.Row) error {
				if e.key != "repos" {
					return nil
				}
				r, err := repoOfRow(row)
				repos = append(repos, r)
				return err
			})
			if err != nil {
				return err
			}
			if want, ok := m.Tables[e.key]; !ok || n != want {
				return fmt.Errorf("restore: %s holds %d rows, its manifest %d: the archive is damaged", e.hdr.Name, n, want)
			}
			res.Rows += n
		}
		if err != nil {
			return err
		}
		for _, t := range tables {
			if !seen[tableEntry(t)] {
				return fmt.Errorf("restore: the archive is truncated or damaged: it lacks %s", tableEntry(t))
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if len(repos) != m.Repositories {
		return res, fmt.Errorf("restore: the archive holds %d repositories, its manifest %d: it is damaged", len(repos), m.Repositories)
	}
	report(Progress{Phase: "database", Rows: res.Rows, ReposTotal: len(repos)})

	// The repositories.
	byID := map[int64]bool{}
	for _, r := range repos {
		byID[r.ID] = true
	}
	done := map[int64]bool{}
	var deleted []int64
	for ; e != nil; e, err = next() {
		if e.kind != kindRepo {
			return res, fmt.Errorf("restore: %s comes out of order", e.hdr.Name)
		}
		if !byID[e.id] {
			return res, fmt.Errorf("restore: %s is not a repository of the backup's database", e.hdr.Name)
		}
		if done[e.id] {
			return res, fmt.Errorf("restore: the archive holds repository %d twice", e.id)
		}
		done[e.id] = true
		if e.key == repoDeleted {
			deleted = append(deleted, e.id)
			res.Deleted++
			continue
		}
		repo, err := s.RepoByID(ctx, e.id)
		if err != nil {
			return res, fmt.Errorf("restore: repository %d: %w", e.id, err)
		}
		if err := opt.InitRepo(ctx, repo); err != nil {
			return res, fmt.Errorf("restore: %s: %w", repo.FullName(), err)
		}
		if e.key == repoEmpty {
			res.Empty++
		} else {
			if err := restoreBundle(ctx, tr, e, opt, repo); err != nil {
				return res, err
			}
			res.Repositories++
		}
		report(Progress{Phase: "repositories", Rows: res.Rows, ReposDone: len(done), ReposTotal: len(repos)})
	}
	if err != nil {
		return res, err
	}
	for _, r := range repos {
		if !done[r.ID] {
			return res, fmt.Errorf("restore: the archive lacks repository %d (%s): it is truncated or damaged", r.ID, r.Name)
		}
	}
	// Repositories deleted while the backup ran: their directories were
	// gone before their rows; the rows go now (the state just after the
	// deletion, later than the snapshot, which the bundles are too).
	for _, id := range deleted {
		repo, err := s.RepoByID(ctx, id)
		if err != nil {
			return res, fmt.Errorf("restore: repository %d: %w", id, err)
		}
		if err := s.DeleteRepo(ctx, id, store.AuditEntry{Actor: "system", Action: "repo.delete", Target: repo.FullName(),
			Detail: "deleted while the backup was written"}); err != nil {
			return res, fmt.Errorf("restore: %s: %w", repo.FullName(), err)
		}
	}
	report(Progress{Phase: "done", Rows: res.Rows, ReposDone: len(done), ReposTotal: len(repos)})
	res.Store = s
	return res, nil
}

// loadTable inserts every row of a db/ entry and returns how many.
func loadTable(tr io.Reader, e *entry, insert func(string, store.Row) error, seen func(store.Row) error) (int, error) {
	lr := bufio.NewReaderSize(io.LimitReader(tr, e.hdr.Size), 256<<10)
	n := 0
	for {
		line, err := readLine(lr)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("restore: %s line %d: %v", e.hdr.Name, n+1, err)
		}
		row, err := DecodeRow(line)
		if err != nil {
			return n, fmt.Errorf("restore: %s line %d: %v", e.hdr.Name, n+1, err)
		}
		if err := seen(row); err != nil {
			return n, fmt.Errorf("restore: %s line %d: %v", e.hdr.Name, n+1, err)
		}
		if err := insert(e.key, row); err != nil {
			return n, fmt.Errorf("restore: %s line %d: %w", e.hdr.Name, n+1, err)
		}
		n++
	}
}

// readLine reads one newline-terminated line (without it), at most
// maxRowLine bytes; io.EOF at the end, an error for a last line without a
// newline (a truncated entry).
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxRowLine {
			return nil, errors.New("line too long")
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) == 0:
			return nil, io.EOF
		case errors.Is(err, io.EOF):
			return nil, errors.New("the last line is cut short")
		default:
			return nil, err
		}
	}
}

// restoreBundle fetches every ref of a repos/<id>.bundle entry into the
// repository's new directory and checks that its refs are the bundle's.
func restoreBundle(ctx context.Context, tr io.Reader, e *entry, opt RestoreOptions, repo store.Repo) error {
	tmp, err := os.CreateTemp(opt.TempDir, ".restore-*.bundle")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, tr)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != e.hdr.Size {
		return fmt.Errorf("restore: %s: read %d of %d bytes: %v", e.hdr.Name, n, e.hdr.Size, err)
	}
	dir := opt.RepoDir(repo)
	heads, err := opt.Git(ctx, dir, "bundle", "list-heads", tmp.Name())
	if err != nil {
		return fmt.Errorf("restore: %s is not a valid git bundle: %w", e.hdr.Name, err)
	}
	if _, err := opt.Git(ctx, dir, "fetch", "--quiet", "--no-write-fetch-head", tmp.Name(), "+refs/*:refs/*"); err != nil {
		return fmt.Errorf("restore: %s: %w", repo.FullName(), err)
	}
	var want []string
	for _, l := range strings.Split(heads, "\n") {
		if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[1], "refs/") {
			want = append(want, f[0]+" "+f[1])
		}
	}
	got, err := opt.Git(ctx, dir, "for-each-ref", "--format=%(objectname) %(refname)")
	if err != nil {
		return fmt.Errorf("restore: %s: %w", repo.FullName(), err)
	}
	have := strings.Split(got, "\n")
	sort.Strings(want)
	sort.Strings(have)
	if !slices.Equal(want, have) {
		return fmt.Errorf("restore: %s: its refs after the fetch are not the bundle's (%d of %d)", repo.FullName(), len(have), len(want))
	}
	return nil
}

// writeNew writes a new owner-only file.
func writeNew(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, bytes.NewReader(data)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
