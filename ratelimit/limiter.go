package ratelimit

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/internal/httpsyntax"
)

// DefaultMaxKeys is the number of clients a Limiter remembers unless
// Config.MaxKeys says otherwise: 1 MiB at 16 bytes each.
const DefaultMaxKeys = 1 << 16

// MaxBurst is the largest Config.Burst.
const MaxBurst = 1_000_000

const (
	maxMaxKeys = 1 << 24 // 256 MiB of places
	ways       = 8       // places in a set: a key is in one of its set's
	maxShards  = 64      // locks; a shard holds whole sets
)

// A ConfigError reports an invalid Config field: its name, the value
// given and what it accepts.
type ConfigError = field.Error

// Config is one limit: a rate and a burst for each client, what keys a
// client, and how many clients it remembers.
type Config struct {
	// Rate is each client's sustained rate. Required.
	Rate Rate

	// Burst is how many requests past the rate a client may send at
	// once: a client that sent nothing for a while has 1+Burst requests
	// pass at once, then one each Rate.Per/Rate.Count, and the rest are
	// refused (nginx's limit_req burst with nodelay). 0 to 1,000,000;
	// zero allows one request each Per/Count, and no more at once.
	Burst int

	// Header, if set, keys a client by the value of this request header
	// (an API key, say), hashed; a request without it, or with it empty,
	// is keyed by its address. Empty: by address only. A client chooses
	// its headers: key by one only when it means something (an API key
	// checked upstream, a header a balancer in front sets).
	Header string

	// IPv6Prefix is how many leading bits of an IPv6 address key a
	// client. A subscriber gets a whole /64 (or a /56, a /48), and would
	// otherwise have a fresh budget at each of its addresses and fill the
	// limiter with keys. If zero, 64; 128 keys each address on its own.
	// IPv4 addresses, IPv4-mapped IPv6 ones too, are keyed whole.
	IPv6Prefix int

	// MaxKeys bounds the clients remembered, at 16 bytes each, allocated
	// as the clients come (a shard at a time). If zero, DefaultMaxKeys.
	// 8 to 16,777,216; rounded up to whole sets of 8 in every shard.
	MaxKeys int

	// DryRun decides and counts but refuses nothing: Allow says
	// DryRunLimited where it would say Limited, and the client's budget
	// is kept as if the request had been refused (nginx's
	// limit_req_dry_run), so that the counts are those the limit would
	// give.
	DryRun bool
}

// Validate reports every invalid field of c, each a *ConfigError
// (joined), as New does.
func (c Config) Validate() error {
	es := field.Errors{Pkg: "ratelimit"}
	iv := c.Rate.interval()
	if iv < 1 {
		es.Bad("Rate", c.Rate.String(), rateSyntax)
	}
	switch {
	case c.Burst < 0 || c.Burst > MaxBurst:
		es.Bad("Burst", c.Burst, fmt.Sprintf("from 0 to %d", MaxBurst))
	case iv > 0 && int64(c.Burst) > (1<<62)/iv:
		es.Bad("Burst", c.Burst, fmt.Sprintf("at most %d at %v", (1<<62)/iv, c.Rate))
	}
	if c.Header != "" && !validHeaderName(c.Header) {
		es.Bad("Header", fmt.Sprintf("%q", c.Header), "a header name (an RFC 9110 token, such as X-Api-Key), or empty for the client's address")
	}
	if c.IPv6Prefix < 0 || c.IPv6Prefix > 128 {
		es.Bad("IPv6Prefix", c.IPv6Prefix, "from 1 to 128, or 0 for 64")
	}
	es.Int("MaxKeys", &c.MaxKeys, ways, maxMaxKeys, DefaultMaxKeys, "")
	return es.Err()
}

func validHeaderName(name string) bool {
	for i := 0; i < len(name); i++ {
		if !httpsyntax.IsTokenChar(name[i]) {
			return false
		}
	}
	return name != ""
}

// A Result is what a limit decided of a request.
type Result uint8

const (
	Passed        Result = iota // within the rate and burst: counted against the client's budget
	Limited                     // past them: to be refused (429)
	DryRunLimited               // past them, with Config.DryRun: let through, counted
)

// resultNames are the names of the results, as metrics and logs write
// them.
var resultNames = [...]string{Passed: "passed", Limited: "limited", DryRunLimited: "dry_run_limited"}

func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return fmt.Sprintf("Result(%d)", r)
}

// Counts are requests by Result.
type Counts [DryRunLimited + 1]uint64

// A Key is a client as a Limiter counts it: a hash of its address or of
// its header's value. Only the Limiter that made a key knows it (each
// hashes with seeds of its own, so no one can aim at another client's).
type Key uint64

// A Limiter limits each client to a rate, with a burst, by the Generic
// Cell Rate Algorithm: it remembers one time per client, the theoretical
// arrival time (TAT) of its next request were it sending at the rate.
// A request passes if the TAT is no further ahead of now than the burst
// allows, and moves the TAT on by one interval. Any number of
// goroutines may use a Limiter; a client's time is behind the lock of
// its shard (of up to 64).
//
// Clients are remembered in sets of 8 places, chosen by the key's hash.
// A client new to a full set takes the place of the set's client with the
// least debt (the earliest TAT): an idle client, whose TAT is past, owes
// nothing and is forgotten at no cost; if every client of the set owes
// something, the one that owes least starts again with a full budget
// (counted in Stats.Evicted). So clients flooding the limiter with new
// keys push out each other and the lightest users, never lock anyone
// out, and leave those held at their limit where they are.
type Limiter struct {
	interval  int64 // ns between two requests at the rate (GCRA's T)
	tolerance int64 // how far ahead of now a TAT may be: Burst intervals (GCRA's tau)
	dryRun    bool
	header    string
	v6bits    int
	epoch     time.Time // TATs are ns since it, on the monotonic clock
	addrSeed  maphash.Seed
	hdrSeed   maphash.Seed
	perShard  int // sets in each shard
	shardMask uint64
	shards    []shard
	cfg       Config
}

// slot is a place for a client: its key (0 for a place never taken) and
// its TAT.
type slot struct {
	key uint64
	tat int64
}

type set [ways]slot

// shard is sets behind one lock, with the counts of the requests of
// their clients.
type shard struct {
	mu      sync.Mutex
	sets    []set // made at the first request of the shard
	counts  Counts
	evicted uint64
	_       [64]byte // two shards' locks are never on one cache line
}

// New makes a Limiter of cfg. It fails, naming the field, if cfg is
// invalid.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.IPv6Prefix == 0 {
		cfg.IPv6Prefix = 64
	}
	sets := (cfg.MaxKeys + ways - 1) / ways
	shards := 1
	for shards*2 <= min(sets, maxShards) {
		shards *= 2
	}
	iv := cfg.Rate.interval()
	l := &Limiter{
		interval:  iv,
		tolerance: int64(cfg.Burst) * iv,
		dryRun:    cfg.DryRun,
		header:    cfg.Header,
		v6bits:    cfg.IPv6Prefix,
		epoch:     time.Now(),
		addrSeed:  maphash.MakeSeed(),
		hdrSeed:   maphash.MakeSeed(),
		perShard:  (sets + shards - 1) / shards,
		shardMask: uint64(shards - 1),
		shards:    make([]shard, shards),
		cfg:       cfg,
	}
	l.cfg.MaxKeys = shards * l.perShard * ways
	return l, nil
}

// Config is the Limiter's configuration, its defaults filled in and
// MaxKeys as rounded up.
func (l *Limiter) Config() Config { return l.cfg }

// AddrKey is the key of a client address: IPv4-mapped IPv6 addresses as
// their IPv4 ones, IPv6 ones by their first Config.IPv6Prefix bits.
func (l *Limiter) AddrKey(a netip.Addr) Key {
	a = a.Unmap()
	if a.Is6() && l.v6bits < 128 {
		if p, err := a.Prefix(l.v6bits); err == nil {
			a = p.Addr()
		}
	}
	b := a.As16()
	return nonZero(maphash.Bytes(l.addrSeed, b[:]))
}

// HeaderKey is the key of a header's value (Config.Header's); its own,
// apart from any address's.
func (l *Limiter) HeaderKey(v []byte) Key {
	return nonZero(maphash.Bytes(l.hdrSeed, v))
}

// nonZero is h, but 1 for 0, which marks a place never taken.
func nonZero(h uint64) Key {
	if h == 0 {
		h = 1
	}
	return Key(h)
}

// Allow decides a request of the client k at now, and counts it in its
// budget if it passes. A Limited result has the time until the client's
// next request would pass (a Retry-After); so has DryRunLimited.
// Allow allocates nothing (but a shard's sets, at its first request).
func (l *Limiter) Allow(k Key, now time.Time) (Result, time.Duration) {
	t := now.Sub(l.epoch).Nanoseconds()
	sh, i := l.shard(k)
	sh.mu.Lock()
	s := l.slot(sh, i, uint64(k), t)
	tat := max(s.tat, t)
	if tat-t > l.tolerance {
		r := Limited
		if l.dryRun {
			r = DryRunLimited
		}
		sh.counts[r]++
		sh.mu.Unlock()
		return r, time.Duration(tat - l.tolerance - t)
	}
	s.tat = tat + l.interval
	sh.counts[Passed]++
	sh.mu.Unlock()
	return Passed, 0
}

// Undo gives k back the request Allow last passed, for a request refused
// after all (by a second limit): its budget is as if it had not been sent.
// Stats still count it as passed, as it passed this limit. Call it only
// after Allow said Passed for k.
func (l *Limiter) Undo(k Key) {
	sh, i := l.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.sets == nil {
		return
	}
	st := &sh.sets[i]
	for j := range st {
		if st[j].key == uint64(k) {
			st[j].tat -= l.interval
			return
		}
	}
}

// shard is k's shard and the index of its set there: the low bits of
// the hash choose the shard, the high ones the set.
func (l *Limiter) shard(k Key) (*shard, int) {
	sh := &l.shards[uint64(k)&l.shardMask]
	i := int(uint64(uint32(k>>32)) * uint64(l.perShard) >> 32)
	return sh, i
}

// slot is k's place in set i of sh, taken for it if k has none: a free
// one, else the one whose client owes least. Under sh's lock.
func (l *Limiter) slot(sh *shard, i int, k uint64, now int64) *slot {
	if sh.sets == nil {
		sh.sets = make([]set, l.perShard)
	}
	st := &sh.sets[i]
	free, least := -1, 0
	for j := range st {
		if st[j].key == k {
			return &st[j]
		}
		if st[j].key == 0 {
			free = j // places are taken in order and never given up: the rest are free too
			break
		}
		if st[j].tat < st[least].tat {
			least = j
		}
	}
	s := &st[least]
	if free >= 0 {
		s = &st[free]
	} else if s.tat > now {
		sh.evicted++
	}
	s.key, s.tat = k, now
	return s
}

// Stats is what a Limiter has decided, and what it holds.
type Stats struct {
	Counts Counts // requests, by Result

	// Keys are the clients that owe something now (a TAT in the
	// future): those the limiter must remember. At most MaxKeys.
	Keys int

	// Evicted counts the clients that owed something and lost their
	// place to a new one (and so started again with a full budget): a
	// sign that MaxKeys is too small for the clients at hand.
	Evicted uint64

	// MaxKeys is Config.MaxKeys as rounded up: the places for clients.
	MaxKeys int
}

// Stats counts what l has decided and holds, at now. It takes each
// shard's lock in turn, and looks at every client of the shard.
func (l *Limiter) Stats(now time.Time) Stats {
	t := now.Sub(l.epoch).Nanoseconds()
	st := Stats{MaxKeys: l.cfg.MaxKeys}
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for r := range sh.counts {
			st.Counts[r] += sh.counts[r]
		}
		st.Evicted += sh.evicted
		for j := range sh.sets {
			for _, s := range sh.sets[j] {
				if s.key != 0 && s.tat > t {
					st.Keys++
				}
			}
		}
		sh.mu.Unlock()
	}
	return st
}
