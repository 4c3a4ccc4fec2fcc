//go:build !linux

package main

import "errors"

var errNoProc = errors.New("-pids needs Linux's /proc")

// cpuTicks cannot read another process's CPU time here: with no pids it
// reports zero, else an error.
func cpuTicks(pids []int) (total, user int64, err error) {
	if len(pids) > 0 {
		return 0, 0, errNoProc
	}
	return 0, 0, nil
}

// rssKiB cannot read another process's memory here: with no pids it
// reports zero, else an error.
func rssKiB(pids []int) (int64, error) {
	if len(pids) > 0 {
		return 0, errNoProc
	}
	return 0, nil
}
