package static

import (
	"errors"
	"io"
	"mime"
	"net/http"
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
	errChanging = errors.New("file changed while it was read, three times over")
	errChanged  = errors.New("file changed while it was sent")
)

// version identifies one version of a file: what a stat says of it. A
// write changes the change time (and on Linux 6.13+ a change seen by a
// stat is never hidden inside one clock tick: multigrain timestamps).
type version struct {
	dev, ino    uint64
	size        int64
	mtime       int64 // ns
	ctime       int64 // ns; 0 where the platform has none (then mtime)
	regular     bool
	isDirectory bool
}

// entry is one version of a file read whole, with what its answers need.
type entry struct {
	name     string
	ver      version
	content  []byte
	ctype    []byte
	etag     []byte // "mtime-size", quoted: stable across servers with the same files
	modified []byte // Last-Modified
	modTime  time.Time
	zip      bool // a textual type worth compressing
	used     atomic.Bool
	checked  atomic.Int64 // when the file was last seen to be this version, in ns

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
	f *os.File // a file over MaxMemoryFileBytes: e has its headers, no content
}

// revalidate is how long a version kept in memory is served before the
// file is looked at again (one stat): a change shows within it.
const revalidate = 100 * time.Millisecond

// open finds the current version of name: from memory when the file was
// that version within the last revalidate, otherwise read from disk (and
// kept, if it fits and did not change within the last second).
func (sf *Files) open(name []byte) (opened, error) {
	sf.mu.RLock()
	e := sf.entries[string(name)]
	sf.mu.RUnlock()
	if e != nil {
		now := time.Now().UnixNano()
		if now-e.checked.Load() < int64(revalidate) {
			e.use()
			return opened{e: e}, nil
		}
		if v, err := sf.stat(e.name); err == nil && v == e.ver {
			e.checked.Store(now)
			e.use()
			return opened{e: e}, nil
		}
		sf.drop(e)
	}
	return sf.load(string(name))
}

// use marks e used since the last sweep.
func (e *entry) use() {
	if !e.used.Load() {
		e.used.Store(true)
	}
}

// load reads name from disk: whole, between two stats that agree, for a
// file of up to MaxMemoryFileBytes; else opened, for streaming.
func (sf *Files) load(name string) (opened, error) {
	for attempt := 0; attempt < 3; attempt++ {
		f, err := sf.root.Open(name)
		if err != nil {
			return opened{}, err
		}
		before, err := versionOf(f)
		if err != nil {
			f.Close()
			return opened{}, err
		}
		if before.isDirectory {
			f.Close()
			return opened{}, errIsDir
		}
		if !before.regular {
			f.Close()
			return opened{}, os.ErrNotExist
		}
		if before.size > int64(sf.maxMem) {
			e := &entry{}
			sf.describe(e, name, before, nil)
			return opened{e: e, f: f}, nil
		}
		content := make([]byte, before.size)
		_, err = io.ReadFull(f, content)
		if err == nil {
			var one [1]byte
			if n, _ := f.Read(one[:]); n > 0 {
				err = errChanged // grew: the read above had a part of it
			}
		}
		after, serr := versionOf(f)
		f.Close()
		if serr != nil {
			return opened{}, serr
		}
		if err != nil && !errors.Is(err, errChanged) && !errors.Is(err, io.ErrUnexpectedEOF) && err != io.EOF {
			return opened{}, err
		}
		if err != nil || after != before {
			continue // changed while read: read the new version
		}
		e := &entry{}
		sf.describe(e, name, before, content)
		e.checked.Store(time.Now().UnixNano())
		sf.keep(e)
		return opened{e: e}, nil
	}
	return opened{}, errChanging
}

// describe fills in e's headers for version v of name.
func (sf *Files) describe(e *entry, name string, v version, content []byte) {
	e.name, e.ver, e.content = name, v, content
	ctype := mime.TypeByExtension(filepath.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
		if content != nil {
			ctype = http.DetectContentType(content)
		}
	}
	e.ctype = []byte(ctype)
	e.zip = sf.compress && content != nil && len(content) >= minCompressBytes && compressible(ctype)
	e.etag = strconv.AppendInt(append(strconv.AppendInt([]byte(`"`), v.mtime, 16), '-'), v.size, 16)
	e.etag = append(e.etag, '"')
	e.modTime = time.Unix(0, v.mtime).UTC().Truncate(time.Second)
	e.modified = fasthttp.AppendHTTPDate(nil, e.modTime)
}

// keep adds e to the cache, unless it changed within the last second:
// timestamps move in clock ticks (10 ms here), and a write in the tick of
// the last one may leave the stat as it was, so a version that recent is
// served but not kept (as Git treats "racily clean" files). Past
// CacheBytes, entries not used since the last sweep are dropped, and
// the others marked unused.
func (sf *Files) keep(e *entry) {
	if time.Since(time.Unix(0, e.ver.ctime)) < time.Second {
		return // still being written, likely: read it again next time
	}
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if old := sf.entries[e.name]; old != nil {
		sf.size.Add(-old.bytes())
	}
	sf.entries[e.name] = e
	e.used.Store(true)
	if sf.size.Add(e.bytes()) > sf.cacheBytes {
		sf.sweep()
	}
}

// sweep drops entries not used since the last sweep (CLOCK), and every
// other one if that is not enough. sf.mu is held.
func (sf *Files) sweep() {
	for pass := 0; pass < 2 && sf.size.Load() > sf.cacheBytes*3/4; pass++ {
		for name, e := range sf.entries {
			if pass == 0 && e.used.Swap(false) {
				continue
			}
			delete(sf.entries, name)
			sf.size.Add(-e.bytes())
		}
	}
}

// drop removes e, a version no longer current.
func (sf *Files) drop(e *entry) {
	sf.mu.Lock()
	if sf.entries[e.name] == e {
		delete(sf.entries, e.name)
		sf.size.Add(-e.bytes())
	}
	sf.mu.Unlock()
}

// bytes is what e may hold in memory: its content, and as much again
// for compressed variants (together they are smaller than the original
// for textual types, and a variant not smaller is not kept).
func (e *entry) bytes() int64 {
	if e.zip {
		return 2 * int64(len(e.content))
	}
	return int64(len(e.content))
}

// fileStream sends a large file's bytes, as many as its version
// announced; before it hands over the last of them, it checks that the
// file is still that version, and fails otherwise, so that fasthttp cuts
// the connection short: the client sees an incomplete response, never a
// complete mixed one.
type fileStream struct {
	f    *os.File
	ver  version
	left int64
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

func (s *fileStream) Close() error { return s.f.Close() }
