package store

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
