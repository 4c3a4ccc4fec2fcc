//go:build unix

package server

import "syscall"

// fileLimit is the soft RLIMIT_NOFILE, which Go raises to the hard limit
// at start-up.
func fileLimit() (uint64, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	return uint64(lim.Cur), true // int64 on the BSDs
}
