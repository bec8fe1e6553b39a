package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestParsePairsBaselines(t *testing.T) {
	out := `goos: linux
BenchmarkRowCreateFS-2   	       1	1234 ns/op	         0.80 p99-ms	         9.60 baseline-p99-ms	  1000 fs/s
--- FAIL: BenchmarkRowOther
`
	rows, failed := parse(strings.NewReader(out))
	if !failed {
		t.Error("a FAIL line was not noticed")
	}
	if len(rows) != 2 {
		t.Fatalf("rows %+v, want 2", rows)
	}
	if r := rows[0]; r.name != "CreateFS" || r.unit != "p99-ms" || r.ours != 0.8 || r.base != 9.6 || !r.haveBaseline {
		t.Errorf("row 0 = %+v", r)
	}
	if r := rows[1]; r.unit != "fs/s" || r.haveBaseline {
		t.Errorf("row 1 = %+v", r)
	}
	var buf bytes.Buffer
	print(&buf, rows)
	if !strings.Contains(buf.String(), "CreateFS p99-ms  0.8   9.6       0.08") {
		t.Errorf("table:\n%s", buf.String())
	}
}
