package mirror

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// DeployKeyComment is the comment of generated deploy keys.
const DeployKeyComment = "gitserver-mirror"

// GenerateKey makes an ed25519 deploy key: the private key in OpenSSH's
// format and the public key as an authorized_keys line.
func GenerateKey() (private []byte, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, DeployKeyComment)
	if err != nil {
		return nil, "", err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(block), authorizedKey(spub, DeployKeyComment), nil
}

func authorizedKey(k ssh.PublicKey, comment string) string {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	if comment != "" {
		line += " " + comment
	}
	return line
}

// ParsePrivateKey validates a pasted private key (OpenSSH or PEM, without
// a passphrase) and returns it, normalised to end in a newline, with its
// public half. Errors never quote the key.
func ParsePrivateKey(text string) (private []byte, public string, err error) {
	b := []byte(strings.TrimSpace(text) + "\n")
	if len(b) > 16<<10 {
		return nil, "", invalid("mirror.private_key is larger than 16 KiB")
	}
	signer, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, "", invalid("mirror.private_key is protected by a passphrase; paste a key without one")
	case err != nil:
		return nil, "", invalid("mirror.private_key is not a private key in OpenSSH or PEM form")
	}
	switch signer.PublicKey().Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
	default:
		return nil, "", invalid("mirror.private_key type %s is not supported (ed25519, ecdsa or rsa)", signer.PublicKey().Type())
	}
	return b, authorizedKey(signer.PublicKey(), DeployKeyComment), nil
}

// HostKeys are pinned host keys: known_hosts lines and their SHA256
// fingerprints.
type HostKeys struct {
	KnownHosts   string
	Fingerprints []string
}

// add pins k for remote r.
func (h *HostKeys) add(r Remote, k ssh.PublicKey) {
	fp := ssh.FingerprintSHA256(k)
	if slices.Contains(h.Fingerprints, fp) {
		return
	}
	h.Fingerprints = append(h.Fingerprints, fp)
	h.KnownHosts += r.KnownHostsName() + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + "\n"
}

// ParseHostKeys pins the given host keys of r: each an authorized_keys
// style line ("ssh-ed25519 AAAA... [comment]") or a known_hosts line
// (whose host names are replaced by r's).
func ParseHostKeys(r Remote, lines []string) (HostKeys, error) {
	var h HostKeys
	if len(lines) > 32 {
		return h, invalid("mirror.host_keys: at most 32 keys")
	}
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.ContainsAny(line, "\r\n") || len(line) > 16<<10 {
			return HostKeys{}, invalid("mirror.host_keys[%d] must be one line, e.g. \"ssh-ed25519 AAAA...\"", i)
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			_, _, k, _, _, err = ssh.ParseKnownHosts([]byte(line))
		}
		if err != nil {
			return HostKeys{}, invalid("mirror.host_keys[%d] is not an SSH public key line, e.g. \"ssh-ed25519 AAAA...\"", i)
		}
		if _, ok := k.(ssh.CryptoPublicKey); !ok || strings.Contains(k.Type(), "cert") {
			return HostKeys{}, invalid("mirror.host_keys[%d]: certificates are not supported", i)
		}
		h.add(r, k)
	}
	if len(h.Fingerprints) == 0 {
		return HostKeys{}, invalid("mirror.host_keys is empty")
	}
	return h, nil
}

// ScanHostKeys asks the upstream for its host keys once, with
// `ssh-keyscan -T 10 -p PORT HOST`, and pins every key it answered.
func ScanHostKeys(ctx context.Context, keyscan string, r Remote) (HostKeys, error) {
	if keyscan == "" {
		keyscan = "ssh-keyscan"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// r.Host was validated: no option, no whitespace.
	cmd := exec.CommandContext(ctx, keyscan, "-T", "10", "-p", strconv.Itoa(r.Port), "--", r.Host)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	var h HostKeys
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, _, k, _, _, err := ssh.ParseKnownHosts([]byte(line)); err == nil {
			h.add(r, k)
		}
	}
	if len(h.Fingerprints) == 0 {
		why := "it answered with no host key"
		if runErr != nil && errors.Is(runErr, exec.ErrNotFound) {
			return HostKeys{}, fmt.Errorf("mirror: %s not found: %w", keyscan, runErr)
		}
		if ctx.Err() != nil {
			why = "it did not answer in time"
		}
		return HostKeys{}, invalid("could not read the host keys of %s port %d (%s); check the URL, or give mirror.host_keys", r.Host, r.Port, why)
	}
	return h, nil
}
