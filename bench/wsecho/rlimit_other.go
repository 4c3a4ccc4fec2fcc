//go:build !unix

package main

// raiseFileLimit says that this platform has no RLIMIT_NOFILE to raise.
func raiseFileLimit() string {
	return "nofile limit: none on this platform (not raised)"
}
