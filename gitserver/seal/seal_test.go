package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func mustGenerate(t *testing.T) *Keyring {
	t.Helper()
	kr, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestSealOpen(t *testing.T) {
	kr := mustGenerate(t)
	aad := []byte("mirrors.private_key:42")
	for _, pt := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("secret"), 1000)} {
		sealed, err := kr.Seal(pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != overhead+len(pt) || sealed[0] != version {
			t.Fatalf("sealed value of %d bytes: %d bytes, version %d", len(pt), len(sealed), sealed[0])
		}
		if len(pt) > 8 && bytes.Contains(sealed, pt[:8]) {
			t.Fatal("plaintext visible in the sealed value")
		}
		got, err := kr.Open(sealed, aad)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open = %q, %v", got, err)
		}
		again, _ := kr.Seal(pt, aad)
		if bytes.Equal(again, sealed) {
			t.Fatal("two seals of one value are equal: nonce reused")
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	kr := mustGenerate(t)
	aad := []byte("mirrors.private_key:42")
	sealed, err := kr.Seal([]byte("hunter2"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Open(sealed, []byte("mirrors.private_key:43")); !errors.Is(err, ErrOpen) {
		t.Errorf("other aad: %v, want ErrOpen", err)
	}
	if _, err := kr.Open(sealed, nil); !errors.Is(err, ErrOpen) {
		t.Errorf("no aad: %v, want ErrOpen", err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		_, err := kr.Open(bad, aad)
		switch {
		case i >= 1 && i < headSize: // the key id: now names no key held
			if !errors.Is(err, ErrUnknownKey) {
				t.Errorf("byte %d flipped: %v, want ErrUnknownKey", i, err)
			}
		case !errors.Is(err, ErrOpen):
			t.Errorf("byte %d flipped: %v, want ErrOpen", i, err)
		}
	}
	for _, n := range []int{0, 1, overhead - 1} {
		if _, err := kr.Open(sealed[:n], aad); !errors.Is(err, ErrOpen) {
			t.Errorf("truncated to %d bytes: %v, want ErrOpen", n, err)
		}
	}
	other := mustGenerate(t)
	if _, err := other.Open(sealed, aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("other key: %v, want ErrUnknownKey", err)
	}
	// Another key that claims the first key's id still does not open it.
	forged := bytes.Clone(sealed)
	copy(forged[1:headSize], other.cur.id[:])
	if _, err := other.Open(forged, aad); !errors.Is(err, ErrOpen) {
		t.Errorf("other key under a copied id: %v, want ErrOpen", err)
	}
}

func TestKeyIDRoutesToPreviousKey(t *testing.T) {
	oldKR := mustGenerate(t)
	aad := []byte("t.c:1")
	sealedOld, _ := oldKR.Seal([]byte("old secret"), aad)
	next, err := New(bytes.Repeat([]byte{7}, KeySize), oldKR.cur.raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := next.Open(sealedOld, aad); err != nil || string(got) != "old secret" {
		t.Fatalf("previous key: %q, %v", got, err)
	}
	resealed, err := next.Reseal(sealedOld, aad)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resealed[1:headSize], next.cur.id[:]) {
		t.Fatal("Reseal did not seal with the current key")
	}
	if _, err := oldKR.Open(resealed, aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old keyring opens the re-sealed value: %v", err)
	}
	if got, err := next.Open(resealed, aad); err != nil || string(got) != "old secret" {
		t.Fatalf("re-sealed: %q, %v", got, err)
	}
	if _, err := next.Reseal(sealedOld, []byte("t.c:2")); !errors.Is(err, ErrOpen) {
		t.Errorf("Reseal under another aad: %v", err)
	}
}

func TestKeyFileCreatedPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "secret.key")
	kr, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), header+"\n") || strings.Count(string(data), "\n") != 2 {
		t.Fatalf("key file format:\n%s", data)
	}
	again, err := LoadOrCreate(path)
	if err != nil || again.KeyID() != kr.KeyID() {
		t.Fatalf("second LoadOrCreate: %v, key %s then %s", err, kr.KeyID(), again.KeyID())
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("left temporary files: %v", ents)
	}
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			kr, err := LoadOrCreate(path)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = kr.KeyID()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent starts got different keys: %v", ids)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	good := header + "\n" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xAB}, KeySize)) + "\n"
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	if _, err := Load(write("ok", good, 0o400)); err != nil {
		t.Fatalf("0400 key file (systemd credential): %v", err)
	}
	p := write("open", good, 0o644)
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+p) || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("0644 key file: %v", err)
	}
	if _, err := LoadOrCreate(p); err == nil {
		t.Fatal("LoadOrCreate accepted a 0644 key file")
	}
	if _, err := Load(write("grp", good, 0o640)); err == nil {
		t.Fatal("0640 key file accepted")
	}
	secretLine := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xCD}, KeySize-1))
	for name, content := range map[string]string{
		"empty":     "",
		"noheader":  base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xCD}, KeySize)) + "\n",
		"nokey":     header + "\n",
		"short":     header + "\n" + secretLine + "\n",
		"long":      header + "\n" + secretLine + secretLine + "\n",
		"notbase64": header + "\n" + strings.Repeat("!", 44) + "\n",
		"twokeys":   good + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xCD}, KeySize)) + "\n",
	} {
		_, err := Load(write(name, content, 0o600))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), secretLine) || strings.Contains(err.Error(), "zc3N") {
			t.Errorf("%s: error shows the file's content: %v", name, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing key file: %v, want fs.ErrNotExist", err)
	}
}

// TestErrorsRevealNoKey: no error of the package, whatever fails, contains
// the key (in any encoding), the plaintext or the sealed value.
func TestErrorsRevealNoKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.key")
	kr, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	raw := kr.cur.raw
	plaintext := []byte("plaintext-token-value")
	sealed, _ := kr.Seal(plaintext, []byte("a"))
	forbidden := []string{
		base64.StdEncoding.EncodeToString(raw), string(raw), strings.ToLower(string(raw)),
		string(plaintext), string(sealed), base64.StdEncoding.EncodeToString(sealed),
	}
	forbidden = append(forbidden, hex.EncodeToString(raw), hex.EncodeToString(sealed))
	var errs []error
	_, err = kr.Open(sealed, []byte("b"))
	errs = append(errs, err)
	_, err = mustGenerate(t).Open(sealed, []byte("a"))
	errs = append(errs, err)
	_, err = kr.Reseal(sealed[:len(sealed)-1], []byte("a"))
	errs = append(errs, err)
	_, err = New(raw[:31])
	errs = append(errs, err)
	os.Chmod(path, 0o644)
	_, err = Load(path)
	errs = append(errs, err)
	data, _ := os.ReadFile(path)
	os.WriteFile(path, append(data, data...), 0o600) // two headers: malformed
	os.Chmod(path, 0o600)
	_, err = Load(path)
	errs = append(errs, err)
	os.WriteFile(path, append([]byte(header+"\n"), data[len(header)+1:len(data)-2]...), 0o600)
	_, err = Load(path)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("a failure returned no error")
		}
		for _, f := range forbidden {
			if f != "" && strings.Contains(err.Error(), f) {
				t.Errorf("error reveals a secret: %v", err)
			}
		}
		// No 8-character run of the key's base64 either.
		b64 := base64.StdEncoding.EncodeToString(raw)
		for i := 0; i+8 <= len(b64); i++ {
			if strings.Contains(err.Error(), b64[i:i+8]) {
				t.Errorf("error contains part of the key: %v", err)
				break
			}
		}
	}
}

func TestRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	k1, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("mirrors.private_key:1")
	s1, _ := k1.Seal([]byte("one"), aad)
	before, _ := os.ReadFile(path)

	old, next, err := Rotate(path)
	if err != nil {
		t.Fatal(err)
	}
	if old.KeyID() != k1.KeyID() || next.KeyID() == k1.KeyID() || next.Previous() != 1 {
		t.Fatalf("Rotate: old %s next %s (%d previous), want old %s", old.KeyID(), next.KeyID(), next.Previous(), k1.KeyID())
	}
	after, _ := os.ReadFile(path)
	if bytes.Equal(before, after) {
		t.Fatal("key file unchanged")
	}
	for _, p := range []string{path, PreviousPath(path)} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v", p, err)
		}
	}
	// A crash here (before re-sealing): a new start opens both.
	loaded, err := LoadOrCreate(path)
	if err != nil || loaded.KeyID() != next.KeyID() || loaded.Previous() != 1 {
		t.Fatalf("load mid-rotation: %v", err)
	}
	if got, err := loaded.Open(s1, aad); err != nil || string(got) != "one" {
		t.Fatalf("old value mid-rotation: %q, %v", got, err)
	}
	s2, _ := loaded.Seal([]byte("two"), aad)

	// An interrupted rotation rotated again keeps every key.
	_, third, err := Rotate(path)
	if err != nil {
		t.Fatal(err)
	}
	if third.Previous() != 2 {
		t.Fatalf("second rotation holds %d previous keys, want 2", third.Previous())
	}
	r1, err1 := third.Reseal(s1, aad)
	r2, err2 := third.Reseal(s2, aad)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if err := DropPrevious(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(PreviousPath(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("previous keys still there: %v", err)
	}
	final, err := Load(path)
	if err != nil || final.Previous() != 0 || final.KeyID() != third.KeyID() {
		t.Fatalf("after the rotation: %v", err)
	}
	for _, r := range [][]byte{r1, r2} {
		if _, err := final.Open(r, aad); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := final.Open(s1, aad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a value under the dropped key: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("files left: %v", ents)
	}
}

func TestRotateWithoutKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	old, next, err := Rotate(path)
	if err != nil || old != nil || next.Previous() != 0 {
		t.Fatalf("Rotate with no key file: %v %v", old, err)
	}
	if kr, err := Load(path); err != nil || kr.KeyID() != next.KeyID() {
		t.Fatal(err)
	}
}
