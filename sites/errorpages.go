package sites

import (
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"sort"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/proxy"
)

// maxErrorPage bounds an error page's size: it is held in memory.
const maxErrorPage = 1 << 20

// errorPage is a site's page for one status, read when the sites are
// built (and read again by Reload).
type errorPage struct {
	body  []byte
	ctype string
}

// errorPages reads a site's ErrorPages: each a file, absolute or under
// root.
func errorPages(pages map[int]string, root string) (map[int]errorPage, error) {
	if len(pages) == 0 {
		return nil, nil
	}
	statuses := make([]int, 0, len(pages))
	for st := range pages {
		statuses = append(statuses, st)
	}
	sort.Ints(statuses)
	out := make(map[int]errorPage, len(pages))
	for _, st := range statuses {
		path := pages[st]
		field := fmt.Sprintf("error-pages[%d]", st)
		if st < 400 || st > 599 {
			return nil, fmt.Errorf("%s: a status from 400 to 599", field)
		}
		if !filepath.IsAbs(path) {
			if root == "" {
				return nil, fmt.Errorf("%s: %q: a relative path needs the site's root", field, path)
			}
			path = filepath.Join(root, path)
		}
		fi, err := os.Stat(path)
		if err == nil && fi.Size() > maxErrorPage {
			err = fmt.Errorf("%d bytes; at most %d", fi.Size(), maxErrorPage)
		}
		var b []byte
		if err == nil {
			b, err = os.ReadFile(path)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		ctype := mime.TypeByExtension(filepath.Ext(path))
		if ctype == "" {
			ctype = "text/html; charset=utf-8"
		}
		out[st] = errorPage{b, ctype}
	}
	return out, nil
}

// replaceError puts the site's page in place of an error answer the
// server or the proxy made, keeping its status and headers; an
// upstream's own answer is left as it is (a JSON API's error body is
// its client's to read).
func (s *site) replaceError(ctx *fasthttp.RequestCtx) {
	st := ctx.Response.StatusCode()
	page, ok := s.errorPages[st]
	if !ok || proxy.FromUpstream(ctx) {
		return
	}
	ctx.Response.Header.SetContentType(page.ctype)
	ctx.Response.SetBodyRaw(page.body)
}
