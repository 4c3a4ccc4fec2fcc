package handover

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// peerAllowed lets a process of the same user, or root, take the sockets,
// and returns its pid.
func peerAllowed(c *net.UnixConn) (int, error) {
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
	if uid := os.Getuid(); int(cred.Uid) != uid && cred.Uid != 0 {
		return 0, fmt.Errorf("pid %d of uid %d may not take the sockets of uid %d", cred.Pid, cred.Uid, uid)
	}
	return int(cred.Pid), nil
}
