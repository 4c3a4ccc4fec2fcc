package static

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

var (
	errIsDir    = errors.New("is a directory")
	errLarge    = errors.New("over MaxMemoryFileBytes: streamed")
	errChanging = errors.New("file changed while it was read, three times over")
	errChanged  = errors.New("file changed while it was sent")
	errBusy     = errors.New("MaxOpenFiles files are being sent")
	errClosed   = errors.New("static: Files closed")
)

// version identifies one version of a file: what a stat says of it.
type version struct {
	dev, ino    uint64
	size        int64
	mtime       int64 // ns
	ctime       int64 // ns; mtime where the platform has none
	regular     bool
	isDirectory bool
}

// settleAfter is how long after its last change a file's stat is trusted
// to tell its versions apart. A write sets the file's times when it
// starts, before it copies its bytes, so a read that overlaps the copy
// sees the same stat before and after it; a version changed this
// recently is therefore read twice and the bytes compared, and once kept
// it is looked at on every request, and read again once it has settled
// (as Git treats "racily clean" files).
const settleAfter = time.Second

// revalidate is how long a settled version kept in memory is served
// before the file is looked at again (one stat): a change shows within it.
const revalidate = 100 * time.Millisecond

// entryOverhead is what an entry costs beyond its bytes, for CacheBytes.
const entryOverhead = 640

// entry is one version of a file read whole, with what its answers need.
type entry struct {
	name     string
	ver      version
	content  []byte
	ctype    []byte
	etag     []byte // "mtime-size", quoted
	modified []byte // Last-Modified
	modTime  time.Time
	zip      bool // a textual type worth compressing
	settled  bool // unchanged for settleAfter when read
	used     atomic.Bool
	checked  atomic.Int64 // when the file was last seen to be this version, in ns

	// Under Files.mu: where e is in Files.ring (-1: not kept), and the
	// bytes counted for it in Files.size.
	slot int
	cost int64

	variants [len(encodings)]variant
}

// variant is an entry's content in one encoding, made on first use.
type variant struct {
	once sync.Once
	body []byte // nil: not smaller than the original, sent as it is
	etag []byte
}

// opened is what a request serves: an entry in memory, or a large file
// to be sent as it is read.
type opened struct {
	e *entry
	s *fileStream // a file over MaxMemoryFileBytes: e has its headers, no content
}

// open finds the current version of name: from memory when the file was
// that version within the last revalidate, otherwise read from disk.
func (sf *Files) open(name []byte) (opened, error) {
	if sf.closed.Load() {
		return opened{}, errClosed
	}
	sf.mu.RLock()
	e := sf.entries[string(name)]
	sf.mu.RUnlock()
	if e != nil {
		now := time.Now().UnixNano()
		if e.settled && now-e.checked.Load() < int64(revalidate) {
			e.use()
			return opened{e: e}, nil
		}
		v, err := sf.stat(e.name)
		if err == nil && v == e.ver && (e.settled || now-v.ctime < int64(settleAfter)) {
			e.checked.Store(now)
			e.use()
			return opened{e: e}, nil
		}
		sf.drop(e) // changed, or settled since it was read: read it again
	}
	key := string(name)
	r, err, _ := sf.flight.Do(key, func() (any, error) { return sf.load(key) })
	if errors.Is(err, errLarge) {
		return sf.openStream(key)
	}
	if err != nil {
		return opened{}, err
	}
	return opened{e: r.(*entry)}, nil
}

// use marks e used since the clock hand last passed it.
func (e *entry) use() {
	if !e.used.Load() {
		e.used.Store(true)
	}
}

// openFile opens name under the root, without blocking on a FIFO or a
// device, and says which version it is; only regular files are served.
func (sf *Files) openFile(name string) (*os.File, version, error) {
	f, err := sf.root.OpenFile(name, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, version{}, err
	}
	v, err := versionOf(f)
	switch {
	case err != nil:
	case v.isDirectory:
		err = errIsDir
	case !v.regular:
		err = os.ErrNotExist
	}
	if err != nil {
		f.Close()
		return nil, version{}, err
	}
	return f, v, nil
}

// load reads name whole, between two stats that agree (and, for a
// version that has not settled, twice, comparing the bytes), and keeps
// it. Concurrent requests for one name share one load (Files.flight).
func (sf *Files) load(name string) (*entry, error) {
	for attempt := 0; attempt < 3; attempt++ {
		f, before, err := sf.openFile(name)
		if err != nil {
			return nil, err
		}
		if before.size > int64(sf.maxMem) {
			f.Close()
			return nil, errLarge
		}
		content, err := readVersion(f, before, nil)
		settled := time.Since(time.Unix(0, before.ctime)) >= settleAfter
		if err == nil && !settled {
			// Changed within settleAfter: a write may still be copying
			// its bytes under an unchanged stat. A second read must
			// find the same bytes.
			var again []byte
			if again, err = readVersion(f, before, make([]byte, before.size)); err == nil && !bytes.Equal(content, again) {
				err = errChanged
			}
		}
		f.Close()
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			return nil, err
		}
		e := &entry{settled: settled, slot: -1}
		sf.describe(e, name, before, content)
		e.checked.Store(time.Now().UnixNano())
		sf.keep(e)
		return e, nil
	}
	return nil, errChanging
}

// readVersion reads f, of version v, whole into buf (made if nil), and
// fails with errChanged unless f is still v afterwards, with no more bytes.
func readVersion(f *os.File, v version, buf []byte) ([]byte, error) {
	if buf == nil {
		buf = make([]byte, v.size)
	}
	if _, err := f.ReadAt(buf, 0); err != nil {
		if err == io.EOF {
			return nil, errChanged // shrunk
		}
		return nil, err
	}
	var one [1]byte
	if n, _ := f.ReadAt(one[:], v.size); n > 0 {
		return nil, errChanged // grew
	}
	after, err := versionOf(f)
	if err != nil {
		return nil, err
	}
	if after != v {
		return nil, errChanged
	}
	return buf, nil
}

// openStream opens a large file to send as it is read, within
// MaxOpenFiles.
func (sf *Files) openStream(name string) (opened, error) {
	select {
	case sf.streams <- struct{}{}:
	default:
		return opened{}, errBusy
	}
	f, v, err := sf.openFile(name)
	if err != nil {
		<-sf.streams
		return opened{}, err
	}
	e := &entry{slot: -1}
	sf.describe(e, name, v, nil)
	return opened{e: e, s: &fileStream{f: f, ver: v, left: v.size, slots: sf.streams}}, nil
}

// describe fills in e's headers for version v of name.
func (sf *Files) describe(e *entry, name string, v version, content []byte) {
	e.name, e.ver, e.content = name, v, content
	ctype := mime.TypeByExtension(filepath.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream" // as nginx's default_type: never sniffed
	}
	e.ctype = []byte(ctype)
	e.zip = sf.compress && content != nil && len(content) >= minCompressBytes && compressible(ctype)
	e.etag = strconv.AppendInt(append(strconv.AppendInt([]byte(`"`), v.mtime, 16), '-'), v.size, 16)
	e.etag = append(e.etag, '"')
	e.modTime = time.Unix(0, v.mtime).UTC().Truncate(time.Second)
	e.modified = fasthttp.AppendHTTPDate(nil, e.modTime)
}

// keep adds e to the cache (replacing the version before it), then
// sweeps it back under CacheBytes.
func (sf *Files) keep(e *entry) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if old := sf.entries[e.name]; old != nil {
		sf.remove(old)
	}
	e.cost = int64(len(e.content)+2*len(e.name)) + entryOverhead
	e.slot = len(sf.ring)
	sf.ring = append(sf.ring, e)
	sf.entries[e.name] = e
	sf.size.Add(e.cost)
	e.used.Store(true)
	sf.sweep()
}

// sweep drops entries until the cache is under CacheBytes: a CLOCK hand
// goes round the ring, sparing once each entry used since it last passed
// (clearing the mark), dropping the others. sf.mu is held.
func (sf *Files) sweep() {
	for n := 0; sf.size.Load() > sf.cacheBytes && len(sf.ring) > 0 && n < 2*len(sf.ring)+1; n++ {
		if sf.hand >= len(sf.ring) {
			sf.hand = 0
		}
		e := sf.ring[sf.hand]
		if e.used.Swap(false) {
			sf.hand++
			continue
		}
		sf.remove(e) // the last entry moves into the hand's slot: looked at next
	}
}

// remove takes e out of the cache. sf.mu is held.
func (sf *Files) remove(e *entry) {
	if e.slot < 0 {
		return
	}
	last := len(sf.ring) - 1
	sf.ring[e.slot] = sf.ring[last]
	sf.ring[e.slot].slot = e.slot
	sf.ring[last] = nil
	sf.ring = sf.ring[:last]
	e.slot = -1
	delete(sf.entries, e.name)
	sf.size.Add(-e.cost)
}

// drop removes e, a version no longer current, if it is still kept.
func (sf *Files) drop(e *entry) {
	sf.mu.Lock()
	if sf.entries[e.name] == e {
		sf.remove(e)
	}
	sf.mu.Unlock()
}

// counted adds n bytes made for e (a variant) to the cache's size, if e
// is kept.
func (sf *Files) counted(e *entry, n int) {
	sf.mu.Lock()
	if e.slot >= 0 {
		e.cost += int64(n)
		sf.size.Add(int64(n))
		sf.sweep()
	}
	sf.mu.Unlock()
}

// fileStream sends a large file's bytes, as many as its version
// announced; before it hands over the last of them, it checks that the
// file is still that version, and fails otherwise, so that fasthttp cuts
// the connection short: the client sees an incomplete response, never a
// complete mixed one. Close gives back its MaxOpenFiles slot.
type fileStream struct {
	f     *os.File
	ver   version
	left  int64
	slots chan struct{}
	once  sync.Once
}

func (s *fileStream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.f.Read(p)
	s.left -= int64(n)
	if err == io.EOF && s.left > 0 {
		return n, errChanged // shrunk
	}
	if err != nil && err != io.EOF {
		return n, err
	}
	if s.left == 0 {
		if v, err := versionOf(s.f); err != nil || v != s.ver {
			return 0, errChanged
		}
		return n, io.EOF
	}
	return n, nil
}

func (s *fileStream) Close() error {
	err := s.f.Close()
	s.once.Do(func() { <-s.slots })
	return err
}
