package storetest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"testing"

	"gitserver/store"
)

// NewSealer returns a store.Sealer for the engines' tests: AES-256-GCM
// under a random key, so two calls give two keys that cannot open each
// other's values (gitserver/seal is the real one, with a key file).
func NewSealer(t testing.TB) store.Sealer {
	key := make([]byte, 32)
	rand.Read(key)
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return testSealer{g}
}

type testSealer struct{ aead cipher.AEAD }

func (s testSealer) Seal(p, aad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, p, aad), nil
}

func (s testSealer) Open(c, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(c) < n {
		return nil, errors.New("short")
	}
	return s.aead.Open(nil, c[:n], c[n:], aad)
}
