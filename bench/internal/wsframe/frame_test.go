package wsframe_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/bench/internal/wsframe"
)

func reader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// TestHeaderRoundTrip: what AppendHeader writes, ReadHeader reads back,
// each length in its shortest encoding.
func TestHeaderRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		h    wsframe.Header
		size int
	}{
		{wsframe.Header{Fin: true, Op: wsframe.OpBinary}, 2},
		{wsframe.Header{Fin: true, Op: wsframe.OpText, Length: 125}, 2},
		{wsframe.Header{Fin: false, Op: wsframe.OpBinary, Length: 126}, 4},
		{wsframe.Header{Fin: true, Op: wsframe.OpContinuation, Length: 0xffff}, 4},
		{wsframe.Header{Fin: true, Op: wsframe.OpBinary, Length: 0x10000}, 10},
		{wsframe.Header{Fin: true, Op: wsframe.OpBinary, Length: 64, Masked: true, Mask: [4]byte{1, 2, 3, 4}}, 6},
		{wsframe.Header{Fin: true, Op: wsframe.OpClose, Length: 2, Masked: true, Mask: [4]byte{9, 8, 7, 6}}, 6},
		{wsframe.Header{Fin: true, Op: wsframe.OpPing, Length: 1 << 40, Masked: true}, 14},
	} {
		t.Run(fmt.Sprintf("op=%d/len=%d/masked=%v", tc.h.Op, tc.h.Length, tc.h.Masked), func(t *testing.T) {
			b := wsframe.AppendHeader(nil, tc.h)
			assert.Len(t, b, tc.size)
			if tc.h.Control() && tc.h.Length > 125 {
				_, err := wsframe.ReadHeader(reader(b), 0)
				assert.ErrorIs(t, err, wsframe.ErrControl)
				return
			}
			got, err := wsframe.ReadHeader(reader(b), 0)
			require.NoError(t, err)
			assert.Equal(t, tc.h, got)
		})
	}
}

// TestReadHeaderRefuses: headers RFC 6455 forbids, and those cut short.
func TestReadHeaderRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		b     []byte
		limit int64
		want  error
	}{
		{"empty", nil, 0, io.EOF},
		{"one byte", []byte{0x82}, 0, io.ErrUnexpectedEOF},
		{"rsv1", []byte{0xc2, 0x00}, 0, wsframe.ErrReserved},
		{"opcode 3", []byte{0x83, 0x00}, 0, wsframe.ErrReserved},
		{"opcode 0xb", []byte{0x8b, 0x00}, 0, wsframe.ErrReserved},
		{"fragmented ping", []byte{0x09, 0x00}, 0, wsframe.ErrControl},
		{"close of 126", []byte{0x88, 0x7e, 0x00, 0x7e}, 0, wsframe.ErrControl},
		{"16-bit length of 5", []byte{0x82, 0x7e, 0x00, 0x05}, 0, wsframe.ErrNotMinimal},
		{"64-bit length of 5", []byte{0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 5}, 0, wsframe.ErrNotMinimal},
		{"64-bit length, top bit", []byte{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, 0, wsframe.ErrLength},
		{"over the limit", []byte{0x82, 0x7e, 0x01, 0x00}, 255, wsframe.ErrTooLong},
		{"extended length cut", []byte{0x82, 0x7e, 0x01}, 0, io.ErrUnexpectedEOF},
		{"mask cut", []byte{0x82, 0x81, 1, 2}, 0, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wsframe.ReadHeader(reader(tc.b), tc.limit)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

// TestMaskBytes: masking in pieces from any position is masking byte by
// byte, and twice is nothing.
func TestMaskBytes(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	orig := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 3))
	want := bytes.Clone(orig)
	for i := range want {
		want[i] ^= key[i&3]
	}
	for _, cut := range [][]int{{0}, {1}, {3, 7}, {5, 6, 17, 40}, {64, 65}} {
		t.Run(fmt.Sprint("cuts=", cut), func(t *testing.T) {
			b := bytes.Clone(orig)
			pos := 0
			for _, c := range append(cut, len(b)) {
				pos = wsframe.MaskBytes(key, pos, b[pos:c])
			}
			assert.Equal(t, len(b), pos)
			assert.Equal(t, want, b)
			wsframe.MaskBytes(key, 0, b)
			assert.Equal(t, orig, b)
		})
	}
}

// FuzzReadHeader: ReadHeader never panics, and a header it accepts
// AppendHeader writes back as the bytes it read.
func FuzzReadHeader(f *testing.F) {
	for _, h := range []wsframe.Header{
		{Fin: true, Op: wsframe.OpBinary, Length: 64, Masked: true, Mask: [4]byte{1, 2, 3, 4}},
		{Fin: false, Op: wsframe.OpText, Length: 300},
		{Fin: true, Op: wsframe.OpContinuation, Length: 70000},
		{Fin: true, Op: wsframe.OpClose, Length: 2},
	} {
		f.Add(wsframe.AppendHeader(nil, h))
	}
	f.Add([]byte{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := reader(b)
		h, err := wsframe.ReadHeader(r, 1<<20)
		if err != nil {
			return
		}
		read := len(b) - r.Buffered()
		assert.Equal(t, b[:read], wsframe.AppendHeader(nil, h))
		assert.LessOrEqual(t, h.Length, int64(1<<20))
		assert.False(t, errors.Is(err, io.EOF))
	})
}

func ExampleAppendHeader() {
	// A client's 5-byte binary message: the header, then the masked payload.
	h := wsframe.Header{Fin: true, Op: wsframe.OpBinary, Length: 5, Masked: true, Mask: [4]byte{1, 2, 3, 4}}
	frame := wsframe.AppendHeader(nil, h)
	payload := []byte("hello")
	wsframe.MaskBytes(h.Mask, 0, payload)
	frame = append(frame, payload...)
	fmt.Printf("% x\n", frame)
	// Output: 82 85 01 02 03 04 69 67 6f 68 6e
}
