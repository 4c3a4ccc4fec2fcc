//go:build !linux

package static

import (
	"io/fs"
	"os"
)

// versionOf is the version of the open file f. Outside Linux it is the
// size and modification time alone: a write in place that keeps both
// (within the filesystem's clock tick) is not seen.
func versionOf(f *os.File) (version, error) {
	fi, err := f.Stat()
	if err != nil {
		return version{}, err
	}
	return versionOfInfo(fi), nil
}

// stat is the version of the file name now resolves to in the root.
func (sf *Files) stat(name string) (version, error) {
	fi, err := sf.root.Stat(name)
	if err != nil {
		return version{}, err
	}
	return versionOfInfo(fi), nil
}

func versionOfInfo(fi fs.FileInfo) version {
	t := fi.ModTime().UnixNano()
	return version{size: fi.Size(), mtime: t, ctime: t, regular: fi.Mode().IsRegular(), isDirectory: fi.IsDir()}
}

// openNonblock is 0 outside Linux: a FIFO under the root blocks the
// request that opens it.
const openNonblock = 0

// fileLimit is unknown outside Linux: MaxOpenFiles defaults to 16.
func fileLimit() int { return 0 }
