package proxy

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// frame makes a WebSocket frame header and payload of n bytes.
func frame(n int, masked bool) []byte {
	b := []byte{0x82}
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, make([]byte, n)...)
}

func TestFramesBetween(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var stream []byte
		ends := map[int]bool{0: true}
		for range 1 + rng.IntN(6) {
			n := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}[rng.IntN(8)]
			stream = append(stream, frame(n, rng.IntN(2) == 0)...)
			ends[len(stream)] = true
		}
		var f frames
		for at := 0; at < len(stream); {
			k := min(1+rng.IntN(3000), len(stream)-at)
			if rng.IntN(4) == 0 {
				k = min(1+rng.IntN(3), len(stream)-at) // a header split byte by byte
			}
			f.advance(stream[at : at+k])
			at += k
			if f.between() != ends[at] {
				t.Fatalf("round %d: at %d of %d, between = %v, want %v", round, at, len(stream), f.between(), ends[at])
			}
		}
	}
}

func TestMaskedGoingAway(t *testing.T) {
	f := maskedGoingAway()
	if f[0] != 0x88 || f[1] != 0x82 {
		t.Fatalf("header % x", f[:2])
	}
	if code := uint16(f[6]^f[2])<<8 | uint16(f[7]^f[3]); code != 1001 {
		t.Fatalf("status %d, want 1001", code)
	}
}

func TestFramesThrough(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		var stream []byte
		var ends []int
		for range 1 + rng.IntN(6) {
			n := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}[rng.IntN(8)]
			stream = append(stream, frame(n, rng.IntN(2) == 0)...)
			ends = append(ends, len(stream))
		}
		// Followed up to a random point, then through the rest.
		var f frames
		at := rng.IntN(len(stream))
		f.advance(stream[:at])
		want := -1
		for _, e := range append([]int{0}, ends...) {
			if e >= at {
				want = e - at
				break
			}
		}
		if got := f.through(stream[at:]); got != want {
			t.Fatalf("round %d: through from %d of %d = %d, want %d", round, at, len(stream), got, want)
		}
		if !f.between() {
			t.Fatalf("round %d: not between after through", round)
		}
		// A part of a frame: no end in it.
		var g frames
		if len(stream) > 2 {
			g.advance(stream[:1])
			end := ends[0]
			if got := g.through(stream[1 : end-1]); end-1 > 1 && got != -1 {
				t.Fatalf("round %d: through a part of a frame = %d", round, got)
			}
		}
	}
}
