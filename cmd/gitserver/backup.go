package main

import (
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gitserver/gitserver"
	"gitserver/gitserver/backup"
	"gitserver/gitserver/seal"
	"gitserver/hooks"
	"gitserver/store"
	"gitserver/store/sqlite"
)

const backupUsage = `usage:
  gitserver admin backup --out FILE [--without-secret-key] [--data DIR] [--config FILE]
        [--database-url URL] [--repos-dir DIR]
        a consistent snapshot of the database and every repository, while the server runs;
        FILE ending in .gz or .tgz is gzip-compressed. It holds the secret key (unless
        --without-secret-key): keep it as safe as the data directory.
  gitserver admin restore --from FILE --data DIR [--secret-key-file FILE] [--config FILE]
        [--database-url URL] [--repos-dir DIR]
        recreate a server from a backup into a new, empty data directory; a backup made
        --without-secret-key needs the key file (--secret-key-file) to exist
`

// backupCommand reports whether args are `backup ...` or `restore ...`
// (the first positional argument), which have flags of their own.
func backupCommand(args []string) (string, bool) {
	var f backupFlags
	pos, err := parseInterspersed(f.set(), args)
	if err != nil {
		// A flag of neither command: only a literal first word decides.
		if len(args) > 0 && (args[0] == "backup" || args[0] == "restore") {
			return args[0], true
		}
		return "", false
	}
	if len(pos) > 0 && (pos[0] == "backup" || pos[0] == "restore") {
		return pos[0], true
	}
	return "", false
}

type backupFlags struct {
	data, config, secretKeyFile, out, from string
	databaseURL, reposDir                  string
	withoutKey                             bool
}

func (f *backupFlags) set() *flag.FlagSet {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.data, "data", "", "data directory")
	fs.StringVar(&f.config, "config", "", "config file")
	fs.StringVar(&f.secretKeyFile, "secret-key-file", "", "secret key file")
	fs.StringVar(&f.databaseURL, "database-url", "", "PostgreSQL database URL")
	fs.StringVar(&f.reposDir, "repos-dir", "", "repository root")
	fs.StringVar(&f.out, "out", "", "backup file to write")
	fs.StringVar(&f.from, "from", "", "backup file to restore")
	fs.BoolVar(&f.withoutKey, "without-secret-key", false, "leave the secret key out of the backup")
	return fs
}

// adminBackup runs `gitserver admin backup` and `restore`.
func adminBackup(cmd string, args []string, stdout, stderr io.Writer) error {
	var f backupFlags
	fs := f.set()
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp
	}
	if err != nil {
		return usageError{err.Error() + "\n" + backupUsage}
	}
	if len(pos) > 1 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[1])}
	}
	// The same settings as serve: flag, then environment, then the
	// config file.
	var serveArgs []string
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "data", "config", "secret-key-file", "database-url", "repos-dir":
			serveArgs = append(serveArgs, "--"+fl.Name+"="+fl.Value.String())
		}
	})
	c, err := loadConfig(serveArgs, io.Discard)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	ctx := context.Background()
	switch cmd {
	case "backup":
		if f.out == "" || f.from != "" {
			return usageError{"backup needs --out FILE (and no --from)"}
		}
		return runBackup(ctx, c, f.out, f.withoutKey, stdout, stderr)
	default:
		if f.from == "" || f.out != "" || f.withoutKey {
			return usageError{"restore needs --from FILE (and no --out or --without-secret-key)"}
		}
		return runRestore(ctx, c, f.from, stdout, stderr)
	}
}

// backupFiles are the data files a backup holds besides the database and
// the repositories: the secret key (sealed secrets open with nothing else;
// see docs/decisions.md) and the SSH host keys (clients keep trusting the
// restored server).
func backupFiles(d dataPaths, keyPath string, withKey bool) []backup.File {
	var files []backup.File
	if withKey {
		files = append(files,
			backup.File{Name: keyFileEntry, Path: keyPath, Optional: true},
			backup.File{Name: keyFileEntry + ".previous", Path: seal.PreviousPath(keyPath), Optional: true})
	}
	for _, n := range gitserver.HostKeyFiles {
		files = append(files, backup.File{Name: n, Path: filepath.Join(d.root, n), Optional: true})
	}
	return files
}

// keyFileEntry is the secret key's name in a backup (files/secret.key).
const keyFileEntry = "secret.key"

// progress prints a backup's or restore's progress on stderr, at most once
// a second besides its phases' ends.
func progress(w io.Writer, what string) func(backup.Progress) {
	var last time.Time
	return func(p backup.Progress) {
		if p.Phase == "repositories" && p.ReposDone < p.ReposTotal && time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		switch p.Phase {
		case "database":
			fmt.Fprintf(w, "%s: database: %d rows; %d repositories to go (%s)\n", what, p.Rows, p.ReposTotal, mib(p.Bytes))
		case "repositories":
			fmt.Fprintf(w, "%s: repositories %d/%d (%s)\n", what, p.ReposDone, p.ReposTotal, mib(p.Bytes))
		}
	}
}

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func runBackup(ctx context.Context, c config, out string, withoutKey bool, stdout, stderr io.Writer) error {
	if fi, err := os.Stat(c.Data); err != nil || !fi.IsDir() {
		return fmt.Errorf("data directory %s not found (set --data, GITSERVER_DATA or data in --config)", c.Data)
	}
	abs, err := filepath.Abs(c.Data)
	if err != nil {
		return err
	}
	d := dataPaths{root: abs}
	if c.ReposDir != "" {
		if d.reposDir, err = filepath.Abs(c.ReposDir); err != nil {
			return err
		}
	}
	stc := storeConfig{DatabaseURL: c.DatabaseURL, MaxConns: 2}
	if !storeExists(stc, d) {
		return fmt.Errorf("data directory %s holds no gitserver database", c.Data)
	}
	// Without the server's repository root every repository would be
	// written as one without refs (its directory is not found).
	if fi, err := os.Stat(d.repos()); err != nil || !fi.IsDir() {
		return fmt.Errorf("repository directory %s not found: give the server's own (--repos-dir, GITSERVER_REPOS_DIR or repos-dir in --config)", d.repos())
	}
	// The shared key lock keeps a key rotation (which needs the server
	// stopped) away while the backup copies the key and the sealed rows.
	lock, err := lockSecrets(d, false)
	if err != nil {
		return err
	}
	defer lock.Close()
	keyPath := secretKeyPath(c.SecretKeyFile, d)
	sealer, err := loadSecretKey(keyPath)
	if err != nil {
		return err
	}
	gitPath, _, err := gitserver.FindGit()
	if err != nil {
		return err
	}
	s, err := openDatabase(ctx, stc, d, sealer)
	if err != nil {
		return err
	}
	defer s.Close()
	git := &gitserver.Git{Path: gitPath, HooksDir: d.hooks(), Home: d.root}
	repos := &gitserver.Repos{Root: d.repos(), Git: git}

	// Written to a temporary file beside FILE, owner-only, renamed into
	// place once complete: a failed backup leaves no partial FILE.
	outAbs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(outAbs), "."+filepath.Base(outAbs)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	var w io.Writer = tmp
	var zw *gzip.Writer
	if strings.HasSuffix(out, ".gz") || strings.HasSuffix(out, ".tgz") {
		zw = gzip.NewWriter(tmp)
		w = zw
	}
	m, err := backup.Create(ctx, w, backup.Options{
		Store: s, StoreKind: stc.kind(), Git: git.Output, RepoDir: repos.Dir,
		Files: backupFiles(d, keyPath, !withoutKey), TempDir: filepath.Dir(outAbs), Version: version,
		Progress: progress(stderr, "backup"),
	})
	if err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return fmt.Errorf("backup file: %w", err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	if err := os.Rename(tmp.Name(), outAbs); err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	rows := 0
	for _, n := range m.Tables {
		rows += n
	}
	fmt.Fprintf(stdout, "wrote %s (%s): %d repositories, %d database rows, snapshot of %s\n",
		out, mib(fi.Size()), m.Repositories, rows, m.CreatedAt.Format(time.RFC3339))
	if withoutKey {
		fmt.Fprintf(stdout, "it holds password hashes and every repository (0600), but not the secret key: keep %s elsewhere, a restore needs it (--secret-key-file)\n", keyPath)
	} else {
		fmt.Fprintf(stdout, "it holds the secret key, password hashes and every repository: keep it as safe as the data directory (it is 0600)\n")
	}
	return nil
}

func runRestore(ctx context.Context, c config, from string, stdout, stderr io.Writer) (err error) {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	defer in.Close()
	root, err := filepath.Abs(c.Data)
	if err != nil {
		return err
	}
	// A new data directory: missing, or empty. Nothing is touched
	// otherwise.
	created := false
	switch entries, err := os.ReadDir(root); {
	case errors.Is(err, os.ErrNotExist):
		created = true
	case err != nil:
		return fmt.Errorf("data directory: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("data directory %s is not empty; restore into a new (missing or empty) directory, nothing was changed", c.Data)
	}
	d := dataPaths{root: root}
	if c.ReposDir != "" {
		if d.reposDir, err = filepath.Abs(c.ReposDir); err != nil {
			return err
		}
	}
	// A repository root of its own (--repos-dir) must be new too: the
	// bundles are fetched with +refs/*:refs/* into any repository
	// directory found there, which would move the refs of a live one.
	reposCreated, ownRepos := false, d.reposDir != "" && !strings.HasPrefix(d.reposDir+string(filepath.Separator), root+string(filepath.Separator))
	if ownRepos {
		switch entries, err := os.ReadDir(d.reposDir); {
		case errors.Is(err, os.ErrNotExist):
			reposCreated = true
		case err != nil:
			return fmt.Errorf("repository directory: %w", err)
		case len(entries) > 0:
			return fmt.Errorf("repository directory %s is not empty; restore into a new (missing or empty) directory, nothing was changed", c.ReposDir)
		}
	}
	stc := storeConfig{DatabaseURL: c.DatabaseURL, MaxConns: 2}
	keyPath := secretKeyPath(c.SecretKeyFile, d)
	wroteKey := false // the key came from the backup (else it must exist)
	gitPath, _, err := gitserver.FindGit()
	if err != nil {
		return err
	}
	git := &gitserver.Git{Path: gitPath, HooksDir: d.hooks(), Home: d.root}
	repos := &gitserver.Repos{Root: d.repos(), Git: git}
	files := map[string]string{}
	for _, f := range backupFiles(d, keyPath, true) {
		files[f.Name] = f.Path
	}
	var s store.Store
	var loaded *loadTracker
	defer func() {
		if err == nil {
			return
		}
		// Take back what this restore created.
		if u, ok := s.(interface{ Unload(context.Context) error }); ok && loaded != nil && loaded.loaded {
			// A database of its own (PostgreSQL) outlives the data
			// directory: its rows go, or the next attempt is refused.
			if uerr := u.Unload(context.Background()); uerr != nil {
				err = fmt.Errorf("%w; the restored rows could not be removed (%v): restore into another new database", err, uerr)
			}
		}
		if s != nil {
			s.Close()
		}
		emptyDir(root, created)
		if ownRepos {
			emptyDir(d.reposDir, reposCreated)
		}
		if wroteKey && !strings.HasPrefix(keyPath, root+string(filepath.Separator)) {
			os.Remove(keyPath)
			os.Remove(seal.PreviousPath(keyPath))
		}
	}()
	var sealer store.Sealer
	res, err := backup.Restore(ctx, in, backup.RestoreOptions{
		SchemaVersion: sqlite.SchemaVersion(),
		CheckManifest: func(m backup.Manifest) error {
			_, statErr := os.Lstat(keyPath)
			switch has := slices.Contains(m.Files, keyFileEntry); {
			case has && statErr == nil:
				return fmt.Errorf("secret key file %s exists already, and the backup holds its own; restore into a new data directory with no key file (nothing was changed)", keyPath)
			case !has && statErr != nil:
				return fmt.Errorf("the backup was made --without-secret-key: give its key file with --secret-key-file (or GITSERVER_SECRET_KEY_FILE); %s: %v (nothing was changed)", keyPath, statErr)
			}
			wroteKey = slices.Contains(m.Files, keyFileEntry)
			return nil
		},
		Open: func(ctx context.Context) (store.Store, error) {
			for _, dir := range []string{d.root, d.repos()} {
				if err := os.MkdirAll(dir, 0o750); err != nil {
					return nil, err
				}
			}
			var err error
			if sealer, err = loadSecretKey(keyPath); err != nil {
				return nil, err
			}
			db, err := openDatabase(ctx, stc, d, sealer)
			if err != nil {
				return nil, err
			}
			s = db
			loaded = &loadTracker{Store: db}
			return loaded, nil
		},
		Git: git.Output, InitRepo: repos.Init, RepoDir: repos.Dir, Files: files, TempDir: d.root,
		Progress: progress(stderr, "restore"),
	})
	if err != nil {
		return err
	}
	// The key must open every sealed secret of the backup (a wrong
	// --secret-key-file would lose them all): each is opened, and written
	// back as it was.
	if _, err := s.ResealAll(ctx, func(sealed, aad []byte) ([]byte, error) {
		if _, err := sealer.Open(sealed, aad); err != nil {
			return nil, errors.New("the secret key does not open it")
		}
		return sealed, nil
	}); err != nil {
		return fmt.Errorf("%w: restore with the key file of the server the backup was made on (--secret-key-file)", err)
	}
	// What the server does at every start, now: published commits pinned,
	// and a build queued for every default-branch head the database
	// snapshot had not seen built (a push acknowledged after the snapshot,
	// whose bundle is newer than its rows).
	if err := repos.EnsureAll(ctx, s); err != nil {
		return fmt.Errorf("check restored repositories: %w", err)
	}
	trigger := &hooks.Trigger{Store: s, Git: git.Output, RepoDir: repos.Dir, Log: slog.New(slog.DiscardHandler)}
	queued, err := trigger.ReconcileAll(ctx)
	if err != nil {
		return fmt.Errorf("queue builds owed: %w", err)
	}
	if err := s.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s: %d repositories (%d without refs), %d database rows, snapshot of %s\n",
		from, c.Data, res.Repositories+res.Empty, res.Empty, res.Rows, res.Manifest.CreatedAt.Format(time.RFC3339))
	if res.Deleted > 0 {
		fmt.Fprintf(stdout, "%d repositories deleted while the backup was written were left out\n", res.Deleted)
	}
	if queued > 0 {
		fmt.Fprintf(stdout, "queued %d builds for pushes newer than the database snapshot\n", queued)
	}
	if strings.HasPrefix(keyPath, root+string(filepath.Separator)) {
		fmt.Fprintf(stdout, "start it with: gitserver serve --data %s\n", c.Data)
	} else {
		fmt.Fprintf(stdout, "start it with: gitserver serve --data %s --secret-key-file %s\n", c.Data, keyPath)
	}
	return nil
}

// emptyDir removes what a failed restore wrote into dir: dir itself when
// the restore created it, else everything in it (it was empty).
func emptyDir(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// loadTracker is the store a restore loads into, noting whether its rows
// were committed (store.Dumper.Load returned nil). Its Close does
// nothing: backup.Restore closes the store it fails with, and runRestore
// still needs it then to take the rows back.
type loadTracker struct {
	store.Store
	loaded bool
}

func (l *loadTracker) Close() error { return nil }

func (l *loadTracker) Dump(ctx context.Context, fn func(string, store.Row) error) (int, error) {
	return l.Store.(store.Dumper).Dump(ctx, fn)
}

func (l *loadTracker) Load(ctx context.Context, v int, rows func(insert func(string, store.Row) error) error) error {
	err := l.Store.(store.Dumper).Load(ctx, v, rows)
	l.loaded = err == nil
	return err
}
