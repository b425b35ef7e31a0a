package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"gitserver/store"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

const (
	version   byte = 1
	idSize         = 8
	nonceSize      = 12
	tagSize        = 16
	headSize       = 1 + idSize
	overhead       = headSize + nonceSize + tagSize
)

// ErrOpen is the error of Open for a value that does not open: sealed by
// another key, for another aad, or altered.
var ErrOpen = errors.New("seal: sealed value does not open (wrong key or aad, or altered)")

// ErrUnknownKey is the error of Open for a value sealed with a key the
// keyring does not hold (e.g. a database restored without its key file).
var ErrUnknownKey = errors.New("seal: sealed with a key this keyring does not hold")

type key struct {
	id   [idSize]byte
	aead cipher.AEAD
	raw  []byte // for writing key files; never printed
}

func newKey(raw []byte) (*key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("seal: a key is %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, errors.New("seal: cannot use key")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, errors.New("seal: cannot use key")
	}
	k := &key{aead: aead, raw: append([]byte(nil), raw...)}
	h := sha256.New()
	h.Write([]byte("gitserver secret key id\x00"))
	h.Write(raw)
	copy(k.id[:], h.Sum(nil))
	return k, nil
}

// Keyring seals with its current key and opens with the current key or
// any previous one (those of an unfinished rotation). It is safe for
// concurrent use and implements store.Sealer.
type Keyring struct {
	cur  *key
	prev []*key
}

var _ store.Sealer = (*Keyring)(nil)

// New returns a keyring whose current key is current (KeySize bytes) and
// which also opens values sealed with the previous keys.
func New(current []byte, previous ...[]byte) (*Keyring, error) {
	cur, err := newKey(current)
	if err != nil {
		return nil, err
	}
	kr := &Keyring{cur: cur}
	for _, p := range previous {
		k, err := newKey(p)
		if err != nil {
			return nil, err
		}
		kr.addPrevious(k)
	}
	return kr, nil
}

// Generate returns a keyring with a new random key and no previous ones.
func Generate() (*Keyring, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("seal: generate key: %w", err)
	}
	return New(raw)
}

// addPrevious adds k unless it is the current key or already held.
func (kr *Keyring) addPrevious(k *key) {
	if kr.find(k.id) != nil {
		return
	}
	kr.prev = append(kr.prev, k)
}

func (kr *Keyring) find(id [idSize]byte) *key {
	if kr.cur != nil && kr.cur.id == id {
		return kr.cur
	}
	for _, k := range kr.prev {
		if k.id == id {
			return k
		}
	}
	return nil
}

// KeyID names the current key (hex of its key id), e.g. for logs. It
// reveals nothing about the key.
func (kr *Keyring) KeyID() string { return hex.EncodeToString(kr.cur.id[:]) }

// Previous returns the number of previous keys the keyring opens with.
func (kr *Keyring) Previous() int { return len(kr.prev) }

// Seal encrypts plaintext for aad under the current key.
func (kr *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	k := kr.cur
	out := make([]byte, headSize+nonceSize, overhead+len(plaintext))
	out[0] = version
	copy(out[1:], k.id[:])
	if _, err := rand.Read(out[headSize:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return k.aead.Seal(out, out[headSize:], plaintext, additional(out[:headSize], aad)), nil
}

// Open decrypts a value Seal made for aad, with the key its key id names:
// ErrUnknownKey when the keyring does not hold that key, ErrOpen when the
// value does not open.
func (kr *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < overhead || sealed[0] != version {
		return nil, ErrOpen
	}
	k := kr.find([idSize]byte(sealed[1:headSize]))
	if k == nil {
		return nil, ErrUnknownKey
	}
	pt, err := k.aead.Open(nil, sealed[headSize:headSize+nonceSize], sealed[headSize+nonceSize:], additional(sealed[:headSize], aad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Reseal opens sealed with whichever key made it and seals it again under
// the current key (a value already under the current key is sealed again
// too, with a new nonce). It is what a rotation applies to every stored
// value.
func (kr *Keyring) Reseal(sealed, aad []byte) ([]byte, error) {
	pt, err := kr.Open(sealed, aad)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return kr.Seal(pt, aad)
}

func additional(head, aad []byte) []byte {
	return append(append(make([]byte, 0, len(head)+len(aad)), head...), aad...)
}
