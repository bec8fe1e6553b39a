package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// zdbStore speaks the redis protocol to a 0-db (or redis, ardb): GET, SET
// and EXISTS on the raw block id, after SELECT <namespace> [password] on
// every new connection when a namespace other than "default" is named,
// or AUTH <password> otherwise.
type zdbStore struct {
	c   *redis.Client
	url string
}

func newZDB(u *url.URL, opts Options) (*zdbStore, error) {
	o := &redis.Options{
		Protocol:        2,
		DisableIdentity: true,
		DialTimeout:     opts.dialTimeout(),
		ReadTimeout:     opts.dialTimeout(),
		WriteTimeout:    opts.dialTimeout(),
		MaxRetries:      2,
		PoolSize:        8,

		ContextTimeoutEnabled: true,
	}
	var password string
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			password = p
		} else {
			password = u.User.Username() // 0-fs form: zdb://password@host
		}
	}
	namespace := strings.Trim(u.Path, "/")
	if u.Host == "" {
		if u.Path == "" {
			return nil, fmt.Errorf("store %q: no host nor socket: %w", u.Redacted(), ErrInvalidURL)
		}
		o.Network, o.Addr, namespace = "unix", u.Path, u.Query().Get("ns")
	} else {
		o.Network, o.Addr = "tcp", u.Host
		if u.Port() == "" {
			o.Addr = u.Host + ":9900"
		}
	}
	if strings.Contains(namespace, "/") {
		return nil, fmt.Errorf("store %q: namespace %q: %w", u.Redacted(), namespace, ErrInvalidURL)
	}
	if namespace != "" && namespace != "default" {
		o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
			args := []any{"SELECT", namespace}
			if password != "" {
				args = append(args, password)
			}
			return cn.Do(ctx, args...).Err()
		}
	} else if password != "" {
		o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
			return cn.Do(ctx, "AUTH", password).Err()
		}
	}
	return &zdbStore{c: redis.NewClient(o), url: u.Redacted()}, nil
}

func (z *zdbStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	data, err := z.c.Get(ctx, string(key)).Bytes()
	if errors.Is(err, redis.Nil) || (err == nil && len(data) == 0) {
		return nil, fmt.Errorf("block %x in %s: %w", key, z.url, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("block %x in %s: %w", key, z.url, err)
	}
	return data, nil
}

func (z *zdbStore) Set(ctx context.Context, key, data []byte) error {
	if ok, err := z.Exists(ctx, key); err == nil && ok {
		return nil
	}
	// 0-db answers a nil bulk when the value is unchanged; go-redis
	// reports that as redis.Nil, which is a success here.
	if err := z.c.Do(ctx, "SET", string(key), data).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("block %x in %s: %w", key, z.url, err)
	}
	return nil
}

func (z *zdbStore) Exists(ctx context.Context, key []byte) (bool, error) {
	n, err := z.c.Exists(ctx, string(key)).Result()
	if err != nil {
		return false, fmt.Errorf("block %x in %s: %w", key, z.url, err)
	}
	return n > 0, nil
}

func (z *zdbStore) String() string { return z.url }
func (z *zdbStore) Close() error   { return z.c.Close() }
