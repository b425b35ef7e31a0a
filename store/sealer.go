package store

import "context"

// Sealer encrypts secrets at rest (deploy private keys, webhook secrets,
// OAuth tokens): a store implementation seals them before they reach the
// database and opens them when it reads them back, so that a copy of the
// database without the sealing key reveals no secret. aad binds a sealed
// value to where it is stored (e.g. "mirrors.private_key:42"), so a value
// copied into another row does not open. The implementation lives outside
// the store (gitserver/seal: AES-256-GCM under a key file); cmd passes it in.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	// Open fails (without revealing anything) when sealed was not made by
	// this key for aad.
	Open(sealed, aad []byte) ([]byte, error)
}

// Secrets is what rotating the sealing key needs of a store.
type Secrets interface {
	// ResealAll replaces every sealed value the store holds with
	// reseal(value, aad), aad being the one the value was sealed for, in
	// one transaction: when reseal or a write fails, nothing changes and
	// the error (which names the table, column and row, never a value) is
	// returned. It returns how many values were re-sealed. A key rotation
	// passes the new keyring's Reseal (open with any known key, seal with
	// the current one).
	ResealAll(ctx context.Context, reseal func(sealed, aad []byte) ([]byte, error)) (int, error)
}
