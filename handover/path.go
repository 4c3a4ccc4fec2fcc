package handover

import (
	"errors"
	"os"
	"path/filepath"
)

// CheckPath reports why path cannot hold a hand-over socket, saying what
// it must be, or returns nil: Listen puts the socket at the path by a
// rename, which would replace a file there, in the path's directory.
func CheckPath(path string) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return errors.New("a free path or a hand-over socket (a file is there, which the socket would replace)")
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return errors.New("a path in an existing directory")
	}
	return nil
}
