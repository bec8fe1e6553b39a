// Command benchtable runs the benchmark rows of make bench and prints one
// table: metric, ours, baseline, ratio.
//
// Rows are benchmarks named BenchmarkRow*, run once each (-benchtime=1x): one
// iteration performs the whole measurement and reports its figures with
// b.ReportMetric. A unit "u" is our figure; the unit "baseline-u" reported by
// the same benchmark is the baseline measured in the same run. The ratio is
// ours/baseline.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
)

type row struct {
	name, unit   string
	ours, base   float64
	haveBaseline bool
}

func main() {
	pkgs := flag.String("pkgs", "./...", "packages to benchmark")
	filter := flag.String("bench", "^BenchmarkRow", "benchmark regexp")
	timeout := flag.String("timeout", "60m", "go test timeout")
	tags := flag.String("tags", "", "build tags (e2e adds the development grid rows)")
	flag.Parse()

	args := []string{"test", "-run", "^$", "-bench", *filter, "-benchtime=1x", "-timeout", *timeout}
	if *tags != "" {
		args = append(args, "-tags", *tags)
	}
	args = append(args, strings.Fields(*pkgs)...)
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rows, failed := parse(io.TeeReader(out, os.Stderr))
	werr := cmd.Wait()
	print(os.Stdout, rows)
	if werr != nil || failed {
		fmt.Fprintln(os.Stderr, "benchtable: some benchmarks failed or were skipped; see above")
		os.Exit(1)
	}
}

// parse reads go test -bench output and returns the rows in order.
func parse(r io.Reader) ([]row, bool) {
	var rows []row
	failed := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "FAIL") {
			failed = true
		}
		if !strings.HasPrefix(line, "BenchmarkRow") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkRow")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // GOMAXPROCS suffix
		}
		vals := map[string]float64{}
		var units []string
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			u := f[i+1]
			if u == "ns/op" || u == "B/op" || u == "allocs/op" {
				continue
			}
			vals[u] = v
			units = append(units, u)
		}
		for _, u := range units {
			if strings.HasPrefix(u, "baseline-") {
				continue
			}
			b, ok := vals["baseline-"+u]
			rows = append(rows, row{name: name, unit: u, ours: vals[u], base: b, haveBaseline: ok})
		}
	}
	return rows, failed
}

func print(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tours\tbaseline\tratio (ours/baseline)")
	for _, r := range rows {
		base, ratio := "-", "-"
		if r.haveBaseline {
			base = format(r.base)
			if r.base != 0 {
				ratio = fmt.Sprintf("%.2f", r.ours/r.base)
			}
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\n", r.name, r.unit, format(r.ours), base, ratio)
	}
	tw.Flush()
}

func format(v float64) string {
	return strconv.FormatFloat(v, 'g', 4, 64)
}
