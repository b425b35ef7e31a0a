package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"gitserver/gitserver/seal"
	"gitserver/store"
)

// secretKeyPath is the key file: --secret-key-file, else <data>/secret.key.
func secretKeyPath(flagValue string, d dataPaths) string {
	if flagValue != "" {
		return flagValue
	}
	return filepath.Join(d.root, "secret.key")
}

// lockSecrets takes the data directory's key lock (<data>/run/secrets.lock):
// shared for a server, which holds it while it runs (it keeps its keys in
// memory), exclusive for a key rotation, which must not run beside a
// server. Closing the file releases it (as does the process's death).
func lockSecrets(d dataPaths, exclusive bool) (*os.File, error) {
	if err := os.MkdirAll(d.run(), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(d.run(), "secrets.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("secret key lock: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("secret key lock: %w", err)
		}
		if exclusive {
			return nil, fmt.Errorf("a gitserver server is running on %s; stop it first (e.g. systemctl stop gitserver), rotate, then start it again (a running server keeps its keys in memory)", d.root)
		}
		return nil, fmt.Errorf("a secret key rotation (gitserver admin secrets rotate) is running on %s; start the server once it has finished", d.root)
	}
	return f, nil
}

// loadSecretKey loads the key file for an admin command, which never
// creates one: when it does not exist, the store gets a Sealer that fails
// (no command that needs a secret can work without the key).
func loadSecretKey(path string) (store.Sealer, error) {
	kr, err := seal.Load(path)
	if err == nil {
		return kr, nil
	}
	if _, serr := os.Lstat(path); errors.Is(err, fs.ErrNotExist) && errors.Is(serr, fs.ErrNotExist) {
		return missingKey{path}, nil
	}
	return nil, err
}

// missingKey is the Sealer of an admin command on a data directory whose
// key file does not exist (yet).
type missingKey struct{ path string }

func (m missingKey) err() error {
	return fmt.Errorf("no secret key file %s: start the server once (it creates it), or set --secret-key-file or GITSERVER_SECRET_KEY_FILE to the server's", m.path)
}
func (m missingKey) Seal(_, _ []byte) ([]byte, error) { return nil, m.err() }
func (m missingKey) Open(_, _ []byte) ([]byte, error) { return nil, m.err() }

// rotateSecrets is `gitserver admin secrets rotate`: a new key file, every
// sealed value in the database re-sealed under it, then the previous keys
// dropped. A failure or crash before the end keeps the previous keys
// (<key file>.previous), so every secret still opens and the command can
// simply run again.
func rotateSecrets(ctx context.Context, stc storeConfig, d dataPaths, keyPath string, stdout io.Writer) error {
	lock, err := lockSecrets(d, true)
	if err != nil {
		return err
	}
	defer lock.Close()
	_, next, err := seal.Rotate(keyPath)
	if err != nil {
		return err
	}
	again := fmt.Sprintf("the previous keys stay in %s, so every secret still opens; run the command again", seal.PreviousPath(keyPath))
	s, err := openDatabase(ctx, stc, d, next)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, again)
	}
	defer s.Close()
	n, err := s.ResealAll(ctx, next.Reseal)
	if err != nil {
		return fmt.Errorf("%w (nothing was re-sealed; %s)", err, again)
	}
	if err := s.Audit(ctx, "cli", "secrets.rotate", "key "+next.KeyID(), fmt.Sprintf("re-sealed %d secrets", n)); err != nil {
		return fmt.Errorf("%w (%s)", err, again)
	}
	if err := seal.DropPrevious(keyPath); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rotated the secret key; re-sealed %d secrets\n", n)
	return nil
}
