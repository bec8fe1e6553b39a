package zdb_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/zos-go/zos/pkg/zdb"
	"github.com/zos-go/zos/pkg/zdb/zdbtest"
)

func TestClientNamespaces(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	for _, addr := range []string{srv.TCP, srv.Unix} {
		t.Run(addr[:4], func(t *testing.T) {
			c := zdb.New(addr)
			if err := c.Connect(); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			name := "ns-" + addr[:3]
			if ok, err := c.Exist(name); err != nil || ok {
				t.Fatalf("Exist before create = %v, %v", ok, err)
			}
			if err := c.CreateNamespace(name); err != nil {
				t.Fatal(err)
			}
			if err := c.CreateNamespace(name); !errors.Is(err, zdb.ErrNamespaceExists) {
				t.Fatalf("second create: %v, want ErrNamespaceExists", err)
			}
			if ok, err := c.Exist(name); err != nil || !ok {
				t.Fatalf("Exist after create = %v, %v", ok, err)
			}
			names, err := c.Namespaces()
			if err != nil || !slices.Contains(names, name) || names[0] != "default" {
				t.Fatalf("Namespaces = %v, %v", names, err)
			}
			if err := c.NamespaceSetSize(name, 1<<30); err != nil {
				t.Fatal(err)
			}
			if err := c.NamespaceSetPassword(name, "secret"); err != nil {
				t.Fatal(err)
			}
			if err := c.NamespaceSetPublic(name, false); err != nil {
				t.Fatal(err)
			}
			p := c.(*zdb.Pool)
			info, err := p.NamespaceInfo(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			if info.DataLimitBytes != 1<<30 || !info.Password || info.Public || info.Mode != "userkey" || info.Name != name {
				t.Fatalf("info = %+v", info)
			}
			if err := c.NamespaceSetPassword(name, ""); err != nil {
				t.Fatal(err)
			}
			if info, _ := p.NamespaceInfo(context.Background(), name); info.Password {
				t.Fatal("password not cleared")
			}
			if n, err := c.DBSize(); err != nil || n != 0 {
				t.Fatalf("DBSize = %d, %v", n, err)
			}
			if err := c.DeleteNamespace(name); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteNamespace(name); !errors.Is(err, zdb.ErrNamespaceNotFound) {
				t.Fatalf("second delete: %v, want ErrNamespaceNotFound", err)
			}
			if ok, _ := c.Exist(name); ok {
				t.Fatal("namespace still exists")
			}
		})
	}
}

func TestClientData(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	admin := zdb.New(srv.TCP)
	if err := admin.Connect(); err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateNamespace("blocks"); err != nil {
		t.Fatal(err)
	}
	if err := admin.NamespaceSetPassword("blocks", "pw"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := zdb.NewPool(srv.Unix, zdb.Options{Namespace: "blocks", NamespacePassword: "pw"})
	if err := p.Connect(); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Set(ctx, []byte("k"), []byte("value")); err != nil {
		t.Fatal(err)
	}
	v, err := p.Get(ctx, []byte("k"))
	if err != nil || string(v) != "value" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if n, _ := p.DBSize(); n != 1 {
		t.Fatalf("DBSize = %d", n)
	}
	if err := p.Del(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(ctx, []byte("k")); !errors.Is(err, zdb.ErrKeyNotFound) {
		t.Fatalf("Get deleted: %v", err)
	}
	if err := p.Del(ctx, []byte("k")); !errors.Is(err, zdb.ErrKeyNotFound) {
		t.Fatalf("Del deleted: %v", err)
	}
	// wrong namespace password: the pool cannot dial
	bad := zdb.NewPool(srv.TCP, zdb.Options{Namespace: "blocks", NamespacePassword: "nope"})
	if err := bad.Connect(); !errors.Is(err, zdb.ErrPermissionDenied) {
		t.Fatalf("Connect with a wrong password: %v", err)
	}
	bad.Close()
}

func TestClientAdminPassword(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user", Admin: "adm"})
	anon := zdb.New(srv.TCP)
	if err := anon.Connect(); err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if err := anon.CreateNamespace("x"); !errors.Is(err, zdb.ErrPermissionDenied) {
		t.Fatalf("create without admin: %v", err)
	}
	admin := zdb.New("tcp://adm@127.0.0.1:" + strconv.Itoa(srv.Port))
	if err := admin.Connect(); err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateNamespace("x"); err != nil {
		t.Fatal(err)
	}
	wrong := zdb.New("tcp://bad@127.0.0.1:" + strconv.Itoa(srv.Port))
	if err := wrong.Connect(); err == nil {
		t.Fatal("connect with a wrong admin password succeeded")
	}
	wrong.Close()
}

func TestNotConnected(t *testing.T) {
	c := zdb.New("tcp://127.0.0.1:1")
	if _, err := c.Namespaces(); !errors.Is(err, zdb.ErrNotConnected) {
		t.Fatalf("err = %v", err)
	}
	if err := zdb.New("http://x").Connect(); err == nil {
		t.Fatal("bad scheme accepted")
	}
}
