package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// s3Store keeps block <hex> as object <hex> of one bucket, addressed
// path-style (host/bucket/object) so any S3 server works without DNS.
type s3Store struct {
	c      *minio.Client
	bucket string
	url    string
	own    *http.Transport // closed by Close; nil for Options.HTTPClient's
}

// defaultS3Region is the region signed for when the URL names none.
const defaultS3Region = "us-east-1"

var s3Region = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`)

// newS3 opens s3://key:secret@host[:port]/bucket[?region=r] over HTTP, or
// over HTTPS for s3s:// and s3s+tls://.
func newS3(u *url.URL, opts Options) (*s3Store, error) {
	bad := func(what string, args ...any) error {
		return fmt.Errorf("store %q: %s: %w", u.Redacted(), fmt.Sprintf(what, args...), ErrInvalidURL)
	}
	if u.Hostname() == "" {
		return nil, bad("no host")
	}
	bucket := strings.Trim(u.Path, "/")
	if bucket == "" {
		return nil, bad("no bucket")
	}
	if err := s3utils.CheckValidBucketName(bucket); err != nil {
		return nil, bad("bucket %q: %v", bucket, err)
	}
	var key, secret string
	if u.User != nil {
		key = u.User.Username()
		secret, _ = u.User.Password()
	}
	if key == "" || secret == "" {
		return nil, bad("no key:secret")
	}
	region := u.Query().Get("region")
	if region == "" {
		region = defaultS3Region
	}
	if !s3Region.MatchString(region) {
		return nil, bad("region %q", region)
	}

	s := &s3Store{bucket: bucket, url: u.Redacted()}
	var tr http.RoundTripper
	if opts.HTTPClient != nil {
		tr = opts.HTTPClient.Transport
		if tr == nil {
			tr = http.DefaultTransport
		}
	} else {
		s.own = http.DefaultTransport.(*http.Transport).Clone()
		s.own.DialContext = (&net.Dialer{Timeout: opts.dialTimeout()}).DialContext
		s.own.ResponseHeaderTimeout = 4 * opts.dialTimeout()
		s.own.MaxIdleConnsPerHost = 16
		tr = s.own
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(key, secret, ""),
		Secure:       u.Scheme != "s3",
		Transport:    tr,
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   3, // the caller's ctx bounds the rest
	})
	if err != nil {
		return nil, bad("%v", err)
	}
	s.c = c
	return s, nil
}

// missing reports whether err is S3's answer for an absent object.
func missing(err error) bool {
	return minio.ToErrorResponse(err).Code == minio.NoSuchKey
}

func (s *s3Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	name, err := hexKey(key)
	if err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err == nil {
		var data []byte
		data, err = io.ReadAll(io.LimitReader(obj, 64<<20))
		obj.Close()
		if err == nil && len(data) > 0 {
			return data, nil
		}
	}
	if err == nil || missing(err) {
		return nil, fmt.Errorf("block %x in %s: %w", key, s.url, ErrNotFound)
	}
	return nil, fmt.Errorf("block %x in %s: %w", key, s.url, err)
}

// Set uploads unconditionally: putting the same bytes again is harmless
// and saves the round trip of asking first.
func (s *s3Store) Set(ctx context.Context, key, data []byte) error {
	name, err := hexKey(key)
	if err != nil {
		return err
	}
	_, err = s.c.PutObject(ctx, s.bucket, name, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("block %x in %s: %w", key, s.url, err)
	}
	return nil
}

func (s *s3Store) Exists(ctx context.Context, key []byte) (bool, error) {
	name, err := hexKey(key)
	if err != nil {
		return false, err
	}
	info, err := s.c.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if missing(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("block %x in %s: %w", key, s.url, err)
	}
	return info.Size > 0, nil
}

func (s *s3Store) String() string { return s.url }
func (s *s3Store) Close() error {
	if s.own != nil {
		s.own.CloseIdleConnections()
	}
	return nil
}
