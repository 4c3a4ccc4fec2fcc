package static

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// versionOf is the version of the open file f.
func versionOf(f *os.File) (version, error) {
	var st unix.Stat_t
	sc, err := f.SyscallConn()
	if err != nil {
		return version{}, err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil {
		return version{}, err
	}
	if serr != nil {
		return version{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: serr}
	}
	return versionOfStat(&st), nil
}

// stat is the version of the file name now resolves to, in one system
// call (fstatat from the root's descriptor). It follows symbolic links
// wherever they lead: it only ever confirms that name is still the file a
// version was read from through the root (same device and inode), never
// reads it.
func (sf *Files) stat(name string) (version, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(sf.dirfd, name, &st, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return version{}, err
		}
		return versionOfStat(&st), nil
	}
}

func versionOfStat(st *unix.Stat_t) version {
	return version{
		dev:         st.Dev,
		ino:         st.Ino,
		size:        st.Size,
		mtime:       st.Mtim.Nano(),
		ctime:       st.Ctim.Nano(),
		regular:     st.Mode&unix.S_IFMT == unix.S_IFREG,
		isDirectory: st.Mode&unix.S_IFMT == unix.S_IFDIR,
	}
}

// openNonblock opens a FIFO or a device without waiting for a peer: they
// are refused once open, never waited on.
const openNonblock = unix.O_NONBLOCK

// fileLimit is the soft RLIMIT_NOFILE, or 0 if unknown.
func fileLimit() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 0
	}
	return int(lim.Cur)
}
