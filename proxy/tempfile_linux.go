package proxy

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openTemp makes a file in dir that has no name (O_TMPFILE, mode 0600):
// its space is freed when it is closed, or when the process dies. On a
// file system without O_TMPFILE, it makes a named file and removes the
// name at once.
func openTemp(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	switch {
	case err == nil:
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(request body)")), nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EINVAL):
		return createUnlinked(dir)
	}
	return nil, &os.PathError{Op: "open", Path: dir, Err: err}
}
