package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/flist/format"
)

// s3Server serves an in-memory S3 with bucket "blocks"; tls picks HTTPS.
func s3Server(t *testing.T, tls bool) (*httptest.Server, *s3mem.Backend) {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("blocks"); err != nil {
		t.Fatal(err)
	}
	h := gofakes3.New(backend).Server()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake noise
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, backend
}

func openS3(t *testing.T, rawURL string, opts Options) Store {
	t.Helper()
	s, err := Open(rawURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// objectNames lists the bucket's object names.
func objectNames(t *testing.T, b *s3mem.Backend, bucket string) []string {
	t.Helper()
	list, err := b.ListBucket(bucket, nil, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list.Contents {
		names = append(names, c.Key)
	}
	return names
}

func TestS3Store(t *testing.T) {
	srv, backend := s3Server(t, false)
	host := srv.Listener.Addr().String()
	s := openS3(t, "s3://key:secret@"+host+"/blocks?region=us-east-1", Options{})
	suite(t, s)
	ctx := context.Background()

	// stored as the lowercase hex of the raw id, at the bucket's top
	k := randomKey(t, 0xab)
	k[1] = 0xcd
	if err := s.Set(ctx, k, []byte("block")); err != nil {
		t.Fatal(err)
	}
	obj, err := backend.GetObject("blocks", hexOf(k), nil)
	if err != nil {
		t.Fatalf("object %s: %v (bucket has %v)", hexOf(k), err, objectNames(t, backend, "blocks"))
	}
	defer obj.Contents.Close()
	if !strings.HasPrefix(hexOf(k), "abcd") || obj.Size != int64(len("block")) {
		t.Errorf("object %s of %d bytes", hexOf(k), obj.Size)
	}
	for _, name := range objectNames(t, backend, "blocks") {
		if len(name) != 64 || name != strings.ToLower(name) {
			t.Errorf("object name %q", name)
		}
	}

	// an empty object counts as missing, and Set replaces it
	empty := randomKey(t, 0x01)
	meta := map[string]string{"Last-Modified": time.Now().UTC().Format(http.TimeFormat)}
	if _, err := backend.PutObject("blocks", hexOf(empty), meta, bytes.NewReader(nil), 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, empty); !errors.Is(err, ErrNotFound) {
		t.Errorf("get empty: %v, want ErrNotFound", err)
	}
	if ok, err := s.Exists(ctx, empty); err != nil || ok {
		t.Errorf("exists empty: %v %v", ok, err)
	}
	if err := s.Set(ctx, empty, []byte("full")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, empty); err != nil || string(got) != "full" {
		t.Errorf("get after set over empty: %q %v", got, err)
	}

	if got := s.String(); strings.Contains(got, "secret") || !strings.Contains(got, "/blocks") {
		t.Errorf("String() = %s", got)
	}

	// a missing bucket is an error, not a missing block
	nb := openS3(t, "s3://key:secret@"+host+"/nobucket", Options{})
	if _, err := nb.Get(ctx, k); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("get from a missing bucket: %v", err)
	}
}

func TestS3StoreTLS(t *testing.T) {
	srv, backend := s3Server(t, true)
	host := srv.Listener.Addr().String()
	for _, scheme := range []string{"s3s", "s3s+tls"} {
		t.Run(scheme, func(t *testing.T) {
			s := openS3(t, scheme+"://key:secret@"+host+"/blocks", Options{HTTPClient: srv.Client()})
			suite(t, s)
		})
	}
	if len(objectNames(t, backend, "blocks")) != 2 {
		t.Errorf("objects: %v", objectNames(t, backend, "blocks"))
	}
	// s3:// speaks plain HTTP, which a TLS server refuses
	plain := openS3(t, "s3://key:secret@"+host+"/blocks", Options{HTTPClient: srv.Client()})
	if _, err := plain.Get(context.Background(), randomKey(t, 1)); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("plain HTTP to a TLS server: %v", err)
	}
}

func TestS3URLs(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"s3://key:hunter2@host:9000/bucket?region=eu-west-1", true},
		{"s3://key:hunter2@host/bucket", true},
		{"s3s://key:hunter2@10.0.0.1:443/bucket/", true},
		{"s3s+tls://key:hunter2@[::1]:9000/my.bucket-1?region=garage", true},
		{"s3://key:hunter2@host:9000", false},                         // no bucket
		{"s3://key:hunter2@host:9000/", false},                        // no bucket
		{"s3://key:hunter2@/bucket", false},                           // no host
		{"s3:///bucket", false},                                       // no host
		{"s3://:9000/bucket", false},                                  // no host
		{"s3://host:9000/bucket", false},                              // no key
		{"s3://key@host:9000/bucket", false},                          // no secret
		{"s3://key:@host:9000/bucket", false},                         // no secret
		{"s3://:hunter2@host:9000/bucket", false},                     // no key
		{"s3://key:hunter2@host:9000/bucket?region=us%20east", false}, // bad region
		{"s3://key:hunter2@host:9000/bucket?region=us/east", false},   // bad region
		{"s3://key:hunter2@host:9000/bucket?region=" + strings.Repeat("r", 100), false},
		{"s3://key:hunter2@host:9000/a/b", false},         // not a bucket name
		{"s3://key:hunter2@host:9000/Bucket_", false},     // not a bucket name
		{"s3://key:hunter2@host:9000/b", false},           // too short
		{"s3s+ssl://key:hunter2@host:9000/bucket", false}, // unknown scheme
	} {
		s, err := Open(tc.url, Options{})
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.url, err)
				continue
			}
			if strings.Contains(s.String(), "hunter2") {
				t.Errorf("%s: String() = %s", tc.url, s)
			}
			s.Close()
			continue
		}
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("%s: %v, want ErrInvalidURL", tc.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error shows the secret: %v", tc.url, err)
		}
	}
}

func TestS3StoreDown(t *testing.T) {
	// nothing listens: an error soon, bounded by the dial timeout
	port := testutil.FreePort(t)
	s := openS3(t, "s3://key:secret@127.0.0.1:"+strconv.Itoa(port)+"/blocks", Options{DialTimeout: 200 * time.Millisecond})
	start := time.Now()
	if _, err := s.Get(context.Background(), randomKey(t, 1)); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("get from a store that is down: %v", err)
	}
	if err := s.Set(context.Background(), randomKey(t, 1), []byte("x")); err == nil {
		t.Errorf("set on a store that is down succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}

	// a server that accepts and never answers: ctx ends the wait
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}()
	defer func() { l.Close(); <-done }()
	hung := openS3(t, "s3://key:secret@"+l.Addr().String()+"/blocks", Options{DialTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	if ok, err := hung.Exists(ctx, randomKey(t, 1)); err == nil {
		t.Errorf("exists on a silent server: %v", ok)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ctx of 300ms, took %v", d)
	}
}

func TestRouterS3(t *testing.T) {
	srv, backend := s3Server(t, false)
	s3URL := "s3://key:secret@" + srv.Listener.Addr().String() + "/blocks"
	dir := "dir://" + t.TempDir()
	r, err := FromRoutes([]format.Route{{Start: 0, End: 0x7f, URL: dir}, {Start: 0x80, End: 0xff, URL: s3URL}}, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	lo, hi := randomKey(t, 0x10), randomKey(t, 0x90)
	for _, k := range [][]byte{lo, hi} {
		if err := r.Set(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
		if got, err := r.Get(ctx, k); err != nil || string(got) != "v" {
			t.Errorf("get %x: %q %v", k[:1], got, err)
		}
	}
	if names := objectNames(t, backend, "blocks"); len(names) != 1 || names[0] != hexOf(hi) {
		t.Errorf("objects in s3: %v, want only %s", names, hexOf(hi))
	}
	if strings.Contains(r.String(), "secret") {
		t.Errorf("router String() = %s", r)
	}
	if _, err := r.Get(ctx, randomKey(t, 0xa0)); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing in s3 route: %v", err)
	}
}

// FuzzOpenS3 checks that Open rejects a URL only with ErrInvalidURL and that
// an opened s3 store names its bucket and hides its secret.
func FuzzOpenS3(f *testing.F) {
	for _, seed := range []string{
		"s3://key:secret@host:9000/bucket?region=eu-west-1",
		"s3s://key:secret@10.0.0.1/bucket",
		"s3s+tls://key:secret@[::1]:443/my.bucket?region=garage",
		"s3://key@host/bucket",
		"s3://key:secret@host",
		"s3://key:secret@/bucket?region=a%2Fb",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := Open(raw, Options{})
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("%q: %v, want ErrInvalidURL", raw, err)
			}
			return
		}
		defer s.Close()
		st, ok := s.(*s3Store)
		if !ok {
			return
		}
		u, _ := url.Parse(raw)
		secret, _ := u.User.Password()
		if st.bucket == "" || secret == "" {
			t.Fatalf("%q: opened with bucket %q, secret %q", raw, st.bucket, secret)
		}
		if secret != "xxxxx" && strings.Contains(s.String(), ":"+secret+"@") {
			t.Fatalf("%q: String() = %s", raw, s)
		}
	})
}
