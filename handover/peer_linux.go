package handover

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// peerAllowed checks the process on the other end of c, and returns its
// pid: one that takes this process's sockets (taking) must be of the same
// user, or root; one that offers its sockets to this process must be of
// the same user, unless this process is root (which may take any user's
// sockets, as the README says).
func peerAllowed(c *net.UnixConn, taking bool) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	uid := os.Getuid()
	switch {
	case int(cred.Uid) == uid:
	case taking && cred.Uid == 0:
	case !taking && uid == 0:
	case taking:
		return 0, fmt.Errorf("pid %d of uid %d may not take the sockets of uid %d", cred.Pid, cred.Uid, uid)
	default:
		return 0, fmt.Errorf("pid %d of uid %d may not hand its sockets to uid %d (only to the same user, or root)", cred.Pid, cred.Uid, uid)
	}
	return int(cred.Pid), nil
}
