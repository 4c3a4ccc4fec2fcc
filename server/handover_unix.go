//go:build unix

package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// The hand-over protocol, version 1, on the Unix stream socket at
// Config.Handover, from the new process to the old:
//
//	new: "fastserve-handover 1\n"
//	old: a handoverOffer as one line of JSON, with the listening sockets'
//	     descriptors (SCM_RIGHTS) in the order it lists them
//	new: "serving\n", once it accepts on them; the old process then drains
//
// If the new process goes away before "serving", the old one serves on.
const (
	handoverHello   = "fastserve-handover 1\n"
	handoverServing = "serving\n"
	// handoverTimeout bounds each step but the wait for "serving".
	handoverTimeout = 5 * time.Second
	// handoverStartup bounds the new process's start: loading its
	// certificates and starting to serve.
	handoverStartup = time.Minute
	maxHandoverFDs  = 1024 + 2
)

type handoverOffer struct {
	PID       int                `json:"pid"`
	Listeners []handoverListener `json:"listeners"`
}

// handoverListener names a passed socket by its role ("https", "admin",
// "redirect") and the address it was configured with: a new process takes
// only the sockets its own configuration names alike.
type handoverListener struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// inherited holds the sockets a new process got from the old one, until it
// serves on them.
type inherited struct {
	conn  *net.UnixConn
	pid   int
	files map[handoverListener][]*os.File
}

// requestHandover asks the process listening at path for its sockets. It
// returns nil if no process is listening there (a first start) or the one
// there declines (it is draining).
func requestHandover(path string) (*inherited, error) {
	c, err := net.DialTimeout("unix", path, handoverTimeout)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil
		}
		return nil, fmt.Errorf("server: hand-over from %s: %w", path, err)
	}
	uc := c.(*net.UnixConn)
	if _, err := peerAllowed(uc); err != nil {
		uc.Close()
		return nil, fmt.Errorf("server: hand-over from %s: %w", path, err)
	}
	inh, err := receiveOffer(uc)
	if err != nil {
		uc.Close()
		if errors.Is(err, errDeclined) {
			return nil, nil
		}
		return nil, fmt.Errorf("server: hand-over from %s: %w", path, err)
	}
	return inh, nil
}

var errDeclined = errors.New("declined")

func receiveOffer(uc *net.UnixConn) (*inherited, error) {
	_ = uc.SetDeadline(time.Now().Add(handoverTimeout))
	if _, err := uc.Write([]byte(handoverHello)); err != nil {
		return nil, err
	}
	var (
		line []byte
		fds  []int
		buf  = make([]byte, 4096)
		oob  = make([]byte, syscall.CmsgSpace(maxHandoverFDs*4))
	)
	for !bytes.HasSuffix(line, []byte("\n")) {
		n, oobn, flags, _, err := uc.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			got, perr := parseRights(oob[:oobn])
			fds = append(fds, got...)
			if perr == nil && flags&syscall.MSG_CTRUNC != 0 {
				perr = errors.New("too many descriptors")
			}
			if perr != nil {
				closeFDs(fds)
				return nil, perr
			}
		}
		line = append(line, buf[:n]...)
		if err != nil {
			closeFDs(fds)
			if len(line) == 0 && len(fds) == 0 {
				return nil, errDeclined // closed without an offer
			}
			return nil, err
		}
		if len(line) > 1<<20 {
			closeFDs(fds)
			return nil, errors.New("offer too long")
		}
	}
	var offer handoverOffer
	if err := json.Unmarshal(line, &offer); err != nil || len(offer.Listeners) != len(fds) {
		closeFDs(fds)
		return nil, fmt.Errorf("malformed offer (%d sockets, %d descriptors): %q", len(offer.Listeners), len(fds), line)
	}
	inh := &inherited{conn: uc, pid: offer.PID, files: make(map[handoverListener][]*os.File)}
	for i, l := range offer.Listeners {
		inh.files[l] = append(inh.files[l], os.NewFile(uintptr(fds[i]), l.Name+" listener from pid "+fmt.Sprint(offer.PID)))
	}
	return inh, nil
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		got, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

// take removes and returns the sockets offered for a role and address.
func (inh *inherited) take(name, addr string) []*os.File {
	if inh == nil {
		return nil
	}
	k := handoverListener{Name: name, Addr: addr}
	fs := inh.files[k]
	delete(inh.files, k)
	return fs
}

// close closes the sockets not taken (the old process still holds them)
// and, if serving, tells the old process to drain.
func (inh *inherited) close(serving bool) error {
	if inh == nil {
		return nil
	}
	for _, fs := range inh.files {
		for _, f := range fs {
			f.Close()
		}
	}
	inh.files = nil
	var err error
	if serving {
		_ = inh.conn.SetWriteDeadline(time.Now().Add(handoverTimeout))
		_, err = inh.conn.Write([]byte(handoverServing))
	}
	inh.conn.Close()
	return err
}

// listenHandover listens at Config.Handover for the process that will
// replace this one, replacing the socket file of the process this one
// replaced.
func (s *Server) listenHandover() error {
	path := s.cfg.Handover
	// Bound under a temporary name and renamed into place once it is
	// 0600, so that no one connects while it has the umask's mode.
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return fmt.Errorf("server: hand-over socket: %w", err)
	}
	// The file may be the next process's by the time this one closes.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		ln.Close()
		os.Remove(tmp)
		return fmt.Errorf("server: hand-over socket: %w", err)
	}
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.handoverLn = ln
	s.mu.Unlock()
	go s.serveHandover(ln)
	return nil
}

// serveHandover offers the listening sockets to each process that asks,
// one at a time, until one of them serves on them.
func (s *Server) serveHandover(ln *net.UnixListener) {
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			return // closed by Shutdown
		}
		pid, err := s.offer(c)
		c.Close()
		if err != nil {
			s.log.Warn("hand-over abandoned; serving on", "err", err)
			continue
		}
		s.log.Info("handed the listeners over; draining", "to_pid", pid)
		ln.Close()
		close(s.handedOver)
		return
	}
}

// offer passes the listening sockets to the process on c and waits for it
// to serve on them, returning its pid.
func (s *Server) offer(c *net.UnixConn) (int, error) {
	pid, err := peerAllowed(c)
	if err != nil {
		return 0, err
	}
	if s.draining.Load() {
		return 0, errors.New("draining")
	}
	_ = c.SetDeadline(time.Now().Add(handoverTimeout))
	hello := make([]byte, len(handoverHello))
	if _, err := io.ReadFull(c, hello); err != nil || string(hello) != handoverHello {
		return 0, fmt.Errorf("pid %d did not ask for a hand-over (%q): %v", pid, hello, err)
	}
	var offer handoverOffer
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	offer.PID = os.Getpid()
	for _, l := range s.lns {
		f, err := l.tl.File()
		if err != nil {
			return 0, err
		}
		files = append(files, f)
		offer.Listeners = append(offer.Listeners, handoverListener{Name: "https", Addr: s.cfg.Addr})
	}
	for _, p := range s.plain {
		f, err := p.tl.File()
		if err != nil {
			return 0, err
		}
		files = append(files, f)
		offer.Listeners = append(offer.Listeners, handoverListener{Name: p.name, Addr: p.addr})
	}
	line, _ := json.Marshal(offer)
	fds := make([]int, len(files))
	for i, f := range files {
		// Not f.Fd(): it would make the socket blocking, and the
		// descriptor shares that flag with the listener this process
		// still accepts on (a blocking accept(2) that Close cannot end).
		// The files stay open until the message is sent.
		rc, err := f.SyscallConn()
		if err != nil {
			return 0, err
		}
		if err := rc.Control(func(fd uintptr) { fds[i] = int(fd) }); err != nil {
			return 0, err
		}
	}
	if _, _, err := c.WriteMsgUnix(append(line, '\n'), syscall.UnixRights(fds...), nil); err != nil {
		return 0, fmt.Errorf("sending the sockets to pid %d: %w", pid, err)
	}
	_ = c.SetDeadline(time.Now().Add(handoverStartup))
	ok := make([]byte, len(handoverServing))
	if _, err := io.ReadFull(c, ok); err != nil || string(ok) != handoverServing {
		return 0, fmt.Errorf("pid %d took the sockets but did not serve (%q): %v", pid, ok, err)
	}
	return pid, nil
}
