package gridtypes

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testNow = time.Unix(1_700_000_000, 0)

func testKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = b
	}
	return ed25519.NewKeyFromSeed(seed)
}

func nodeID(b byte) string { return NodeIDFromKey(testKey(b).Public().(ed25519.PublicKey)) }

var wgKey = base64.StdEncoding.EncodeToString(make([]byte, 32))

// sampleWorkloads has one valid workload of every type.
func sampleWorkloads() []Workload {
	return []Workload{
		&Container{
			Flist: "https://hub.grid.tf/tf-official-apps/ubuntu.flist", Entrypoint: "/bin/sh -c 'sleep inf'",
			Environment:       map[string]string{"A": "1", "B": "<&>"},
			SecretEnvironment: map[string]string{"PASS": "abcd"},
			Volumes:           []ContainerMount{{VolumeID: "-1", Mountpoint: "/data"}},
			NetworkConnection: []NetworkConnection{{NetworkID: "net", IPAddress: "10.1.3.5"}},
			Logs:              []Logs{{Type: "redis", Data: LogsRedis{Stdout: "redis://h/c", SecretStderr: "00"}}},
			Capacity:          ContainerCapacity{CPU: 2, Memory: 1024, DiskSize: 512, DiskType: DiskHDD},
		},
		&Volume{Size: 10, Type: DiskSSD},
		&ZDB{Size: 5, Mode: ZDBModeUser, Password: "beef", DiskType: DiskHDD, Public: true},
		&Network{Name: "net", NetworkIPRange: "10.1.0.0/16", IPRange: "10.1.3.0/24",
			WireguardPrivateKeyEncrypted: "aa", WireguardPublicKey: wgKey, WireguardListenPort: 5000,
			Peers: []Peer{{PublicKey: wgKey, Endpoint: "[2001:db8::1]:5001", IPRange: "10.1.4.0/24", AllowedIPRange: []string{"10.1.4.0/24", "100.64.1.4/32"}}}},
		&Kubernetes{Size: 1, ClusterSecret: "cafe", NetworkID: "net", IPAddress: "10.1.3.6", SSHKeys: []string{"ssh-ed25519 AAAA"}},
		&PublicIP{IPAddress: "185.69.166.7/24"},
		&Debug{Host: "10.0.0.1", Port: 6379},
		&VM{CPU: 1, Memory: 512, Flist: "https://hub/vm.flist", Disks: []VMDisk{{Size: 1024, Root: true}},
			Network: VMNetwork{NetworkID: "net", IPAddress: "10.1.3.7"}},
	}
}

func signed(t testing.TB, w Workload) *Reservation {
	t.Helper()
	r, err := NewReservation(nodeID(1), 7, w, testNow, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sign(testKey(2)); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEveryTypeValidSignedAndRoundTrips(t *testing.T) {
	seen := map[WorkloadType]bool{}
	for _, w := range sampleWorkloads() {
		t.Run(string(w.WorkloadType()), func(t *testing.T) {
			seen[w.WorkloadType()] = true
			r := signed(t, w)
			if err := r.Validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := Decode(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if err := r2.Verify(testKey(2).Public().(ed25519.PublicKey)); err != nil {
				t.Fatalf("signature lost in a json round trip: %v", err)
			}
			w2, err := r2.Workload()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(w, w2) {
				t.Fatalf("workload changed:\n%#v\n%#v", w, w2)
			}
		})
	}
	for _, typ := range WorkloadTypes() {
		if !seen[typ] {
			t.Errorf("no sample of %s", typ)
		}
	}
}

func TestSignatureCoversEveryUserField(t *testing.T) {
	pk := testKey(2).Public().(ed25519.PublicKey)
	mutations := map[string]func(r *Reservation){
		"node":        func(r *Reservation) { r.NodeID = nodeID(3) },
		"user":        func(r *Reservation) { r.UserID++ },
		"version":     func(r *Reservation) { r.Version = 0 },
		"description": func(r *Reservation) { r.Description = "x" },
		"metadata":    func(r *Reservation) { r.Metadata = "x" },
		"created":     func(r *Reservation) { r.Created-- },
		"expires":     func(r *Reservation) { r.Expires++ },
		"quorum":      func(r *Reservation) { r.SigningRequestDelete = SigningRequest{Signers: []uint64{9}, QuorumMin: 1} },
		"data": func(r *Reservation) {
			w, _ := r.Workload()
			w.(*Container).Environment["A"] = "2"
			_ = r.SetWorkload(w)
		},
		"secret": func(r *Reservation) {
			w, _ := r.Workload()
			w.(*Container).SecretEnvironment["PASS"] = "abce"
			_ = r.SetWorkload(w)
		},
	}
	for name, mutate := range mutations {
		r := signed(t, sampleWorkloads()[0])
		mutate(r)
		if err := r.Verify(pk); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed, verify = %v, want ErrBadSignature", name, err)
		}
	}
	r := signed(t, sampleWorkloads()[0])
	// Explorer state is not covered.
	r.ID, r.NextAction, r.Accepted = 5, ActionDeploy, 9
	if err := r.Verify(pk); err != nil {
		t.Errorf("explorer fields must not be signed: %v", err)
	}
	if err := r.Verify(testKey(3).Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("other key: %v", err)
	}
	r.CustomerSignature = ""
	if err := r.Verify(pk); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	r.CustomerSignature = "zz"
	if err := r.Verify(pk); !errors.Is(err, ErrBadSignature) {
		t.Errorf("garbage signature: %v", err)
	}
}

func TestEncodingIsInjective(t *testing.T) {
	a := signed(t, &Debug{Host: "ab", Port: 1, Channel: "c"})
	b := signed(t, &Debug{Host: "a", Port: 1, Channel: "bc"})
	ha, _ := a.Hash()
	hb, _ := b.Hash()
	if ha == hb {
		t.Fatal("moving a byte between fields kept the hash")
	}
	a.Description, a.Metadata = "xy", ""
	b.Description, b.Metadata = "x", "y"
	ha, _ = a.Hash()
	b.SetWorkload(&Debug{Host: "ab", Port: 1, Channel: "c"})
	hb, _ = b.Hash()
	if ha == hb {
		t.Fatal("description/metadata boundary not encoded")
	}
}

// TestGoldenHash pins the canonical encoding: changing it breaks every
// stored signature, so it must be a deliberate, versioned change.
func TestGoldenHash(t *testing.T) {
	r := &Reservation{Version: 2, NodeID: nodeID(1), UserID: 7, Type: TypeVolume, Data: json.RawMessage(`{"size":1,"type":"ssd"}`),
		Created: 1_700_000_000, Expires: 1_700_000_600}
	h, err := r.HashHex()
	if err != nil {
		t.Fatal(err)
	}
	// The documented encoding, written out by hand.
	e := newEncoder("zos-reservation-v1")
	e.u32(2)
	e.str(nodeID(1))
	e.u64(7)
	e.str("volume")
	e.str("") // description
	e.str("") // metadata
	e.str("") // reference
	e.i64(1_700_000_000)
	e.i64(1_700_000_600)
	e.u32(0) // provision signers
	e.u32(0) // provision quorum
	e.u32(0) // delete signers
	e.u32(0) // delete quorum
	e.u64(1)
	e.str("ssd")
	if s := e.sum(); hex.EncodeToString(s[:]) != h {
		t.Fatalf("hash %s does not follow the documented encoding (%x)", h, s)
	}
	if want := []byte("\x00\x00\x00\x12zos-reservation-v1\x00\x00\x00\x02"); string(e.buf[:len(want)]) != string(want) {
		t.Fatalf("encoding starts %q", e.buf[:len(want)])
	}
	const want = "c2266a6adf198f9794f0c18467bde4f30dd33a245c4b5e35b6dad90d3335b4bb"
	if h != want {
		t.Fatalf("hash = %s, want %s", h, want)
	}
}

// TestGoldenHashWithLifetime: a lifetime switches the domain tag and is
// encoded after expires; negative and oversized lifetimes are refused.
func TestGoldenHashWithLifetime(t *testing.T) {
	r := &Reservation{Version: 2, NodeID: nodeID(1), UserID: 7, Type: TypeVolume, Data: json.RawMessage(`{"size":1,"type":"ssd"}`),
		Created: 1_700_000_000, Expires: 1_700_000_600, Lifetime: 86400}
	h, err := r.HashHex()
	if err != nil {
		t.Fatal(err)
	}
	e := newEncoder("zos-reservation-v2")
	e.u32(2)
	e.str(nodeID(1))
	e.u64(7)
	e.str("volume")
	e.str("")
	e.str("")
	e.str("")
	e.i64(1_700_000_000)
	e.i64(1_700_000_600)
	e.i64(86400)
	e.u32(0)
	e.u32(0)
	e.u32(0)
	e.u32(0)
	e.u64(1)
	e.str("ssd")
	if s := e.sum(); hex.EncodeToString(s[:]) != h {
		t.Fatalf("hash %s does not follow the documented encoding (%x)", h, s)
	}
	if r.ExpiresAt() != time.Unix(1_700_086_400, 0) {
		t.Fatalf("expires at %v", r.ExpiresAt())
	}
	for _, bad := range []int64{-1, MaxLifetime + 1} {
		r.Lifetime = bad
		var fe *FieldError
		if err := r.Validate(); !errors.As(err, &fe) || fe.Field != "lifetime" {
			t.Errorf("lifetime %d: %v", bad, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := json.Marshal(signed(t, &Volume{Size: 1, Type: DiskSSD}))
	cases := map[string]struct {
		in   string
		want error
	}{
		"empty":          {``, ErrMalformed},
		"not json":       {`{"id":`, ErrMalformed},
		"array":          {`[]`, ErrMalformed},
		"unknown field":  {strings.Replace(string(good), `"version"`, `"bogus":1,"version"`, 1), ErrMalformed},
		"unknown data":   {strings.Replace(string(good), `"size"`, `"bogus":1,"size"`, 1), ErrMalformed},
		"trailing":       {string(good) + `{}`, ErrMalformed},
		"unknown type":   {strings.Replace(string(good), `"type":"volume"`, `"type":"teleporter"`, 1), ErrUnknownWorkloadType},
		"no data":        {`{"type":"volume"}`, ErrMalformed},
		"bad action":     {strings.Replace(string(good), `"next_action":"create"`, `"next_action":"explode"`, 1), ErrInvalidEnum},
		"wrong type":     {strings.Replace(string(good), `"user_id":7`, `"user_id":"7"`, 1), ErrMalformed},
		"oversized":      {`{"description":"` + strings.Repeat("x", MaxReservationSize) + `"}`, ErrTooLarge},
		"data of a type": {strings.Replace(string(good), `"size":1`, `"size":"big"`, 1), ErrMalformed},
	}
	for name, c := range cases {
		_, err := Decode([]byte(c.in))
		if !errors.Is(err, c.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want %v (and ErrInvalid)", name, err, c.want)
		}
	}
	if _, err := Decode(good); err != nil {
		t.Fatalf("good: %v", err)
	}
	// What the explorer stores may exceed the request limit (signatures,
	// result), up to MaxStoredReservationSize.
	r, _ := Decode(good)
	r.Result = &Result{Message: strings.Repeat("m", MaxReservationSize)}
	big, _ := json.Marshal(r)
	if _, err := Decode(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("request limit: %v", err)
	}
	if _, err := DecodeStored(big); err != nil {
		t.Fatalf("stored reservation: %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	base := func(w Workload) *Reservation { return signed(t, w) }
	cases := []struct {
		name  string
		r     *Reservation
		field string
	}{
		{"bad node", func() *Reservation { r := base(&Volume{Size: 1, Type: DiskSSD}); r.NodeID = "0OIl"; return r }(), "node_id"},
		{"no user", func() *Reservation { r := base(&Volume{Size: 1, Type: DiskSSD}); r.UserID = 0; return r }(), "user_id"},
		{"future version", func() *Reservation { r := base(&Volume{Size: 1, Type: DiskSSD}); r.Version = 9; return r }(), "version"},
		{"long validity", func() *Reservation {
			r := base(&Volume{Size: 1, Type: DiskSSD})
			r.Expires = r.Created + int64(2*MaxValidity/time.Second)
			return r
		}(), "expires"},
		{"quorum", func() *Reservation {
			r := base(&Volume{Size: 1, Type: DiskSSD})
			r.SigningRequestProvision = SigningRequest{Signers: []uint64{1}, QuorumMin: 2}
			return r
		}(), "signing_request_provision.quorum_min"},
		{"metadata", func() *Reservation {
			r := base(&Volume{Size: 1, Type: DiskSSD})
			r.Metadata = strings.Repeat("m", MaxMetadataLen+1)
			return r
		}(), "metadata"},
		{"volume size", base(&Volume{Size: 0, Type: DiskSSD}), "data.size"},
		{"volume type", base(&Volume{Size: 1, Type: "tape"}), "data.type"},
		{"container cpu", base(&Container{Flist: "f", Capacity: ContainerCapacity{Memory: 1024}}), "data.capacity.cpu"},
		{"container memory", base(&Container{Flist: "f", Capacity: ContainerCapacity{CPU: 1, Memory: 1}}), "data.capacity.memory"},
		{"container huge", base(&Container{Flist: "f", Capacity: ContainerCapacity{CPU: 1 << 20, Memory: 1024}}), "data.capacity.cpu"},
		{"container flist", base(&Container{Capacity: ContainerCapacity{CPU: 1, Memory: 1024}}), "data.flist"},
		{"container ip", base(&Container{Flist: "f", Capacity: ContainerCapacity{CPU: 1, Memory: 1024},
			NetworkConnection: []NetworkConnection{{NetworkID: "n", IPAddress: "300.1.1.1"}}}), "data.network_connection[0].ipaddress"},
		{"container mount", base(&Container{Flist: "f", Capacity: ContainerCapacity{CPU: 1, Memory: 1024},
			Volumes: []ContainerMount{{VolumeID: "1-1", Mountpoint: "data"}}}), "data.volumes[0].mountpoint"},
		{"container secret", base(&Container{Flist: "f", Capacity: ContainerCapacity{CPU: 1, Memory: 1024},
			SecretEnvironment: map[string]string{"K": "not hex"}}), "data.secret_environment.K"},
		{"zdb mode", base(&ZDB{Size: 1, Mode: "random", DiskType: DiskHDD}), "data.mode"},
		{"network range", base(&Network{Name: "n", NetworkIPRange: "10.1.0.0/24", IPRange: "10.1.3.0/24"}), "data.network_iprange"},
		{"network subnet outside", base(&Network{Name: "n", NetworkIPRange: "10.1.0.0/16", IPRange: "10.2.3.0/24"}), "data.iprange"},
		{"k8s size", base(&Kubernetes{Size: 19, ClusterSecret: "aa", NetworkID: "n", IPAddress: "10.1.1.1"}), "data.size"},
		{"public ip", base(&PublicIP{IPAddress: "2001:db8::1/64"}), "data.ipaddress"},
		{"debug port", base(&Debug{Host: "h"}), "data.port"},
		{"vm disks", base(&VM{CPU: 1, Memory: 512, Flist: "f", Disks: []VMDisk{{Size: 1, Root: true}, {Size: 1, Root: true}}}), "data.disks"},
	}
	for _, c := range cases {
		err := c.r.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want a FieldError on %s", c.name, err, c.field)
		}
	}
}

func TestCheckTime(t *testing.T) {
	r := signed(t, &Volume{Size: 1, Type: DiskSSD})
	if err := r.CheckTime(testNow.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckTime(testNow.Add(11 * time.Minute)); !errors.Is(err, ErrExpired) {
		t.Errorf("late: %v", err)
	}
	if err := r.CheckTime(testNow.Add(-ClockSkew - time.Minute)); !errors.Is(err, ErrNotYetValid) {
		t.Errorf("early: %v", err)
	}
	r.Lifetime = 120 // ends before the request does
	if err := r.CheckTime(testNow.Add(time.Minute)); err != nil {
		t.Errorf("within its lifetime: %v", err)
	}
	if err := r.CheckTime(testNow.Add(2 * time.Minute)); !errors.Is(err, ErrExpired) {
		t.Errorf("lifetime over: %v", err)
	}
}

func TestMultiSignature(t *testing.T) {
	r := signed(t, &Volume{Size: 1, Type: DiskSSD})
	r.SigningRequestDelete = SigningRequest{Signers: []uint64{10, 11, 12}, QuorumMin: 2}
	var sigs []Signature
	for _, u := range []uint64{10, 10, 13} { // a duplicate and an unlisted signer
		s, err := r.SignAction(SignDelete, u, testKey(byte(u)), testNow)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.VerifyAction(SignDelete, s, testKey(byte(u)).Public().(ed25519.PublicKey)); err != nil {
			t.Fatal(err)
		}
		if err := r.VerifyAction(SignProvision, s, testKey(byte(u)).Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("a delete signature verified as provision: %v", err)
		}
		sigs = append(sigs, s)
	}
	if r.SigningRequestDelete.Met(sigs) {
		t.Fatal("quorum met with one distinct listed signer")
	}
	s, _ := r.SignAction(SignDelete, 12, testKey(12), testNow)
	if !r.SigningRequestDelete.Met(append(sigs, s)) {
		t.Fatal("quorum not met with two listed signers")
	}
	if !(SigningRequest{}).Met(nil) {
		t.Fatal("empty request must be met")
	}
}

func TestResultSignature(t *testing.T) {
	r := signed(t, &Container{Flist: "f", Capacity: ContainerCapacity{CPU: 1, Memory: 1024}})
	r.ID = 42
	node := testKey(1)
	res, err := NewResult(r, StateOK, "", ContainerResult{ID: r.GWID(), IPv4: "10.1.3.5", IPv6: "<fe80::1>"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	res.Sign(node)
	if err := res.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := res.Verify(); err != nil {
		t.Fatal(err)
	}
	// Survives a JSON round trip (HTML-escaped data).
	b, _ := json.Marshal(res)
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(); err != nil {
		t.Fatalf("after round trip: %v", err)
	}
	back.ReservationID = 43
	if err := back.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("result replayed for another reservation: %v", err)
	}
	// Signed by another key than the node id's.
	res.Sign(testKey(9))
	if err := res.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("foreign signer: %v", err)
	}
}

func TestResources(t *testing.T) {
	ws := sampleWorkloads()
	want := []Capacity{
		{CRU: 2, MRU: 1024 * MiB, HRU: 512 * MiB},
		{SRU: 10 * GiB},
		{HRU: 5 * GiB},
		{},
		{CRU: 1, MRU: 2 * GiB, SRU: 50 * GiB},
		{IPV4U: 1},
		{},
		{CRU: 1, MRU: 512 * MiB, SRU: 1024 * MiB},
	}
	for i, w := range ws {
		if got := w.Resources(); got != want[i] {
			t.Errorf("%s: %v, want %v", w.WorkloadType(), got, want[i])
		}
	}
	c := &Container{Capacity: ContainerCapacity{CPU: 1, Memory: 100}}
	if got := c.Resources(); got.SRU != DefaultContainerDiskMiB*MiB {
		t.Errorf("default disk: %v", got)
	}
	n := Node{TotalResources: Capacity{CRU: 4, MRU: 8 * GiB}, SystemResources: Capacity{MRU: 2 * GiB},
		ReservedResources: Capacity{CRU: 1, MRU: 1 * GiB}, UsedResources: Capacity{MRU: 4 * GiB}}
	if got := n.Free(); got != (Capacity{CRU: 3, MRU: 4 * GiB}) {
		t.Errorf("free = %v", got)
	}
}

func TestTransformSecrets(t *testing.T) {
	for _, w := range sampleWorkloads() {
		r := signed(t, w)
		kinds := map[string]SecretKind{}
		err := r.TransformSecrets(func(field string, kind SecretKind, v string) (string, error) {
			kinds[field] = kind
			return "ff" + v, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		w2, _ := r.Workload()
		switch w := w2.(type) {
		case *Container:
			if w.SecretEnvironment["PASS"] != "ffabcd" || w.Logs[0].Data.SecretStderr != "ff00" || w.Logs[0].Data.SecretStdout != "" {
				t.Errorf("container secrets: %+v", w)
			}
		case *Network:
			if w.WireguardPrivateKeyEncrypted != "ffaa" || kinds["wireguard_private_key_encrypted"] != SecretSealed {
				t.Errorf("network secret: %+v %v", w, kinds)
			}
		case *ZDB:
			if w.Password != "ffbeef" {
				t.Errorf("zdb password: %q", w.Password)
			}
		case *Kubernetes:
			if w.ClusterSecret != "ffcafe" || kinds["cluster_secret"] != SecretUser {
				t.Errorf("k8s secret: %q", w.ClusterSecret)
			}
		default:
			if len(kinds) != 0 {
				t.Errorf("%s has no secrets, got %v", w.WorkloadType(), kinds)
			}
		}
	}
	boom := errors.New("boom")
	r := signed(t, sampleWorkloads()[2])
	if err := r.TransformSecrets(func(string, SecretKind, string) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("error not returned: %v", err)
	}
}

func TestUserAndFarmSignatures(t *testing.T) {
	sk := testKey(5)
	u := User{Name: "alice", PublicKey: hex.EncodeToString(sk.Public().(ed25519.PublicKey)), Created: testNow.Unix()}
	u.Sign(sk)
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := u.Verify(); err != nil {
		t.Fatal(err)
	}
	u.Name = "mallory"
	if err := u.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("renamed user verified: %v", err)
	}
	for _, bad := range []string{"Al", "al", "UPPER", "a b c", strings.Repeat("a", 65), "ab.", ".ab", "a..b"} {
		if err := (&User{Name: bad, PublicKey: u.PublicKey, Created: 1}).Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("name %q accepted", bad)
		}
	}
	if !ValidName("alice.3bot") || !ValidName("a-b_c") {
		t.Error("valid names refused")
	}
	f := Farm{OwnerID: 1, Name: "farm1", Created: 1, IPAddresses: []FarmIP{{Address: "185.69.166.7/24", Gateway: "185.69.166.1"}}}
	f.Sign(sk)
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(sk.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	f.IPAddresses[0].ReservationID = 9 // explorer state, unsigned
	if err := f.Verify(sk.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	f.IPAddresses[0].Gateway = "185.69.166.2"
	if err := f.Verify(sk.Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
		t.Fatal("changed farm verified")
	}
}

func TestEnumsText(t *testing.T) {
	for a := ActionCreate; a <= ActionMigrated; a++ {
		b, err := a.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		if p, err := ParseNextAction(string(b)); err != nil || p != a {
			t.Fatalf("%v: %v %v", a, p, err)
		}
	}
	if _, err := NextAction(99).MarshalText(); !errors.Is(err, ErrInvalidEnum) {
		t.Fatal("unknown action encoded")
	}
	if id := NetworkID(7, "net"); len(id) != 13 || id != NetworkID(7, "net") || id == NetworkID(8, "net") {
		t.Fatalf("network id %q", id)
	}
	if TypePublicIP.Order() <= TypeNetwork.Order() || TypeContainer.Order() <= TypeVolume.Order() {
		t.Fatal("provision order")
	}
}

func TestPublicConfigRequest(t *testing.T) {
	sk := testKey(4)
	p := PublicConfigRequest{NodeID: nodeID(1), Created: 1, Config: &PublicConfig{Master: "eth0", Type: "macvlan",
		IPv4: "185.69.166.10/24", GW4: "185.69.166.1", IPv6: "2a02:1802:5e::10/64", GW6: "2a02:1802:5e::1"}}
	p.Sign(sk)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(sk.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	p.Config.GW4 = "185.69.166.2"
	if err := p.Verify(sk.Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed config verified: %v", err)
	}
	for _, bad := range []PublicConfig{
		{Master: "eth0", IPv4: "185.69.166.10/24"},
		{Master: "eth0", IPv6: "10.0.0.1/24", GW6: "10.0.0.1"},
		{Master: "a-very-long-interface-name", IPv4: "185.69.166.10/24", GW4: "185.69.166.1"},
		{Master: "eth0"},
	} {
		q := PublicConfigRequest{NodeID: nodeID(1), Created: 1, Config: &bad}
		if err := q.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestCapacityStringForHumans(t *testing.T) {
	for _, tc := range []struct {
		c    Capacity
		want string
	}{
		{Capacity{CRU: 2, MRU: 4 * GiB, SRU: 256 * MiB}, "cru=2 mru=4.0GiB sru=256.0MiB hru=0B ipv4u=0"},
		{Capacity{IPV4U: ^uint64(0)}, "cru=0 mru=0B sru=0B hru=0B ipv4u=unlimited"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestParseGWID(t *testing.T) {
	r := &Reservation{ID: 42}
	if id, err := ParseGWID(r.GWID()); err != nil || id != 42 {
		t.Fatalf("ParseGWID(%q) = %d, %v", r.GWID(), id, err)
	}
	if id, err := ParseGWID("42"); err != nil || id != 42 {
		t.Fatalf("bare id: %d, %v", id, err)
	}
	for _, bad := range []string{"", "-1", "0-1", "x-1", "42-2", "1-1-1"} {
		if _, err := ParseGWID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseGWID(%q): %v, want ErrInvalid", bad, err)
		}
	}
}
