package wsframe

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The GUID of RFC 6455 section 1.3, appended to a key to make its accept
// value.
const guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey is the Sec-WebSocket-Accept value that answers key.
func AcceptKey(key string) string {
	sum := sha1.Sum([]byte(key + guid))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// ErrHandshake is a handshake answer or request that is not WebSocket's.
var ErrHandshake = errors.New("wsframe: not a WebSocket handshake")

// Handshake is the client's opening handshake on a connected w (TLS or
// not): a GET of path for host, then the server's 101 read from r, which
// reads the same connection and then holds whatever the server sent after
// the 101. Any other answer is an error that names its status.
func Handshake(w io.Writer, r *bufio.Reader, host, path string) error {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\nUser-Agent: wsload\r\n\r\n"
	if _, err := io.WriteString(w, req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return fmt.Errorf("wsframe: reading the handshake's answer: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
		return fmt.Errorf("%w: status %s", ErrHandshake, resp.Status)
	}
	switch {
	case !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"):
		return fmt.Errorf("%w: 101 with Upgrade %q", ErrHandshake, resp.Header.Get("Upgrade"))
	case !hasToken(resp.Header.Values("Connection"), "upgrade"):
		return fmt.Errorf("%w: 101 with Connection %q", ErrHandshake, resp.Header.Values("Connection"))
	case resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(key):
		return fmt.Errorf("%w: 101 with Sec-WebSocket-Accept %q, want %q", ErrHandshake,
			resp.Header.Get("Sec-WebSocket-Accept"), AcceptKey(key))
	}
	return nil
}

// IsUpgrade reports whether req asks to switch to WebSocket.
func IsUpgrade(req *http.Request) bool {
	return strings.EqualFold(req.Header.Get("Upgrade"), "websocket") && hasToken(req.Header.Values("Connection"), "upgrade")
}

// Accept answers req, a WebSocket opening handshake (IsUpgrade), with a
// 101 written to w. A request that is not a valid one (a GET, version 13,
// a 16-byte key) gets 400 and an error.
func Accept(w io.Writer, req *http.Request) error {
	key := req.Header.Get("Sec-WebSocket-Key")
	nonce, err := base64.StdEncoding.DecodeString(key)
	var bad string
	switch {
	case req.Method != http.MethodGet:
		bad = "method " + req.Method
	case req.Header.Get("Sec-WebSocket-Version") != "13":
		bad = fmt.Sprintf("Sec-WebSocket-Version %q", req.Header.Get("Sec-WebSocket-Version"))
	case err != nil || len(nonce) != 16:
		bad = fmt.Sprintf("Sec-WebSocket-Key %q", key)
	}
	if bad != "" {
		_, _ = io.WriteString(w, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return fmt.Errorf("%w: %s", ErrHandshake, bad)
	}
	_, err = io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
		AcceptKey(key)+"\r\n\r\n")
	return err
}

// hasToken reports whether one of the comma-separated lists vs has tok.
func hasToken(vs []string, tok string) bool {
	for _, v := range vs {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), tok) {
				return true
			}
		}
	}
	return false
}
