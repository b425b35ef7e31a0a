package store

import (
	"crypto/rsa"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Key is an SSH public key: either a user's key (UserID set) or a deploy
// key of one repository (RepoID set).
type Key struct {
	ID          int64
	UserID      int64 // 0 for deploy keys
	RepoID      int64 // 0 for user keys
	Title       string
	Fingerprint string // SHA256:... as printed by ssh-keygen -l
	PublicKey   string // authorized_keys form, without comment
	ReadOnly    bool   // deploy keys only
	CreatedAt   time.Time
}

// NewKey describes a key to add. Exactly one of UserID and RepoID is set.
// The caller parses and normalises the key text.
type NewKey struct {
	UserID      int64
	RepoID      int64
	Title       string
	Fingerprint string
	PublicKey   string
	ReadOnly    bool
}

// MaxKeyTitle is the longest key title accepted.
const MaxKeyTitle = 200

// Normalize validates nk (ErrInvalid) and fills in defaults: the title
// "key", and ReadOnly false for a user's key.
func (nk *NewKey) Normalize() error {
	if (nk.UserID == 0) == (nk.RepoID == 0) {
		return fmt.Errorf("%w: a key belongs to a user or to a repository", ErrInvalid)
	}
	if nk.Title == "" {
		nk.Title = "key"
	}
	if len(nk.Title) > MaxKeyTitle {
		return fmt.Errorf("%w: title longer than 200 characters", ErrInvalid)
	}
	if nk.UserID != 0 {
		nk.ReadOnly = false
	}
	return nil
}

// ParsedKey is a validated SSH public key.
type ParsedKey struct {
	Fingerprint string // SHA256:...
	PublicKey   string // "<type> <base64>", comment dropped
	Comment     string
}

// ParseSSHKey validates one public key in authorized_keys form
// ("ssh-ed25519 AAAA... comment"). Options and multiple keys are refused.
func ParseSSHKey(text string) (ParsedKey, error) {
	text = strings.TrimSpace(text)
	if text == "" || len(text) > 16<<10 || strings.ContainsAny(text, "\r\n") {
		return ParsedKey{}, fmt.Errorf("%w: key must be one line in authorized_keys form, e.g. \"ssh-ed25519 AAAA... comment\"", ErrInvalid)
	}
	pk, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return ParsedKey{}, fmt.Errorf("%w: not an SSH public key (expected e.g. \"ssh-ed25519 AAAA... comment\")", ErrInvalid)
	}
	if len(options) > 0 || len(strings.TrimSpace(string(rest))) > 0 {
		return ParsedKey{}, fmt.Errorf("%w: key options and multiple keys are not accepted", ErrInvalid)
	}
	if pk.Type() == "ssh-dss" { // DSA (ssh.KeyAlgoDSA, deprecated for this very reason)
		return ParsedKey{}, fmt.Errorf("%w: DSA keys are not accepted", ErrInvalid)
	}
	if ck, ok := pk.(ssh.CryptoPublicKey); ok {
		if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
			return ParsedKey{}, fmt.Errorf("%w: RSA keys must have at least 2048 bits", ErrInvalid)
		}
	}
	return ParsedKey{
		Fingerprint: ssh.FingerprintSHA256(pk),
		PublicKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))),
		Comment:     comment,
	}, nil
}
