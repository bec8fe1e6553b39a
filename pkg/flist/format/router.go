package format

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// zeroRouter is router.yaml of a 0-flist: pools of hash-prefix rules and a
// lookup order.
type zeroRouter struct {
	Pools  map[string]map[string]string `yaml:"pools"`
	Lookup []string                     `yaml:"lookup"`
	Cache  []string                     `yaml:"cache,omitempty"`
}

// ParseZeroRouter parses a 0-fs router.yaml into routes on the first byte of
// block ids, in lookup order. Rules on longer prefixes are widened to their
// first byte (a store that lacks a block just answers "not found"). Cache
// pools are ignored.
func ParseZeroRouter(data []byte) ([]Route, error) {
	var cfg zeroRouter
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("router.yaml: %v: %w", err, ErrCorrupt)
	}
	var routes []Route
	for _, name := range cfg.Lookup {
		pool, ok := cfg.Pools[name]
		if !ok {
			return nil, fmt.Errorf("router.yaml: lookup of unknown pool %q: %w", name, ErrCorrupt)
		}
		rules := make([]string, 0, len(pool))
		for rule := range pool {
			rules = append(rules, rule)
		}
		sort.Strings(rules)
		for _, rule := range rules {
			start, end, err := parseHashRange(rule)
			if err != nil {
				return nil, err
			}
			if pool[rule] == "" {
				return nil, fmt.Errorf("router.yaml: pool %q rule %q without destination: %w", name, rule, ErrCorrupt)
			}
			routes = append(routes, Route{Start: start, End: end, URL: pool[rule]})
		}
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("router.yaml: no route: %w", ErrCorrupt)
	}
	return routes, nil
}

// parseHashRange turns "AB", "A", "00:9F" or "000:FFF" into a first-byte
// range.
func parseHashRange(rule string) (uint8, uint8, error) {
	lo, hi, isRange := strings.Cut(strings.ToLower(strings.TrimSpace(rule)), ":")
	if !isRange {
		hi = lo
	}
	if lo == "" || len(lo) != len(hi) {
		return 0, 0, fmt.Errorf("router.yaml: hash range %q: %w", rule, ErrCorrupt)
	}
	first := func(p string, pad byte) (uint8, error) {
		if len(p) == 1 {
			p += string(pad)
		}
		b, err := hex.DecodeString(p[:2])
		if err != nil || (len(p) > 2 && !isHex(p[2:])) {
			return 0, fmt.Errorf("router.yaml: hash range %q: %w", rule, ErrCorrupt)
		}
		return b[0], nil
	}
	start, err := first(lo, '0')
	if err != nil {
		return 0, 0, err
	}
	end, err := first(hi, 'f')
	if err != nil {
		return 0, 0, err
	}
	if start > end {
		return 0, 0, fmt.Errorf("router.yaml: hash range %q is empty: %w", rule, ErrCorrupt)
	}
	return start, end, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// zeroRouterYAML renders routes as a router.yaml with one pool per route.
func zeroRouterYAML(routes []Route) ([]byte, error) {
	cfg := zeroRouter{Pools: map[string]map[string]string{}}
	for i, r := range routes {
		name := fmt.Sprintf("store%d", i)
		cfg.Pools[name] = map[string]string{fmt.Sprintf("%02x:%02x", r.Start, r.End): r.URL}
		cfg.Lookup = append(cfg.Lookup, name)
	}
	return yaml.Marshal(cfg)
}
