// Package ratelimit limits each client of a server to a rate of
// requests, with a burst, as nginx's limit_req does with burst and
// nodelay: a client that sent nothing for a while may send 1+Burst
// requests at once, then one each Per/Count, and a request past that is
// refused with 429 Too Many Requests and a Retry-After in whole seconds.
//
//	rate, err := ratelimit.ParseRate("10/s")
//	l, err := ratelimit.New(ratelimit.Config{Rate: rate, Burst: 5})
//	srv, err := server.New(server.Config{}, l.Handler(next))
//
// Or, to decide and answer in a handler of one's own (the sites package
// does so, applying its header rules to the 429 and counting it):
//
//	if r, wait := l.Allow(l.Key(ctx), time.Now()); r == ratelimit.Limited {
//		ratelimit.Reject(ctx, wait)
//		return
//	}
//
// A client is its address by default (the PROXY protocol's, behind a
// balancer that sends it: the server sets the connection's remote
// address from it), IPv4-mapped IPv6 addresses as IPv4 and IPv6 ones by
// their /64 (Config.IPv6Prefix), or the value of a request header
// (Config.Header; a request without it by its address). Config.DryRun
// decides and counts, and refuses nothing: to try a limit on real
// traffic first.
//
// The limiter is GCRA (the Generic Cell Rate Algorithm): one int64 per
// client, its theoretical arrival time, and a shard lock held for a few
// comparisons. Allow, Key and Reject allocate nothing. Memory is bounded:
// Config.MaxKeys places of 16 bytes (65,536 by default: 1 MiB), each
// client's in one of 8 chosen by its hash, allocated as clients come; a
// client whose time is past owes nothing and its place is taken by the
// next new client that needs one. When every place of a set holds a
// client that owes something, a new one takes the place of the one that
// owes least, which starts again with a full budget (Stats.Evicted):
// nobody is ever refused for want of room, so a client that sends a
// flood of new keys (new addresses, new header values) cannot lock out
// others, and those it pushes out are the lightest users, not the
// clients held at their limit.
//
// Limits: a Limiter's counts are its process's. Two processes that
// serve one address (SO_REUSEPORT, --share-port, a hand-over's two
// generations for a while) each allow the rate, and so do the several
// instances behind a balancer: a shared limit needs a shared store,
// which this package does not have. Keys are 64-bit hashes with a seed
// drawn at New: two clients share a budget by chance with a probability
// of about one in 2^64 per pair, and no client can aim at another's.
package ratelimit
