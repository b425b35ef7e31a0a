package store_test

import (
	"crypto/dsa" //lint:ignore SA1019 the test proves that DSA keys are refused
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"math/big"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"gitserver/store"
)

// authorizedKey renders pub in authorized_keys form with comment.
func authorizedKey(t *testing.T, pub any, comment string) string {
	t.Helper()
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	if comment != "" {
		line += " " + comment
	}
	return line
}

func ed25519Key(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, pub, comment)
}

func rsaKey(t *testing.T, bits int, comment string) string {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, &priv.PublicKey, comment)
}

// dsaKey builds a syntactically valid ssh-dss public key. The numbers need
// not form a real group (only sizes and ranges are checked on parsing):
// ParseSSHKey must refuse the type, whatever they are.
func dsaKey(t *testing.T) string {
	t.Helper()
	n := func(s string) *big.Int {
		v, _ := new(big.Int).SetString(s, 16)
		return v
	}
	pub := &dsa.PublicKey{
		Parameters: dsa.Parameters{
			P: n("e0a67598cd1b763bc98c8abb333e5dda0cd3aa0e5e1fb5ba8a7b4eabc10ba338fae06dd4b90fda70d7cf0cb0c638be3341bec0af8a7330a3307ded2299a0ee606df035177a239c34a912c202aa5f83b9c4a7cf0235b5316bfc6efb9a248411258b30b839af172440f32563056cb67a861158ddd90e6a894c72a5bbef9e286c6b"),
			Q: n("e950511eab424b9a19a2aeb4e159b7844c589c4f"),
			G: n("d29d5121b0423c2769ab21843e5a3240ff19cacc792264e3bb6be4f78edd1b15c4dff7f1d905431f0ab16790e1f773b5ce01c804e509066a9919f5195f4abc58189fd9ff987389cb5bedf21b4dab4f8b76a055ffe2770988fe2ec2de11ad92219f0b351869ac24da3d7ba87011a701ce8ee7bfe49486ed4527b7186ca4610a75"),
		},
		Y: big.NewInt(0x1234567),
	}
	return authorizedKey(t, pub, "old-dsa")
}

func TestParseSSHKeyAccepts(t *testing.T) {
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, text, comment string
	}{
		{"ed25519", ed25519Key(t, "alice@laptop"), "alice@laptop"},
		{"ed25519 without comment", ed25519Key(t, ""), ""},
		{"ed25519 with a trailing newline, as in a .pub file", ed25519Key(t, "me") + "\n", "me"},
		{"ed25519 with surrounding blanks", "  \t" + ed25519Key(t, "me") + "  \n", "me"},
		{"ed25519 with a multi-word comment", ed25519Key(t, "my work laptop"), "my work laptop"},
		{"rsa 2048", rsaKey(t, 2048, "rsa2048"), "rsa2048"},
		{"rsa 3072", rsaKey(t, 3072, "rsa3072"), "rsa3072"},
		{"ecdsa p256", authorizedKey(t, &ecPriv.PublicKey, "ec"), "ec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pk, err := store.ParseSSHKey(tc.text)
			if err != nil {
				t.Fatalf("ParseSSHKey: %v", err)
			}
			want, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(tc.text)))
			if err != nil {
				t.Fatal(err)
			}
			if pk.Fingerprint != ssh.FingerprintSHA256(want) || !strings.HasPrefix(pk.Fingerprint, "SHA256:") {
				t.Errorf("fingerprint %q, want %q", pk.Fingerprint, ssh.FingerprintSHA256(want))
			}
			if pk.Comment != tc.comment || comment != tc.comment {
				t.Errorf("comment %q, want %q", pk.Comment, tc.comment)
			}
			// The stored form is "<type> <base64>": no comment, no blanks.
			fields := strings.Fields(pk.PublicKey)
			if len(fields) != 2 || fields[0] != want.Type() || pk.PublicKey != strings.Join(fields, " ") {
				t.Errorf("normalised key %q", pk.PublicKey)
			}
			back, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pk.PublicKey))
			if err != nil || ssh.FingerprintSHA256(back) != pk.Fingerprint {
				t.Errorf("normalised key does not parse back to the same key: %v", err)
			}
		})
	}
}

func TestParseSSHKeyRefuses(t *testing.T) {
	good := ed25519Key(t, "good")
	fields := strings.Fields(good)
	for _, tc := range []struct {
		name, text, wantMsg string
	}{
		{"empty", "", "authorized_keys form"},
		{"blank", "  \n\t ", "authorized_keys form"},
		{"garbage", "hello world", "not an SSH public key"},
		{"type only", "ssh-ed25519", "not an SSH public key"},
		{"bad base64", "ssh-ed25519 !!!notbase64!!!", "not an SSH public key"},
		{"truncated blob", fields[0] + " " + fields[1][:20], "not an SSH public key"},
		{"unknown type", "ssh-foo " + fields[1], "not an SSH public key"},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", "one line"},
		{"private key header only", "-----BEGIN OPENSSH PRIVATE KEY-----", "not an SSH public key"},
		{"two keys", good + "\n" + ed25519Key(t, "second"), "one line"},
		{"two keys with CRLF", good + "\r\n" + ed25519Key(t, "second"), "one line"},
		{"key with a CR", good + "\rx", "one line"},
		{"option command", `command="/bin/sh" ` + good, "options"},
		{"option no-pty", "no-pty " + good, "options"},
		{"option from", `from="10.0.0.0/8" ` + good, "options"},
		{"options list", `no-port-forwarding,no-agent-forwarding ` + good, "options"},
		{"too long", "ssh-ed25519 " + strings.Repeat("A", 20000), "authorized_keys form"},
		{"rsa 1024", rsaKey(t, 1024, "short"), "at least 2048 bits"},
		{"dsa", dsaKey(t), "DSA keys are not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pk, err := store.ParseSSHKey(tc.text)
			if err == nil {
				t.Fatalf("ParseSSHKey accepted %.60q as %+v", tc.text, pk)
			}
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q, want it to mention %q", err, tc.wantMsg)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error message is %d bytes long; it should be short", len(err.Error()))
			}
			if pk != (store.ParsedKey{}) {
				t.Errorf("returned %+v with the error", pk)
			}
		})
	}
}
