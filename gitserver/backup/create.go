package backup

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"gitserver/store"
)

// Git runs git in dir and returns its trimmed stdout (the server's runner,
// gitserver.Git.Output, with its clean environment).
type Git func(ctx context.Context, dir string, args ...string) (string, error)

// File is a data file of the server to back up (Create) or to restore
// (Restore): its name in the archive (files/<Name>) and its path on disk.
type File struct {
	Name string
	Path string
	// Optional files may be missing (Create skips them).
	Optional bool
}

// Progress is reported while a backup or a restore runs.
type Progress struct {
	// Phase is "database", "repositories" or "done".
	Phase      string
	Rows       int
	ReposDone  int
	ReposTotal int
	// Bytes is what was written to the archive (Create) or read from it
	// (Restore) so far.
	Bytes int64
}

// Options configure Create.
type Options struct {
	// Store is the store to dump; it must implement store.Dumper.
	Store store.Store
	// StoreKind names it in the manifest ("sqlite", "postgres").
	StoreKind string
	Git       Git
	// RepoDir is the directory of a repository (gitserver.Repos.Dir).
	RepoDir func(store.Repo) string
	// Files are the data files to include (the secret key, SSH host
	// keys), read once the database snapshot is taken.
	Files []File
	// TempDir holds the database's rows and one repository's bundle at a
	// time while they are written (default os.TempDir()); its files are
	// owner-only and removed before Create returns.
	TempDir string
	// Version is the writing gitserver's version, for the manifest.
	Version string
	// Progress, when set, is called after the database and after each
	// repository.
	Progress func(Progress)
}

// countingWriter counts what goes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type spool struct {
	f    *os.File
	w    *bufio.Writer
	rows int
}

// Create writes a backup of opt.Store and its repositories to w: first
// the database snapshot (store.Dumper.Dump, one read transaction), then
// each repository of that snapshot, bundled after it (see the package
// comment). It works while the server runs. The archive holds password
// hashes, sealed secrets and the key that opens them: it is as sensitive
// as the data directory.
func Create(ctx context.Context, w io.Writer, opt Options) (Manifest, error) {
	dm, ok := opt.Store.(store.Dumper)
	if !ok {
		return Manifest{}, fmt.Errorf("backup: the store (%T) cannot be dumped", opt.Store)
	}
	tmp, err := os.MkdirTemp(opt.TempDir, ".gitserver-backup-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	report := func(p Progress) {
		if opt.Progress != nil {
			opt.Progress(p)
		}
	}

	// 1. The database, at one point in time: every row into a spool file
	// per table (the tar needs each entry's size up front).
	tables := append(slices.Clone(store.BackupTables), store.SequencesTable)
	spools := map[string]*spool{}
	for i, t := range tables {
		f, err := os.OpenFile(filepath.Join(tmp, strconv.Itoa(i)+".jsonl"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return Manifest{}, fmt.Errorf("backup: %w", err)
		}
		defer f.Close()
		spools[t] = &spool{f: f, w: bufio.NewWriterSize(f, 256<<10)}
	}
	var repos []store.Repo
	rows := 0
	createdAt := opt.Store.Now().UTC()
	version, err := dm.Dump(ctx, func(table string, row store.Row) error {
		sp, ok := spools[table]
		if !ok {
			return fmt.Errorf("backup: the store dumped an unknown table %q", table)
		}
		line, err := EncodeRow(row)
		if err != nil {
			return fmt.Errorf("backup: table %s: %w", table, err)
		}
		sp.w.Write(line)
		if err := sp.w.WriteByte('\n'); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		sp.rows++
		rows++
		if table == "repos" {
			r, err := repoOfRow(row)
			if err != nil {
				return err
			}
			repos = append(repos, r)
		}
		return nil
	})
	if err != nil {
		return Manifest{}, err
	}
	for _, sp := range spools {
		if err := sp.w.Flush(); err != nil {
			return Manifest{}, fmt.Errorf("backup: %w", err)
		}
	}
	m := Manifest{Format: Format, Version: FormatVersion, SchemaVersion: version, CreatedAt: createdAt,
		Gitserver: opt.Version, Store: opt.StoreKind, Tables: map[string]int{}, Repositories: len(repos), Files: []string{}}
	for t, sp := range spools {
		m.Tables[t] = sp.rows
	}
	// The data files: read now, after the snapshot (a key file rotated
	// meanwhile is refused by the caller's lock).
	type fileData struct {
		name string
		data []byte
	}
	var files []fileData
	for _, f := range opt.Files {
		data, err := os.ReadFile(f.Path)
		if errors.Is(err, fs.ErrNotExist) && f.Optional {
			continue
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("backup: %w", err)
		}
		files = append(files, fileData{f.Name, data})
		m.Files = append(m.Files, f.Name)
	}

	cw := &countingWriter{w: w}
	tw := tar.NewWriter(cw)
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	if err := addBytes(tw, manifestName, manifest, createdAt); err != nil {
		return Manifest{}, err
	}
	for _, f := range files {
		if err := addBytes(tw, "files/"+f.name, f.data, createdAt); err != nil {
			return Manifest{}, err
		}
	}
	for _, t := range tables {
		if err := addFile(tw, tableEntry(t), spools[t].f, createdAt); err != nil {
			return Manifest{}, err
		}
		spools[t].f.Close()
	}
	report(Progress{Phase: "database", Rows: rows, ReposTotal: len(repos), Bytes: cw.n})

	// 2. The repositories of the snapshot, each bundled now (its refs are
	// as new as the snapshot or newer).
	for i, r := range repos {
		if err := backupRepo(ctx, tw, opt, r, tmp, createdAt); err != nil {
			return Manifest{}, err
		}
		report(Progress{Phase: "repositories", Rows: rows, ReposDone: i + 1, ReposTotal: len(repos), Bytes: cw.n})
	}
	if err := tw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	report(Progress{Phase: "done", Rows: rows, ReposDone: len(repos), ReposTotal: len(repos), Bytes: cw.n})
	return m, nil
}

// missingDirWait bounds how long Create waits for a repository's
// directory to appear or its row to go.
var missingDirWait = 10 * time.Second

// repoOfRow reads what a backup needs of a repos row.
func repoOfRow(row store.Row) (store.Repo, error) {
	id, ok1 := row["id"].(int64)
	name, ok2 := row["name"].(string)
	branch, ok3 := row["default_branch"].(string)
	owner, ok4 := row["owner_id"].(int64)
	if !ok1 || !ok2 || !ok3 || !ok4 || id <= 0 {
		return store.Repo{}, errors.New("backup: a repos row without id, owner_id, name or default_branch")
	}
	return store.Repo{ID: id, OwnerID: owner, Name: name, DefaultBranch: branch}, nil
}

// backupRepo adds repository r's entry: its bundle of every ref, or an
// empty or deleted marker.
func backupRepo(ctx context.Context, tw *tar.Writer, opt Options, r store.Repo, tmp string, at time.Time) error {
	dir := opt.RepoDir(r)
	gone := func() (bool, error) {
		if _, err := opt.Store.RepoByID(ctx, r.ID); errors.Is(err, store.ErrNotFound) {
			return true, nil
		} else if err != nil {
			return false, fmt.Errorf("backup: repository %d: %w", r.ID, err)
		}
		return false, nil
	}
	// A directory missing while the row exists is a repository being
	// deleted (its directory goes to the trash first, then its rows) or
	// being created (its directory comes after its row): wait for either
	// to finish. One still without a directory then has never had one.
	for wait := time.Duration(0); ; wait += 50 * time.Millisecond {
		if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
			break
		}
		deleted, err := gone()
		if err != nil {
			return err
		}
		if deleted {
			return addBytes(tw, repoEntry(r.ID, repoDeleted), nil, at)
		}
		if wait >= missingDirWait {
			return addBytes(tw, repoEntry(r.ID, repoEmpty), nil, at)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	ref, err := opt.Git(ctx, dir, "for-each-ref", "--count=1", "--format=%(refname)")
	if err == nil && ref == "" {
		return addBytes(tw, repoEntry(r.ID, repoEmpty), nil, at)
	}
	bundle := filepath.Join(tmp, strconv.FormatInt(r.ID, 10)+".bundle")
	defer os.Remove(bundle)
	if err == nil {
		// git reads every ref once, then packs what they reach: objects
		// are never removed while reachable, so a push or a repack running
		// meanwhile cannot tear the bundle.
		_, err = opt.Git(ctx, dir, "bundle", "create", "--quiet", bundle, "--all")
	}
	if err != nil {
		if deleted, gerr := gone(); gerr == nil && deleted {
			return addBytes(tw, repoEntry(r.ID, repoDeleted), nil, at)
		}
		return fmt.Errorf("backup: repository %d (%s): %w", r.ID, r.Name, err)
	}
	f, err := os.Open(bundle)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	return addFile(tw, repoEntry(r.ID, repoBundle), f, at)
}

func addBytes(tw *tar.Writer, name string, data []byte, at time.Time) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o600, ModTime: at}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// addFile adds the whole of f (from its start) as entry name.
func addFile(tw *tar.Writer, name string, f *os.File, at time.Time) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: fi.Size(), Mode: 0o600, ModTime: at}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if n, err := io.Copy(tw, f); err != nil || n != fi.Size() {
		return fmt.Errorf("backup: %s: wrote %d of %d bytes: %v", name, n, fi.Size(), err)
	}
	return nil
}
