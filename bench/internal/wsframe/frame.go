package wsframe

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Opcodes (RFC 6455 section 5.2).
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xa
)

// MaxHeaderLen is the longest frame header: 2 bytes, an 8-byte extended
// length and a 4-byte mask key.
const MaxHeaderLen = 14

// Header is a frame's header.
type Header struct {
	Fin    bool    // the message's last frame
	Op     byte    // one of the opcodes
	Masked bool    // the payload is masked with Mask (a client's frames are)
	Mask   [4]byte // the mask key, if Masked
	Length int64   // the payload's length in bytes
}

// Control reports whether the frame is a control frame (close, ping,
// pong).
func (h Header) Control() bool { return h.Op&0x8 != 0 }

// Errors of ReadHeader, besides the reader's own.
var (
	ErrReserved   = errors.New("wsframe: reserved bit or opcode set (no extension was negotiated)")
	ErrControl    = errors.New("wsframe: control frame fragmented or over 125 bytes")
	ErrLength     = errors.New("wsframe: 64-bit length with its most significant bit set")
	ErrTooLong    = errors.New("wsframe: payload over the reader's limit")
	ErrNotMinimal = errors.New("wsframe: length not in its shortest encoding")
)

// ReadHeader reads a frame header from r. A payload longer than limit is
// ErrTooLong (limit <= 0: no limit); a header RFC 6455 forbids is one of
// the errors above. A header cut short is io.ErrUnexpectedEOF, and nothing
// at all io.EOF.
func ReadHeader(r *bufio.Reader, limit int64) (Header, error) {
	var h Header
	b, err := r.Peek(2)
	if err != nil {
		if len(b) == 1 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return h, err
	}
	first, second := b[0], b[1]
	_, _ = r.Discard(2)
	h.Fin = first&0x80 != 0
	h.Op = first & 0x0f
	h.Masked = second&0x80 != 0
	if first&0x70 != 0 {
		return h, ErrReserved
	}
	switch h.Op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return h, ErrReserved
	}
	var ext [8]byte
	switch n := second & 0x7f; n {
	case 126:
		if _, err := io.ReadFull(r, ext[:2]); err != nil {
			return h, unexpected(err)
		}
		h.Length = int64(binary.BigEndian.Uint16(ext[:2]))
		if h.Length < 126 {
			return h, ErrNotMinimal
		}
	case 127:
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return h, unexpected(err)
		}
		u := binary.BigEndian.Uint64(ext[:])
		if u>>63 != 0 {
			return h, ErrLength
		}
		h.Length = int64(u)
		if h.Length <= 0xffff {
			return h, ErrNotMinimal
		}
	default:
		h.Length = int64(n)
	}
	if h.Control() && (!h.Fin || h.Length > 125) {
		return h, ErrControl
	}
	if limit > 0 && h.Length > limit {
		return h, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, h.Length, limit)
	}
	if h.Masked {
		if _, err := io.ReadFull(r, h.Mask[:]); err != nil {
			return h, unexpected(err)
		}
	}
	return h, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendHeader appends h as a frame header to b, its length in the
// shortest encoding.
func AppendHeader(b []byte, h Header) []byte {
	first := h.Op & 0x0f
	if h.Fin {
		first |= 0x80
	}
	var mask byte
	if h.Masked {
		mask = 0x80
	}
	switch {
	case h.Length <= 125:
		b = append(b, first, mask|byte(h.Length))
	case h.Length <= 0xffff:
		b = append(b, first, mask|126)
		b = binary.BigEndian.AppendUint16(b, uint16(h.Length))
	default:
		b = append(b, first, mask|127)
		b = binary.BigEndian.AppendUint64(b, uint64(h.Length))
	}
	if h.Masked {
		b = append(b, h.Mask[:]...)
	}
	return b
}

// MaskBytes XORs b with key, as if b began pos bytes into the payload, and
// returns the position after b (masking and unmasking are the same
// operation, RFC 6455 section 5.3).
func MaskBytes(key [4]byte, pos int, b []byte) int {
	end := pos + len(b)
	for len(b) > 0 && pos&3 != 0 {
		b[0] ^= key[pos&3]
		b, pos = b[1:], pos+1
	}
	if len(b) >= 8 {
		k := uint64(binary.LittleEndian.Uint32(key[:]))
		k |= k << 32
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[i&3]
	}
	return end
}
