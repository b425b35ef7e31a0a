// Package seal keeps secrets at rest encrypted: Keyring implements
// store.Sealer with AES-256-GCM (standard library only) under a key kept
// outside the database, in a key file, so that a copy of the database
// without the key file reveals no secret.
//
// A sealed value is
//
//	version (1 byte, 1) | key id (8 bytes) | nonce (12 random bytes) | GCM ciphertext and tag
//
// The key id is the first 8 bytes of SHA-256("gitserver secret key id\x00" ||
// key): it names the key a value was sealed with, so Open picks that key
// among the current and previous ones. The GCM additional data is the
// version and key id followed by the caller's aad, so a value opens only
// under the aad it was sealed for (e.g. "mirrors.private_key:42").
//
// A key file is text: the line "gitserver secret key v1", then one line per
// key, each the standard padded base64 of 32 random bytes. The key file
// (by default <data>/secret.key) holds exactly one key, the current one;
// "<key file>.previous" holds the keys of an unfinished rotation (one or
// more). A key file must be readable by its owner only (mode 0600 or
// 0400): LoadOrCreate and Load refuse one with any group or other
// permission bit. One can be made by hand with
//
//	printf 'gitserver secret key v1\n%s\n' "$(head -c 32 /dev/urandom | base64)" > secret.key
//
// Rotation (Rotate, then re-sealing every stored value with Reseal, then
// DropPrevious) never loses a key: the previous keys are written, fsynced
// and renamed into place before the new key file, and removed only after
// re-sealing, so a crash at any point leaves a key file set under which
// every stored value still opens.
//
// No error of this package contains key material, plaintext or a sealed
// value.
//
// Imports: gitserver/store
package seal
