// Package identity implements the node identity of zos: the ed25519 key pair
// derived from a persisted 32-byte seed, the node id (base58 of the public
// key), the farm id read from the kernel command line, and the two NaCl
// encryption schemes users rely on to send secrets to a node. [Manager]
// implements pkg.IdentityManager; [Load] builds it from the seed file
// (creating it on first start), [New] from a key pair in memory.
//
// # Seed file
//
// A seed file holds a JSON-quoted semantic version immediately followed by a
// payload (no separator):
//
//   - no header, exactly 32 bytes: legacy raw seed. Accepted, and the node
//     rewrites the file under "1.0.0".
//   - "1.0.0" + 32 raw bytes: what a node writes when it creates its seed.
//   - "1.1.0" + 32 raw bytes: what zos v0.4.9 wrote when it upgraded a legacy
//     file, and could not read back. Accepted as legacy and rewritten under
//     "1.0.0", so such a node keeps its identity.
//   - "1.1.0" + JSON {"mnemonic": "<24 BIP-39 words>", "threebotid": <int>}:
//     the user identity format (the zos CLI's `identity new` writes it, and a
//     node accepts it). The seed is the BIP-39 entropy of the mnemonic, not the
//     PBKDF2 BIP-39 seed; threebotid is ignored by nodes.
//
// Any other content (empty, short, long, unknown version, invalid JSON,
// mnemonic with a bad word or checksum) is an error matching [ErrInvalidSeed]
// and a more precise sentinel; it never leads to a new identity.
//
// # Keys and node id
//
// The private key is ed25519.NewKeyFromSeed(seed); the node id is the base58
// (Bitcoin alphabet) encoding of the 32-byte public key, [KeyFromID] reverses
// it. For the algorithms of [SealBox]/[OpenBox] (libsodium crypto_box_seal)
// and [EncryptECDH]/[DecryptECDH] (X25519 of the converted keys, BLAKE2b-256,
// nonce ‖ secretbox) see their docs; both interoperate with libsodium and
// PyNaCl, which the tests check.
//
// # User side
//
// The zos CLI uses the exported functions of this same package: [Generate],
// [SeedFromMnemonic], [ReadSeedFile], [CreateSeedFile]/[WriteSeedFile] and
// [SeedFile.KeyPair] for its identity file (the "1.1.0" mnemonic form); [SealToNode]/[SealBox] to seal a secret to a node (the scheme
// the node opens with Decrypt, used for WireGuard keys and v0 workloads) and
// [EncryptECDH]/[DecryptECDH] with the user's private key and the node's public
// key (or [EncryptECDHToNode]) for secrets of v≥1 workloads, opened by the node
// with DecryptECDH and the user's public key.
//
// # Deviations from the original (zos v0.4.9)
//
//   - The seed file is written with mode 0600 (the original used 0400), through
//     temp file + fsync + rename + fsync of the directory; a first seed is
//     created with a no-clobber link so two concurrent starts agree on one
//     seed. Group/other permission bits found on an existing file are removed.
//   - A legacy raw seed is upgraded under "1.0.0"; the original wrote the raw
//     bytes under "1.1.0", which the next load then failed to parse as JSON.
//   - Config.MirrorPaths mirrors the seed on other pools: a node whose primary
//     seed file is lost restores it from a valid mirror and keeps its id; seeds
//     that differ between copies are an error ([ErrSeedMismatch]), and so is a
//     corrupt copy; with no readable copy but an unreadable mirror (I/O error)
//     no new seed is made ([ErrSeedUnavailable]). See [Load].
//   - Files v0.4.9 wrote as "1.1.0" + raw seed are read (see above) and
//     rewritten under "1.0.0".
//   - Node ids are checked for length (32–44 characters) before decoding.
//   - Every decryption checks the input length before slicing and reports
//     [ErrDecrypt] (or [ErrCiphertextTooShort]) instead of panicking; public
//     keys that are not valid, prime-order ed25519 points are rejected with
//     [ErrInvalidPublicKey], as libsodium does.
//   - The farm id comes from Config.FarmID when set (cmd/ flags or config),
//     else from the injected kernel command line; a missing farmer_id is
//     [ErrOrphan] rather than a silent farm 0.
//
// Keys and seeds are never logged; [Seed] and [KeyPair] redact themselves in
// fmt and log/slog output.
package identity
