package static

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func get(sf *Files, path string, hdr ...string) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.SetRequestURI(path)
	for i := 0; i+1 < len(hdr); i += 2 {
		ctx.Request.Header.Set(hdr[i], hdr[i+1])
	}
	sf.Handle(ctx)
	return ctx
}

// TestCacheSweepKeepsHotEntries: one file over CacheBytes drops what was
// not used lately, not the whole cache (before: every entry went).
func TestCacheSweepKeepsHotEntries(t *testing.T) {
	root := t.TempDir()
	const fileSize = 100 << 10
	for i := 0; i < 12; i++ {
		require.NoError(t, os.WriteFile(filepath.Join(root, fmt.Sprintf("f%d.bin", i)), make([]byte, fileSize), 0o644))
	}
	time.Sleep(1100 * time.Millisecond)
	sf, err := New(Config{Root: root, CacheBytes: 10*fileSize + fileSize/2})
	require.NoError(t, err)
	defer sf.Close()
	count := func() int { sf.mu.RLock(); defer sf.mu.RUnlock(); return len(sf.entries) }
	for i := 0; i < 10; i++ {
		require.Equal(t, 200, get(sf, fmt.Sprintf("/f%d.bin", i)).Response.StatusCode())
		// the hot file f0 is used again after each new one
		require.Equal(t, 200, get(sf, "/f0.bin").Response.StatusCode())
	}
	t.Logf("after 10 files: %d entries, %d bytes (cap %d)", count(), sf.size.Load(), sf.cacheBytes)
	get(sf, "/f10.bin")
	t.Logf("after the 11th: %d entries, %d bytes", count(), sf.size.Load())
	require.Greater(t, count(), 1, "one file over the bound flushed the whole cache, hot f0 too")
}

// TestCacheCountsVariants: the memory held for files and their three
// variants stays within CacheBytes (before: 1.86x of it for hex text).
func TestCacheCountsVariants(t *testing.T) {
	root := t.TempDir()
	const n = 10
	for i := 0; i < n; i++ {
		raw := make([]byte, 400<<10)
		rand.Read(raw)
		require.NoError(t, os.WriteFile(filepath.Join(root, fmt.Sprintf("f%d.txt", i)), []byte(hex.EncodeToString(raw)), 0o644))
	}
	time.Sleep(1100 * time.Millisecond)
	sf, err := New(Config{Root: root, CacheBytes: 16 << 20})
	require.NoError(t, err)
	defer sf.Close()
	for i := 0; i < n; i++ {
		for _, enc := range []string{"br", "zstd", "gzip"} {
			ctx := get(sf, fmt.Sprintf("/f%d.txt", i), "Accept-Encoding", enc)
			if i == 0 {
				t.Logf("%s: %q %d bytes", enc, ctx.Response.Header.ContentEncoding(), len(ctx.Response.Body()))
			}
		}
	}
	var real int64
	sf.mu.RLock()
	for _, e := range sf.entries {
		real += int64(len(e.content))
		for i := range e.variants {
			real += int64(len(e.variants[i].body))
		}
	}
	sf.mu.RUnlock()
	t.Logf("entries %d, accounted %d, held %d, CacheBytes %d", len(sf.entries), sf.size.Load(), real, sf.cacheBytes)
	require.LessOrEqual(t, real, sf.cacheBytes, "memory held for files and variants exceeds CacheBytes")
}

var _ = strings.Repeat

// TestConcurrentFirstRequestsShareOneLoad: N concurrent first requests
// for one 4 MiB textual file read it and compress it once.
func TestConcurrentFirstRequestsShareOneLoad(t *testing.T) {
	root := t.TempDir()
	var sb strings.Builder
	for i := 0; sb.Len() < 4<<20-100; i++ {
		fmt.Fprintf(&sb, "function f%d(a) { return a * %d + %d; }\n", i, i*7919%1000, i%97)
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "app.js"), []byte(sb.String()), 0o644))
	time.Sleep(1100 * time.Millisecond)
	sf, err := New(Config{Root: root})
	require.NoError(t, err)
	defer sf.Close()
	var compressions atomic.Int32
	orig := encodings[0].append
	encodings[0].append = func(dst, src []byte) []byte { compressions.Add(1); return orig(dst, src) }
	defer func() { encodings[0].append = orig }()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	const n = 8
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := get(sf, "/app.js", "Accept-Encoding", "br")
			if string(ctx.Response.Header.ContentEncoding()) != "br" {
				t.Error("not br")
			}
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&ms1)
	t.Logf("%d concurrent first requests: %d brotli compressions of 4 MiB, %v, %d MiB allocated", n, compressions.Load(), time.Since(start).Round(time.Millisecond), (ms1.TotalAlloc-ms0.TotalAlloc)>>20)
	c0 := compressions.Load()
	start = time.Now()
	get(sf, "/app.js", "Accept-Encoding", "br")
	t.Logf("then from the cache: %d more compressions, %v", compressions.Load()-c0, time.Since(start))
	require.LessOrEqual(t, int(c0), 1, "one version compressed once")
}

// TestRecentFileCompressedOnce: a file changed within the last second is
// kept (looked at on every request) and compressed once.
func TestRecentFileCompressedOnce(t *testing.T) {
	root := t.TempDir()
	sf, err := New(Config{Root: root})
	require.NoError(t, err)
	defer sf.Close()
	var sb strings.Builder
	for i := 0; sb.Len() < 2<<20; i++ {
		fmt.Fprintf(&sb, "function f%d(a) { return a * %d + %d; }\n", i, i*7919%1000, i%97)
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "app.js"), []byte(sb.String()), 0o644))
	var compressions atomic.Int32
	orig := encodings[0].append
	encodings[0].append = func(dst, src []byte) []byte { compressions.Add(1); return orig(dst, src) }
	defer func() { encodings[0].append = orig }()
	start := time.Now()
	n := 0
	for time.Since(start) < 900*time.Millisecond && n < 50 {
		get(sf, "/app.js", "Accept-Encoding", "br")
		n++
	}
	t.Logf("%d sequential requests within 0.9 s of writing a 2 MiB .js: %d brotli compressions, %v", n, compressions.Load(), time.Since(start).Round(time.Millisecond))
	require.LessOrEqual(t, int(compressions.Load()), 1, "compressed once")
}

// TestCacheAccountingUnderConcurrency: concurrent requests, edits and
// evictions under -race; then the size counted equals the entries'.
func TestCacheAccountingUnderConcurrency(t *testing.T) {
	root := t.TempDir()
	const files = 24
	content := func(i, v int) []byte {
		return []byte(strings.Repeat(fmt.Sprintf("/* file %d version %d */\n", i, v), 200+i*50))
	}
	for i := 0; i < files; i++ {
		require.NoError(t, os.WriteFile(filepath.Join(root, fmt.Sprintf("f%d.css", i)), content(i, 0), 0o644))
	}
	time.Sleep(1100 * time.Millisecond)
	sf, err := New(Config{Root: root, CacheBytes: 200 << 10, MaxMemoryFileBytes: 40 << 10})
	require.NoError(t, err)
	defer sf.Close()
	deadline := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	encs := []string{"", "br", "zstd", "gzip"}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 20000 && time.Now().Before(deadline); n++ {
				i := (n*7 + g*13) % files
				ctx := get(sf, fmt.Sprintf("/f%d.css", i), "Accept-Encoding", encs[(n+g)%4])
				if s := ctx.Response.StatusCode(); s != 200 && s != 503 {
					t.Errorf("status %d", s)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // the editor: in place and by rename, a few files
		defer wg.Done()
		for v := 1; v < 2000 && time.Now().Before(deadline.Add(-1500*time.Millisecond)); v++ {
			i := v % 4
			p := filepath.Join(root, fmt.Sprintf("f%d.css", i))
			if v%2 == 0 {
				os.WriteFile(p, content(i, v), 0o644)
			} else {
				os.WriteFile(p+".tmp", content(i, v), 0o644)
				os.Rename(p+".tmp", p)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Wait()
	var sum int64
	sf.mu.RLock()
	for _, e := range sf.entries {
		sum += e.cost
	}
	n := len(sf.entries)
	sf.mu.RUnlock()
	t.Logf("entries %d, size %d, sum %d, cap %d", n, sf.size.Load(), sum, sf.cacheBytes)
	require.Equal(t, sum, sf.size.Load(), "size drifted")
}

// TestCacheCountsEntryOverhead: an entry's own cost is counted, so
// 20,000 empty files stay within CacheBytes.
func TestCacheCountsEntryOverhead(t *testing.T) {
	root := t.TempDir()
	const n = 20000
	for i := 0; i < n; i++ {
		require.NoError(t, os.WriteFile(filepath.Join(root, fmt.Sprintf("tile-%06d.png", i)), nil, 0o644))
	}
	time.Sleep(1100 * time.Millisecond)
	sf, err := New(Config{Root: root, CacheBytes: 1 << 20})
	require.NoError(t, err)
	defer sf.Close()
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := 0; i < n; i++ {
		get(sf, fmt.Sprintf("/tile-%06d.png", i))
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	sf.mu.RLock()
	entries := len(sf.entries)
	sf.mu.RUnlock()
	t.Logf("%d entries kept, accounted %d bytes (CacheBytes %d), live heap grew %d KiB (%d B/entry)",
		entries, sf.size.Load(), sf.cacheBytes, (int64(m1.HeapAlloc)-int64(m0.HeapAlloc))>>10, (int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/int64(entries))
	require.Less(t, int64(m1.HeapAlloc)-int64(m0.HeapAlloc), sf.cacheBytes)
}
