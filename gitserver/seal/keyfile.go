package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// header is the first line of a key file.
const header = "gitserver secret key v1"

// maxKeyFile bounds what is read of a key file.
const maxKeyFile = 64 << 10

// PreviousPath is the file holding the previous keys of an unfinished
// rotation of the key file at path.
func PreviousPath(path string) string { return path + ".previous" }

// Load reads the key file at path (exactly one key) and, when it exists,
// PreviousPath(path) (one key or more). A missing key file is an error
// that wraps fs.ErrNotExist. A key file readable or writable by group or
// other, or malformed, is refused.
func Load(path string) (*Keyring, error) {
	cur, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	if len(cur) != 1 {
		return nil, fmt.Errorf("secret key file %s holds %d keys, want 1", path, len(cur))
	}
	kr := &Keyring{cur: cur[0]}
	prev, err := readKeyFile(PreviousPath(path))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, k := range prev {
		kr.addPrevious(k)
	}
	return kr, nil
}

// LoadOrCreate is Load, except that a missing key file is created first:
// a new random key, written 0600 to a new temporary file (O_EXCL), fsynced
// and linked into place, so two processes starting at once end up with
// the same key and no reader ever sees a partial file.
func LoadOrCreate(path string) (*Keyring, error) {
	kr, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return kr, err
	}
	if fileExists(path) {
		// Another process linked it in between: read theirs.
		return Load(path)
	}
	kr, err = Generate()
	if err != nil {
		return nil, err
	}
	if err := writeKeyFile(path, false, kr.cur); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// Another process created it first: use that one.
	}
	return Load(path)
}

// Rotate replaces the key file at path with a new key. It first writes
// every key held so far (the current and any previous one) to
// PreviousPath(path), then the new key file, each to a temporary file that
// is fsynced and renamed into place, so that after a crash at any point
// Load returns a keyring that opens every value sealed before. It returns
// the keyring before the rotation (nil when there was no key file) and the
// new one, which seals with the new key and opens with all of them. The
// caller re-seals every stored value with next.Reseal, then calls
// DropPrevious.
func Rotate(path string) (old, next *Keyring, err error) {
	old, err = Load(path)
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && !fileExists(path)) {
		return nil, nil, err
	}
	if err != nil {
		old = nil
	}
	next, err = Generate()
	if err != nil {
		return nil, nil, err
	}
	if old != nil {
		for _, k := range old.prev {
			next.addPrevious(k)
		}
		next.addPrevious(old.cur)
		if err := writeKeyFile(PreviousPath(path), true, next.prev...); err != nil {
			return nil, nil, err
		}
	}
	if err := writeKeyFile(path, old != nil, next.cur); err != nil {
		return nil, nil, err
	}
	return old, next, nil
}

// DropPrevious removes the previous keys of a rotation, once every stored
// value is sealed with the current key.
func DropPrevious(path string) error {
	if err := os.Remove(PreviousPath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove previous secret keys: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// readKeyFile reads and checks a key file. Its errors name the file and a
// line number, never what the file holds.
func readKeyFile(path string) ([]*key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s has mode %04o, but must be readable by its owner only: run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	defer clear(data)
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("secret key file %s is malformed: larger than %d bytes", path, maxKeyFile)
	}
	lines := bytes.Split(data, []byte("\n"))
	if strings.TrimSpace(string(lines[0])) != header {
		return nil, fmt.Errorf("secret key file %s is malformed: its first line is not %q", path, header)
	}
	var keys []*key
	raw := make([]byte, base64.StdEncoding.DecodedLen(4*((KeySize+2)/3)))
	defer clear(raw)
	for i, line := range lines[1:] {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		n, err := 0, errors.New("wrong length")
		if len(line) == base64.StdEncoding.EncodedLen(KeySize) {
			n, err = base64.StdEncoding.Decode(raw, line)
		}
		if err != nil || n != KeySize {
			return nil, fmt.Errorf("secret key file %s is malformed: line %d is not a base64-encoded %d-byte key", path, i+2, KeySize)
		}
		k, err := newKey(raw[:n])
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("secret key file %s is malformed: it holds no key", path)
	}
	return keys, nil
}

// writeKeyFile writes keys to path through a new temporary file (0600,
// O_EXCL, fsynced). replace renames it over path; otherwise it is linked,
// which fails with fs.ErrExist when path exists.
func writeKeyFile(path string, replace bool, keys ...*key) (err error) {
	var b bytes.Buffer
	b.WriteString(header + "\n")
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k.raw) + "\n")
	}
	defer clear(b.Bytes())
	suffix := make([]byte, 8)
	rand.Read(suffix)
	tmp := path + ".tmp-" + hex.EncodeToString(suffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write secret key file: %w", err)
	}
	defer os.Remove(tmp)
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write secret key file %s: %w", tmp, err)
	}
	if replace {
		err = os.Rename(tmp, path)
	} else {
		err = os.Link(tmp, path)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("secret key file %s: %w", path, fs.ErrExist)
		}
		return fmt.Errorf("write secret key file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
