//go:build unix

package handover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// The hand-over protocol, version 1, on the Unix stream socket at the
// registry's path, from the new process to the old:
//
//	new: "fastserve-handover 1\n"
//	old: an offer as one line of JSON, with the listening sockets'
//	     descriptors (SCM_RIGHTS) in the order it lists them
//	new: "serving\n", once it accepts on them; the old process then drains
//
// If the new process goes away before "serving", the old one serves on.
const (
	hello   = "fastserve-handover 1\n"
	serving = "serving\n"
	// stepTimeout bounds each step but the wait for "serving".
	stepTimeout = 5 * time.Second
	// startup bounds the new process's start: loading its certificates
	// and starting to serve.
	startup = time.Minute
	maxFDs  = 1024 + 2
)

type offer struct {
	PID       int      `json:"pid"`
	Listeners []socket `json:"listeners"`
}

// socket names a passed socket by its role (such as "https", "admin",
// "redirect") and the address it was configured with: a new process takes
// only the sockets its own configuration names alike.
type socket struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// A File is a socket this process serves and may offer: a *net.TCPListener,
// a *tune.Listener. File returns a duplicate of its descriptor.
type File interface {
	File() (*os.File, error)
}

type entry struct {
	socket
	f File
}

// Registry records the listening sockets this process serves, so that it
// can offer them to the process that replaces it, and holds the sockets
// the process it replaces offered, until this one serves. Make one with
// Open. A nil *Registry is valid and does nothing: no hand-over.
type Registry struct {
	path string
	log  *slog.Logger

	// From the process this one replaces, until Serving or Abandon.
	prev    *net.UnixConn
	prevPID int
	offered map[socket][]*os.File

	mu         sync.Mutex
	serves     []entry
	ln         *net.UnixListener // where the next process asks, once Listen ran
	made       os.FileInfo       // the socket file Listen put at path
	closed     bool
	handedOver chan struct{}
}

// Open asks the process listening at path, if any, for its sockets (Take
// them), and returns the registry that will offer this process's sockets
// on at path (Add, Listen). With no process there (a first start), or one
// that declines (it is draining), nothing is offered.
func Open(path string, log *slog.Logger) (*Registry, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &Registry{path: path, log: log, handedOver: make(chan struct{})}
	c, err := net.DialTimeout("unix", path, stepTimeout)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return r, nil
		}
		return nil, fmt.Errorf("handover: from %s: %w", path, err)
	}
	uc := c.(*net.UnixConn)
	if _, err := peerAllowed(uc, false); err != nil { // the old process offers
		uc.Close()
		return nil, fmt.Errorf("handover: from %s: %w", path, err)
	}
	if err := r.receive(uc); err != nil {
		uc.Close()
		if errors.Is(err, errDeclined) {
			return r, nil
		}
		return nil, fmt.Errorf("handover: from %s: %w", path, err)
	}
	return r, nil
}

var errDeclined = errors.New("declined")

func (r *Registry) receive(uc *net.UnixConn) error {
	_ = uc.SetDeadline(time.Now().Add(stepTimeout))
	if _, err := uc.Write([]byte(hello)); err != nil {
		return err
	}
	var (
		line []byte
		fds  []int
		buf  = make([]byte, 4096)
		oob  = make([]byte, syscall.CmsgSpace(maxFDs*4))
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
				return perr
			}
		}
		line = append(line, buf[:n]...)
		if err != nil {
			closeFDs(fds)
			if len(line) == 0 && len(fds) == 0 {
				return errDeclined // closed without an offer
			}
			return err
		}
		if len(line) > 1<<20 {
			closeFDs(fds)
			return errors.New("offer too long")
		}
	}
	var o offer
	if err := json.Unmarshal(line, &o); err != nil || len(o.Listeners) != len(fds) {
		closeFDs(fds)
		return fmt.Errorf("malformed offer (%d sockets, %d descriptors): %q", len(o.Listeners), len(fds), line)
	}
	r.prev, r.prevPID = uc, o.PID
	r.offered = make(map[socket][]*os.File)
	for i, l := range o.Listeners {
		r.offered[l] = append(r.offered[l], os.NewFile(uintptr(fds[i]), l.Name+" listener from pid "+fmt.Sprint(o.PID)))
	}
	return nil
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

// Take removes and returns the sockets the previous process offered for
// role and addr; the caller owns them.
func (r *Registry) Take(role, addr string) []*os.File {
	if r == nil {
		return nil
	}
	k := socket{Name: role, Addr: addr}
	files := r.offered[k]
	delete(r.offered, k)
	return files
}

// Add records a socket this process serves under role and addr, to be
// offered to the next process.
func (r *Registry) Add(role, addr string, f File) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serves = append(r.serves, entry{socket{Name: role, Addr: addr}, f})
}

// Serving closes the offered sockets this process did not take (the
// previous process still holds them) and tells the previous process, if
// any, that this one serves: it drains. It returns that process's pid, 0
// if there was none.
func (r *Registry) Serving() (prevPID int, err error) {
	if r == nil || r.prev == nil {
		return 0, nil
	}
	r.closeOffered()
	_ = r.prev.SetWriteDeadline(time.Now().Add(stepTimeout))
	_, err = r.prev.Write([]byte(serving))
	r.prev.Close()
	r.prev = nil
	return r.prevPID, err
}

// Abandon gives back what Open took from the previous process, which is
// told nothing and serves on (it can offer its sockets again at once),
// and listens for no successor: for a process that failed to start.
func (r *Registry) Abandon() {
	if r == nil {
		return
	}
	r.closeOffered()
	if r.prev != nil {
		r.prev.Close()
		r.prev = nil
	}
	r.Close()
}

func (r *Registry) closeOffered() {
	for _, files := range r.offered {
		for _, f := range files {
			f.Close()
		}
	}
	r.offered = nil
}

// HandedOver is closed once the next process serves on the sockets; nil
// (never ready) on a nil Registry.
func (r *Registry) HandedOver() <-chan struct{} {
	if r == nil {
		return nil
	}
	return r.handedOver
}

// Close stops offering the sockets (the process drains); it may be called
// more than once. Unless the sockets were handed over (the next process
// puts its own socket file at the path), it removes the socket file
// Listen made, if that is still the one at the path, never another.
func (r *Registry) Close() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.ln != nil {
		r.ln.Close()
	}
	select {
	case <-r.handedOver:
		return
	default:
	}
	if r.made != nil {
		if fi, err := os.Lstat(r.path); err == nil && os.SameFile(fi, r.made) {
			os.Remove(r.path)
		}
		r.made = nil
	}
}

// Listen listens at the registry's path for the process that will replace
// this one, replacing the socket file of the process this one replaced,
// and offers the sockets Add recorded to each process that asks, one at a
// time, until one of them serves on them (HandedOver).
func (r *Registry) Listen() error {
	if r == nil {
		return nil
	}
	// Bound under a temporary name and renamed into place once it is
	// 0600, so that no one connects while it has the umask's mode.
	if err := CheckPath(r.path); err != nil {
		return fmt.Errorf("handover: %s must be %w", r.path, err)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", r.path, os.Getpid())
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return fmt.Errorf("handover: socket: %w", err)
	}
	// The file may be the next process's by the time this one closes.
	ln.SetUnlinkOnClose(false)
	err = os.Chmod(tmp, 0o600)
	if err == nil {
		err = os.Rename(tmp, r.path)
	}
	if err != nil {
		ln.Close()
		os.Remove(tmp)
		return fmt.Errorf("handover: socket: %w", err)
	}
	made, _ := os.Lstat(r.path)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		ln.Close()
		if fi, err := os.Lstat(r.path); err == nil && made != nil && os.SameFile(fi, made) {
			os.Remove(r.path)
		}
		return nil
	}
	r.ln, r.made = ln, made
	r.mu.Unlock()
	go r.serve(ln)
	return nil
}

// serve offers the sockets to each process that asks, one at a time,
// until one of them serves on them.
func (r *Registry) serve(ln *net.UnixListener) {
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			return // closed
		}
		pid, err := r.offer(c)
		c.Close()
		if err != nil {
			r.log.Warn("hand-over abandoned; serving on", "err", err)
			continue
		}
		r.log.Info("handed the listeners over; draining", "to_pid", pid)
		ln.Close()
		close(r.handedOver)
		return
	}
}

// offer passes the sockets to the process on c and waits for it to serve
// on them, returning its pid.
func (r *Registry) offer(c *net.UnixConn) (int, error) {
	pid, err := peerAllowed(c, true) // the new process takes
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	closed, serves := r.closed, r.serves
	r.mu.Unlock()
	if closed {
		return 0, errors.New("draining")
	}
	_ = c.SetDeadline(time.Now().Add(stepTimeout))
	h := make([]byte, len(hello))
	if _, err := io.ReadFull(c, h); err != nil || string(h) != hello {
		return 0, fmt.Errorf("pid %d did not ask for a hand-over (%q): %v", pid, h, err)
	}
	o := offer{PID: os.Getpid()}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, e := range serves {
		f, err := e.f.File()
		if err != nil {
			return 0, err
		}
		files = append(files, f)
		o.Listeners = append(o.Listeners, e.socket)
	}
	line, _ := json.Marshal(o)
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
	_ = c.SetDeadline(time.Now().Add(startup))
	ok := make([]byte, len(serving))
	if _, err := io.ReadFull(c, ok); err != nil || string(ok) != serving {
		return 0, fmt.Errorf("pid %d took the sockets but did not serve (%q): %v", pid, ok, err)
	}
	return pid, nil
}
