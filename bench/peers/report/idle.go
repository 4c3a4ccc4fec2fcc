package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// printIdle prints run.sh's table of memory per idle connection, one row per
// server, then the descriptor limits idleconns reported.
func printIdle(w io.Writer, tests []Idle) {
	if len(tests) == 0 {
		return
	}
	settle, later := tests[0].Settle, tests[0].SettleLater
	fmt.Fprintf(w, "| server | RSS before | RSS with the connections (+%g s) | KiB per connection, +%g s | KiB per connection, +%g s | open fds before -> after |\n",
		settle, settle, later)
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	var limits []string
	for _, t := range tests {
		settled, later := t.perConn()
		fmt.Fprintf(w, "| %s | %.1f MiB | %.1f MiB | **%.1f** | **%.1f** | %d -> %d |\n",
			t.Server, float64(t.RSSBefore)/1024, float64(t.RSS)/1024, settled, later, t.FDsBefore, t.FDs)
		limits = append(limits, t.Nofile)
	}
	slices.Sort(limits)
	fmt.Fprintf(w, "\nidleconns: %s\n", strings.Join(slices.Compact(limits), ";"))
}

// printIdleLine prints the line run.sh shows after each idle test.
func printIdleLine(w io.Writer, t Idle) {
	settled, later := t.perConn()
	fmt.Fprintf(w, "idle  %-9s RSS %7.1f -> %7.1f MiB  %5.1f KiB per connection (%5.1f later)  fds %d -> %d\n",
		t.Server, float64(t.RSSBefore)/1024, float64(t.RSS)/1024, settled, later, t.FDsBefore, t.FDs)
}
