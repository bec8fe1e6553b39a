package gridtypes

import (
	"crypto/ed25519"
	"fmt"
	"math"
	"regexp"
	"strconv"
)

// User is a grid user (the original's phonebook entry): a unique name and
// the ed25519 key that signs the user's reservations. The user signs the
// entry itself, proving they hold the key.
type User struct {
	// ID is assigned by the explorer (the original's "tid").
	ID          uint64 `json:"id,omitempty"`
	Name        string `json:"name"`
	Email       string `json:"email,omitempty"`
	Description string `json:"description,omitempty"`
	// PublicKey is the hex ed25519 public key.
	PublicKey string `json:"pubkey"`
	// Created is when the user signed (unix seconds).
	Created int64 `json:"created"`
	// Signature is hex ed25519 by PublicKey over Hash().
	Signature string `json:"signature"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)

// ValidName reports whether s is a valid user or farm name: 3 to 64
// lower-case letters and digits, with single '.', '_' or '-' between them
// (so a name is always usable as a NATS subject or key).
func ValidName(s string) bool { return len(s) >= 3 && len(s) <= 64 && nameRE.MatchString(s) }

// Validate checks the user's fields: a lower-case name of 3 to 64
// characters [a-z0-9_.-], a valid key, bounded texts.
func (u *User) Validate() error {
	if !ValidName(u.Name) {
		return fieldErr("name", "%q is not 3-64 lower-case letters and digits with single '_', '.' or '-' between", u.Name)
	}
	if err := checkStr("email", u.Email, 255, false); err != nil {
		return err
	}
	if err := checkStr("description", u.Description, MaxMetadataLen, false); err != nil {
		return err
	}
	if _, err := ParsePublicKeyHex("pubkey", u.PublicKey); err != nil {
		return err
	}
	if u.Created <= 0 {
		return fieldErr("created", "is required")
	}
	return nil
}

// Key returns the decoded public key.
func (u *User) Key() (ed25519.PublicKey, error) { return ParsePublicKeyHex("pubkey", u.PublicKey) }

// Hash is the SHA-256 of the canonical encoding of the tag "zos-user-v1",
// name, email, description, public key and created (not the id).
func (u *User) Hash() [32]byte {
	e := newEncoder("zos-user-v1")
	e.str(u.Name)
	e.str(u.Email)
	e.str(u.Description)
	e.str(u.PublicKey)
	e.i64(u.Created)
	return e.sum()
}

// Sign sets Signature with the user's private key.
func (u *User) Sign(sk ed25519.PrivateKey) { u.Signature = signHex(sk, u.Hash()) }

// Verify checks Signature against PublicKey.
func (u *User) Verify() error {
	pk, err := u.Key()
	if err != nil {
		return err
	}
	if err := verifyHex(pk, u.Hash(), u.Signature); err != nil {
		return fmt.Errorf("user %q: %w", u.Name, err)
	}
	return nil
}

// Location is where a farm or node is.
type Location struct {
	City      string  `json:"city,omitempty"`
	Country   string  `json:"country,omitempty"`
	Continent string  `json:"continent,omitempty"`
	Latitude  float64 `json:"latitude,omitempty"`
	Longitude float64 `json:"longitude,omitempty"`
}

func (l Location) validate(field string) error {
	for _, s := range []struct{ f, v string }{{"city", l.City}, {"country", l.Country}, {"continent", l.Continent}} {
		if err := checkStr(field+"."+s.f, s.v, 255, false); err != nil {
			return err
		}
	}
	if math.IsNaN(l.Latitude) || l.Latitude < -90 || l.Latitude > 90 {
		return fieldErr(field+".latitude", "%v is not a latitude", l.Latitude)
	}
	if math.IsNaN(l.Longitude) || l.Longitude < -180 || l.Longitude > 180 {
		return fieldErr(field+".longitude", "%v is not a longitude", l.Longitude)
	}
	return nil
}

func (l Location) encode(e *encoder) {
	e.str(l.City)
	e.str(l.Country)
	e.str(l.Continent)
	e.str(strconv.FormatFloat(l.Latitude, 'g', -1, 64))
	e.str(strconv.FormatFloat(l.Longitude, 'g', -1, 64))
}

// WalletAddress is where a farmer is paid.
type WalletAddress struct {
	Asset   string `json:"asset"`
	Address string `json:"address"`
}

// FarmIP is one public IPv4 address of a farm's pool, used by public_ip
// workloads.
type FarmIP struct {
	// Address with its prefix, e.g. "185.69.166.7/24".
	Address string `json:"address"`
	Gateway string `json:"gateway"`
	// ReservationID is the public_ip reservation using it (0: free); set by
	// the explorer.
	ReservationID uint64 `json:"reservation_id,omitempty"`
}

// Farm groups nodes under one owner, with a pool of public IPv4 addresses.
// The owner signs it.
type Farm struct {
	ID uint64 `json:"id,omitempty"`
	// OwnerID is the owning user (the original's threebot_id).
	OwnerID         uint64          `json:"owner_id"`
	Name            string          `json:"name"`
	Email           string          `json:"email,omitempty"`
	Location        Location        `json:"location,omitzero"`
	WalletAddresses []WalletAddress `json:"wallet_addresses,omitzero"`
	IPAddresses     []FarmIP        `json:"ipaddresses,omitzero"`
	Created         int64           `json:"created"`
	// Signature is hex ed25519 by the owner over Hash().
	Signature string `json:"signature"`
}

// Validate checks the farm's fields.
func (f *Farm) Validate() error {
	if !ValidName(f.Name) {
		return fieldErr("name", "%q is not 3-64 lower-case letters and digits with single '_', '.' or '-' between", f.Name)
	}
	if f.OwnerID == 0 {
		return fieldErr("owner_id", "is required")
	}
	if err := checkStr("email", f.Email, 255, false); err != nil {
		return err
	}
	if err := f.Location.validate("location"); err != nil {
		return err
	}
	if err := checkLen("wallet_addresses", len(f.WalletAddresses)); err != nil {
		return err
	}
	for i, w := range f.WalletAddresses {
		p := "wallet_addresses[" + strconv.Itoa(i) + "]"
		if err := checkStr(p+".asset", w.Asset, 64, true); err != nil {
			return err
		}
		if err := checkStr(p+".address", w.Address, 255, true); err != nil {
			return err
		}
	}
	if err := checkLen("ipaddresses", len(f.IPAddresses)); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, ip := range f.IPAddresses {
		p := "ipaddresses[" + strconv.Itoa(i) + "]"
		pr, err := parsePrefix(p+".address", ip.Address, true)
		if err != nil {
			return err
		}
		if seen[pr.Addr().String()] {
			return fieldErr(p+".address", "%s listed twice", pr.Addr())
		}
		seen[pr.Addr().String()] = true
		if _, err := parseIPv4(p+".gateway", ip.Gateway); err != nil {
			return err
		}
	}
	if f.Created <= 0 {
		return fieldErr("created", "is required")
	}
	return nil
}

// Hash is the SHA-256 of the canonical encoding of the tag "zos-farm-v1",
// owner, name, email, location, wallets, IP pool (address, gateway) and
// created (not the id nor which reservations use the IPs).
func (f *Farm) Hash() [32]byte {
	e := newEncoder("zos-farm-v1")
	e.u64(f.OwnerID)
	e.str(f.Name)
	e.str(f.Email)
	f.Location.encode(e)
	e.count(len(f.WalletAddresses))
	for _, w := range f.WalletAddresses {
		e.str(w.Asset)
		e.str(w.Address)
	}
	e.count(len(f.IPAddresses))
	for _, ip := range f.IPAddresses {
		e.str(ip.Address)
		e.str(ip.Gateway)
	}
	e.i64(f.Created)
	return e.sum()
}

// Sign sets Signature with the owner's private key.
func (f *Farm) Sign(sk ed25519.PrivateKey) { f.Signature = signHex(sk, f.Hash()) }

// Verify checks Signature against the owner's key.
func (f *Farm) Verify(owner ed25519.PublicKey) error {
	if err := verifyHex(owner, f.Hash(), f.Signature); err != nil {
		return fmt.Errorf("farm %q: %w", f.Name, err)
	}
	return nil
}

// Iface is a network interface of a node.
type Iface struct {
	Name       string   `json:"name"`
	Addrs      []string `json:"addrs,omitzero"`
	Gateway    []string `json:"gateway,omitzero"`
	MacAddress string   `json:"macaddress,omitempty"`
}

// PublicConfig is the public interface configuration a farmer gives a node.
type PublicConfig struct {
	// Master is the NIC the public macvlan hangs from.
	Master string `json:"master"`
	// Type is "macvlan" (the only one supported).
	Type    string `json:"type"`
	IPv4    string `json:"ipv4,omitempty"`
	IPv6    string `json:"ipv6,omitempty"`
	GW4     string `json:"gw4,omitempty"`
	GW6     string `json:"gw6,omitempty"`
	Version int    `json:"version,omitempty"`
}

// Node is a node as the explorer knows it. The node writes everything but
// ReservedResources, Created and Deleted.
type Node struct {
	// NodeID is base58 of the node's ed25519 key.
	NodeID    string   `json:"node_id"`
	FarmID    uint64   `json:"farm_id"`
	Hostname  string   `json:"hostname,omitempty"`
	OSVersion string   `json:"os_version,omitempty"`
	Location  Location `json:"location,omitzero"`
	// Uptime in seconds, as last reported.
	Uptime uint64 `json:"uptime"`
	// Created is the first registration, Updated the last report (unix
	// seconds): a node whose Updated is old is down.
	Created int64 `json:"created"`
	Updated int64 `json:"updated"`
	// TotalResources is what the hardware has.
	TotalResources Capacity `json:"total_resources"`
	// SystemResources is what the node keeps for itself (memory for the
	// OS, its cache disk).
	SystemResources Capacity `json:"system_resources"`
	// UsedResources is what the node reports in use: system plus live
	// workloads.
	UsedResources Capacity `json:"used_resources"`
	// ReservedResources is the explorer's sum of the capacity of accepted,
	// not yet deleted reservations on the node.
	ReservedResources Capacity `json:"reserved_resources"`
	// Workloads counts live workloads per type, as reported.
	Workloads    map[WorkloadType]uint64 `json:"workloads,omitzero"`
	Interfaces   []Iface                 `json:"ifaces,omitzero"`
	PublicConfig *PublicConfig           `json:"public_config,omitempty"`
	// PublicConfigSigned is the Created of the farmer's request that set
	// PublicConfig; older requests are refused (no replay).
	PublicConfigSigned int64    `json:"public_config_signed,omitempty"`
	WGPorts            []uint16 `json:"wg_ports,omitzero"`
	Deleted            bool     `json:"deleted,omitempty"`
}

// Free is the capacity still available for new reservations:
// Total - max(Used, System + Reserved), each unit floored at 0.
func (n *Node) Free() Capacity {
	return n.TotalResources.Sub(n.UsedResources.Max(n.SystemResources.Add(n.ReservedResources)))
}

// PublicConfigRequest is a farmer's signed setting of the public
// interface of one of the farm's nodes.
type PublicConfigRequest struct {
	NodeID string `json:"node_id"`
	// Config is the new configuration; nil removes it.
	Config *PublicConfig `json:"public_config"`
	// Created is when the farmer signed (unix seconds).
	Created int64 `json:"created"`
	// Signature is hex ed25519 by the farm owner over Hash().
	Signature string `json:"signature"`
}

// Validate checks the request's fields.
func (p *PublicConfigRequest) Validate() error {
	if _, err := ParseNodeID(p.NodeID); err != nil {
		return err
	}
	if p.Created <= 0 {
		return fieldErr("created", "is required")
	}
	c := p.Config
	if c == nil {
		return nil
	}
	if err := checkStr("public_config.master", c.Master, 15, true); err != nil {
		return err
	}
	if c.Type != "" && c.Type != "macvlan" {
		return fieldErr("public_config.type", "%q is not macvlan", c.Type)
	}
	if c.IPv4 == "" && c.IPv6 == "" {
		return fieldErr("public_config", "needs ipv4 or ipv6")
	}
	for _, f := range []struct {
		name, v string
		v4      bool
	}{{"ipv4", c.IPv4, true}, {"ipv6", c.IPv6, false}} {
		if f.v == "" {
			continue
		}
		pr, err := parsePrefix("public_config."+f.name, f.v, f.v4)
		if err != nil {
			return err
		}
		if !f.v4 && pr.Addr().Is4() {
			return fieldErr("public_config.ipv6", "%q is not ipv6", f.v)
		}
	}
	if c.IPv4 != "" {
		if _, err := parseIPv4("public_config.gw4", c.GW4); err != nil {
			return err
		}
	}
	if c.IPv6 != "" {
		if err := checkIP("public_config.gw6", c.GW6); err != nil {
			return err
		}
	}
	return nil
}

// Hash is the SHA-256 of the canonical encoding of the tag
// "zos-public-config-v1", node id, whether a config is set, its fields
// (master, type, ipv4, ipv6, gw4, gw6, version) and created.
func (p *PublicConfigRequest) Hash() [32]byte {
	e := newEncoder("zos-public-config-v1")
	e.str(p.NodeID)
	e.boolean(p.Config != nil)
	if c := p.Config; c != nil {
		for _, s := range []string{c.Master, c.Type, c.IPv4, c.IPv6, c.GW4, c.GW6} {
			e.str(s)
		}
		e.i64(int64(c.Version))
	}
	e.i64(p.Created)
	return e.sum()
}

// Sign sets Signature with the farm owner's key.
func (p *PublicConfigRequest) Sign(sk ed25519.PrivateKey) { p.Signature = signHex(sk, p.Hash()) }

// Verify checks Signature against the farm owner's key.
func (p *PublicConfigRequest) Verify(owner ed25519.PublicKey) error {
	if err := verifyHex(owner, p.Hash(), p.Signature); err != nil {
		return fmt.Errorf("public config of node %s: %w", p.NodeID, err)
	}
	return nil
}
