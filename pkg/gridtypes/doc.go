// Package gridtypes is the grid's schema, shared by the explorer, the node
// agent and the zos CLI: users, farms, nodes and their capacity,
// reservations of the workload types a node provisions (container, volume,
// zdb, network, kubernetes, public_ip, debug and a generic vm), their
// lifecycle (NextAction), the results nodes report, and how all of these are
// hashed and signed.
//
// # Reservations
//
// A Reservation carries exactly one workload on one node (the original's
// capacity-pool era "workload"; its legacy multi-workload reservations are
// not supported). Type names the workload type and Data holds its JSON
// object; Workload decodes it into *Container, *Volume, *ZDB, *Network,
// *Kubernetes, *PublicIP, *Debug or *VM. Decode parses untrusted bytes
// (size limit, no unknown fields); Validate checks the field rules;
// CheckTime the signed request's validity window; Verify the signature.
//
// Secrets (container secret_environment and secret log URLs, zdb
// password, kubernetes cluster_secret, network WireGuard private key) are
// hex ciphertext encrypted to the node key as the original did: SecretUser
// fields by Version (0: libsodium sealed box; 1 and 2: ECDH between the
// user's and the node's keys), SecretSealed fields always as a sealed box.
// TransformSecrets walks them; the algorithms live in pkg/identity.
//
// # Canonical encoding and signatures
//
// Everything that is signed is first encoded canonically, then hashed with
// SHA-256, and the 32-byte digest is signed with ed25519 (pure ed25519 over
// the digest, signature stored as lower-case hex). The encoding is a
// sequence of items, each in one of these forms:
//
//	bool     1 byte, 0 or 1
//	u32      4 bytes big-endian
//	u64/i64  8 bytes big-endian (i64 as two's complement)
//	string   u32 byte length, then the UTF-8 bytes
//	bytes    u32 length, then the bytes
//	list     u32 item count, then the items
//	map      u32 pair count, then key string, value string pairs sorted by
//	         the bytes of the key
//	json     bytes of the document compacted and HTML-escaped (exactly what
//	         encoding/json emits for a json.RawMessage), so the signature
//	         survives JSON round trips
//
// Every encoding starts with a domain-separation tag string, so a signature
// over one kind of object can never be taken for another:
//
//	reservation  "zos-reservation-v1", version u32, node_id, user_id u64,
//	             type, description, metadata, reference, created i64,
//	             expires i64, provision signers (list of u64) and quorum u32,
//	             delete signers and quorum, then the workload's fields in
//	             their declaration order (strings as string, numbers as u64,
//	             lists as list, maps as map, nested structs field by field).
//	             With a Lifetime, the tag is "zos-reservation-v2" and the
//	             lifetime i64 follows expires (hashes without one are
//	             unchanged).
//	provision/   "zos-sign-v1", action ("provision"|"delete"), reservation
//	delete sig   hash (bytes), signer user id u64, epoch i64
//	result       "zos-result-v1", reservation id u64, node_id, type,
//	             state (1 byte), message, data (json), created i64
//	user         "zos-user-v1", name, email, description, pubkey, created
//	farm         "zos-farm-v1", owner u64, name, email, location (strings;
//	             coordinates as shortest 'g' float text), wallets (asset,
//	             address), ip pool (address, gateway), created
//
// The length prefixes make the encoding injective: unlike the original's
// challenge (plain concatenation of decimal numbers and strings, so "1"+"23"
// and "12"+"3" signed the same; later MD5 on the chain side), two different
// reservations never share an encoding. The reservation id, next action,
// collected signatures and result are explorer state and not covered.
//
// Replay and expiry: Created and Expires are signed; the explorer refuses a
// request after Expires, one dated more than ClockSkew ahead, and one
// valid for more than MaxValidity, and it remembers the hash of every
// accepted request for MaxValidity, refusing it a second time. Expires
// bounds the request, not the workload: a workload lives until deleted, or
// until Created + Lifetime when the owner set a Lifetime (the original
// expired workloads with their capacity pool; a lifetime is our pool-free
// equivalent, enforced by the node).
//
// Multi-signature: SigningRequestProvision lists users of whom QuorumMin
// must sign "provision" before the explorer delivers the reservation;
// SigningRequestDelete likewise for deletion (empty: the owner's own delete
// signature suffices). Results are signed by the node's key and the
// explorer verifies them with the key in the node id before storing them;
// the original verified neither side.
package gridtypes
