// Package netnstest gives a test two network namespaces joined by a veth
// link, so that it can run real TCP between them and make one end vanish
// under a live connection. It needs root and iproute2; without them the
// test is skipped. The root namespace is left untouched.
package netnstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// The addresses of the two ends of the link, on the link-local network
// 169.254.93.0/30, which lives only inside the pair's namespaces.
const (
	AddrA = "169.254.93.1"
	AddrB = "169.254.93.2"
)

// Hardware addresses of the two ends: locally administered, so that each
// namespace can hold a permanent neighbour entry for the other.
const (
	macA = "02:66:73:00:00:01"
	macB = "02:66:73:00:00:02"
)

// A Pair is two network namespaces, A and B, joined by a veth link whose
// ends are LinkA (address AddrA) in A and LinkB (address AddrB) in B.
// Each namespace holds a permanent neighbour entry for the other end, so
// no ARP runs between them: once an end has vanished, what is sent to it
// is lost without the kernel ever reporting it unreachable (an ARP failure
// would, and TCP would then time out with EHOSTUNREACH, not ETIMEDOUT).
type Pair struct {
	A, B         string // namespace names, as in /var/run/netns
	LinkA, LinkB string // the veth ends' interface names, in A and in B
}

var seq atomic.Uint64

// New creates a Pair with both links and both loopbacks up, and deletes it
// when the test ends. It skips the test when not run as root, when the ip
// command (iproute2) is missing, or when a namespace cannot be created
// (as in a container without CAP_SYS_ADMIN).
func New(t testing.TB) *Pair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netnstest: needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("netnstest: needs the ip command (iproute2): %v", err)
	}
	base := fmt.Sprintf("fs-%d-%d", os.Getpid(), seq.Add(1))
	p := &Pair{A: base + "-a", B: base + "-b", LinkA: "veth-a", LinkB: "veth-b"}

	if out, err := ip("netns", "add", p.A); err != nil {
		t.Skipf("netnstest: cannot create a network namespace: ip netns add %s: %v: %s", p.A, err, out)
	}
	t.Cleanup(func() { p.delete(t, p.A) })
	if out, err := ip("netns", "add", p.B); err != nil {
		t.Skipf("netnstest: cannot create a network namespace: ip netns add %s: %v: %s", p.B, err, out)
	}
	t.Cleanup(func() { p.delete(t, p.B) })

	// The link is made inside A with its peer put straight into B, so
	// neither end ever appears in the root namespace.
	p.Exec(t, p.A, "link", "add", p.LinkA, "address", macA, "type", "veth",
		"peer", "name", p.LinkB, "address", macB, "netns", p.B)
	for _, end := range []struct{ ns, link, addr, peer, peerMAC string }{
		{p.A, p.LinkA, AddrA, AddrB, macB},
		{p.B, p.LinkB, AddrB, AddrA, macA},
	} {
		p.Exec(t, end.ns, "addr", "add", end.addr+"/30", "dev", end.link)
		p.Exec(t, end.ns, "neigh", "replace", end.peer, "lladdr", end.peerMAC, "dev", end.link, "nud", "permanent")
		p.Exec(t, end.ns, "link", "set", "lo", "up")
		p.Exec(t, end.ns, "link", "set", end.link, "up")
	}
	return p
}

// delete removes the namespace ns; its sockets and interfaces go with it
// once the last file descriptor on them is closed.
func (p *Pair) delete(t testing.TB, ns string) {
	if out, err := ip("netns", "delete", ns); err != nil {
		t.Errorf("netnstest: ip netns delete %s: %v: %s", ns, err, out)
	}
}

// Exec runs "ip -n ns args..." and fails the test, with the command's
// output, if it fails.
func (p *Pair) Exec(t testing.TB, ns string, args ...string) {
	t.Helper()
	args = append([]string{"-n", ns}, args...)
	if out, err := ip(args...); err != nil {
		t.Fatalf("netnstest: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func ip(args ...string) ([]byte, error) {
	return exec.Command("ip", args...).CombinedOutput()
}

// Vanish makes the end in ns (p.A or p.B) drop off the network without a
// word, as a host that loses power does: it takes in no more packets and
// sends none, and no FIN or RST leaves it. The other end's link stays up,
// so what that end sends leaves it normally and is lost.
func (p *Pair) Vanish(t testing.TB, ns string) {
	t.Helper()
	// The end's address is deleted: packets for it are then not for this
	// host and, forwarding being off, are dropped unanswered, and the end
	// has no route to send on. Taking its link down instead would also
	// drop the carrier of the other veth end, whose transmits then fail
	// with ENOBUFS for about a second, until the kernel's link watcher
	// catches up; TCP takes that for local congestion and holds off its
	// retransmission timer, and TCP_USER_TIMEOUT with it (measured: 3.48 s
	// instead of 2.23 s for a 2 s user timeout).
	switch ns {
	case p.A:
		p.Exec(t, ns, "addr", "del", AddrA+"/30", "dev", p.LinkA)
	case p.B:
		p.Exec(t, ns, "addr", "del", AddrB+"/30", "dev", p.LinkB)
	default:
		t.Fatalf("netnstest: namespace %q is not %q or %q", ns, p.A, p.B)
	}
}

// Do runs f on the calling goroutine with its OS thread in the network
// namespace ns (p.A or p.B). Sockets that f creates, with net.Dial or
// net.Listen, belong to ns and stay there after Do returns, wherever they
// are used from. Goroutines that f starts run in the caller's namespace.
// If the thread cannot be put back in its own namespace, Do returns an
// error and leaves the goroutine locked to the thread, so that the
// runtime discards the thread when the goroutine ends.
func (p *Pair) Do(ns string, f func() error) (err error) {
	if ns != p.A && ns != p.B {
		return fmt.Errorf("netnstest: namespace %q is not %q or %q", ns, p.A, p.B)
	}
	runtime.LockOSThread()
	unlock := true
	defer func() {
		if unlock {
			runtime.UnlockOSThread()
		}
	}()

	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netnstest: open this thread's network namespace: %w", err)
	}
	defer unix.Close(self)
	target, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netnstest: open network namespace %s: %w", ns, err)
	}
	defer unix.Close(target)

	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netnstest: enter network namespace %s: %w", ns, err)
	}
	// Restored in a deferred call so that it also happens when f panics
	// or calls t.FailNow.
	defer func() {
		if rerr := unix.Setns(self, unix.CLONE_NEWNET); rerr != nil {
			unlock = false // the thread is in the wrong namespace: let it die with the goroutine
			err = errors.Join(err, fmt.Errorf("netnstest: return from network namespace %s: %w", ns, rerr))
		}
	}()
	return f()
}
