//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and says
// what applies.
func raiseFileLimit() string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Sprintf("nofile limit: unknown: %v", err)
	}
	was := lim.Cur
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Sprintf("nofile limit: soft %d, hard %d (not raised: %v)", was, lim.Max, err)
		}
	}
	if was != lim.Cur {
		return fmt.Sprintf("nofile limit: soft %d (raised from %d), hard %d", lim.Cur, was, lim.Max)
	}
	return fmt.Sprintf("nofile limit: soft %d, hard %d", lim.Cur, lim.Max)
}
