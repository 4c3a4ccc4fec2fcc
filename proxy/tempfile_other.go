//go:build !linux

package proxy

import "os"

// openTemp makes a file in dir with mode 0600 and removes its name at
// once. (Only Linux has O_TMPFILE, a file that never has a name: here a
// process that dies between the two steps leaves the file behind.)
func openTemp(dir string) (*os.File, error) { return createUnlinked(dir) }
