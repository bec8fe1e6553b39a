package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/identity"
)

// app holds the global flags and what commands share.
type app struct {
	explorerURL  string
	identityPath string
	output       string
	timeout      time.Duration
	out, errOut  io.Writer
}

func (a *app) client() *explorer.Client {
	return explorer.NewClient(a.explorerURL, &http.Client{Timeout: a.timeout})
}

func (a *app) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, a.timeout)
}

// me is the loaded user identity.
type me struct {
	id uint64
	sk ed25519.PrivateKey
}

var errNoIdentity = errors.New("no identity: run `zos identity new --name <name>`")

// identity loads the registered identity.
func (a *app) identity() (me, error) {
	f, err := identity.ReadSeedFile(a.identityPath)
	if errors.Is(err, fs.ErrNotExist) {
		return me{}, fmt.Errorf("%s: %w: %w", a.identityPath, errNoIdentity, explorer.ErrNotFound)
	}
	if err != nil {
		return me{}, fmt.Errorf("identity %s: %w", a.identityPath, err)
	}
	if f.ThreebotID <= 0 {
		return me{}, fmt.Errorf("identity %s is not registered on an explorer: %w", a.identityPath, explorer.ErrNotFound)
	}
	return me{id: uint64(f.ThreebotID), sk: f.KeyPair().PrivateKey()}, nil
}

// print writes v as JSON or YAML, or calls table for the table format.
func (a *app) print(v any, table func(w *tabwriter.Writer)) error {
	switch a.output {
	case "json":
		e := json.NewEncoder(a.out)
		e.SetIndent("", "  ")
		return e.Encode(v)
	case "yaml":
		// Through JSON, so YAML keys are the JSON field names.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var generic any
		if err := d.Decode(&generic); err != nil {
			return err
		}
		out, err := yaml.Marshal(numbers(generic))
		if err != nil {
			return err
		}
		_, err = a.out.Write(out)
		return err
	}
	w := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

// numbers turns the json.Numbers of a decoded document into integers (or
// floats), so YAML prints 1700000000 and not 1.7e+09.
func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return u
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, x := range v {
			v[k] = numbers(x)
		}
	case []any:
		for i, x := range v {
			v[i] = numbers(x)
		}
	}
	return v
}

func gib(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/float64(1<<30)) }

func ago(unix int64) string {
	if unix == 0 {
		return "-"
	}
	return time.Since(time.Unix(unix, 0)).Round(time.Second).String()
}
