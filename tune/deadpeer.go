package tune

import (
	"fmt"
	"net"
	"time"
)

// Go's keep-alive defaults, which a zero KeepAlive field takes.
const (
	goKeepAliveIdle     = 15 * time.Second
	goKeepAliveInterval = 15 * time.Second
	goKeepAliveCount    = 9
)

// keepAliveEffective is ka with Go's defaults in its zero fields.
func keepAliveEffective(ka net.KeepAliveConfig) net.KeepAliveConfig {
	if ka.Idle == 0 {
		ka.Idle = goKeepAliveIdle
	}
	if ka.Interval == 0 {
		ka.Interval = goKeepAliveInterval
	}
	if ka.Count == 0 {
		ka.Count = goKeepAliveCount
	}
	return ka
}

// EffectiveUserTimeout is the TCP_USER_TIMEOUT each accepted connection
// gets: UserTimeout if positive; if zero, Idle + Interval×Count of an
// enabled KeepAlive where the platform has the option (Linux); otherwise
// none (0).
func (o Options) EffectiveUserTimeout() time.Duration {
	switch {
	case o.UserTimeout > 0:
		return o.UserTimeout
	case o.UserTimeout < 0 || !o.KeepAlive.Enable || o.DisableKeepAlive || !userTimeoutSupported:
		return 0
	}
	ka := keepAliveEffective(o.KeepAlive)
	return ka.Idle + ka.Interval*time.Duration(ka.Count)
}

// DeadPeerAfter is how long after the last segment received from it an
// idle connection whose peer vanished (no FIN, no RST reaches the server)
// is closed by the kernel with these options, or 0 if never: keep-alive
// off. See SocketState.DeadPeerAfter.
func (o Options) DeadPeerAfter() time.Duration {
	if o.DisableKeepAlive {
		return 0
	}
	ka := keepAliveEffective(o.KeepAlive) // Go turns keep-alive on by default
	return deadPeerAfter(ka.Idle, ka.Interval, ka.Count, o.EffectiveUserTimeout())
}

// KeepAliveOverridden reports whether an explicit UserTimeout changes when
// a vanished idle peer is found: the kernel then ignores Count, and closes
// the connection after DeadPeerAfter instead of Idle + Interval×Count.
func (o Options) KeepAliveOverridden() bool {
	if o.UserTimeout <= 0 || !o.KeepAlive.Enable || o.DisableKeepAlive {
		return false
	}
	ka := keepAliveEffective(o.KeepAlive)
	return o.DeadPeerAfter() != ka.Idle+ka.Interval*time.Duration(ka.Count)
}

// KeepAliveNote says, when KeepAliveOverridden, what the kernel will do
// instead of what the keep-alive settings say, for an operator to read;
// otherwise it is empty.
func (o Options) KeepAliveNote() string {
	if !o.KeepAliveOverridden() {
		return ""
	}
	return fmt.Sprintf("the TCP user timeout (%v) replaces the keep-alive probe count (%d): "+
		"the kernel closes an idle connection whose peer vanished %v after its last segment, not idle + interval x count; "+
		"leave the user timeout unset to derive it from keep-alive", o.UserTimeout, keepAliveEffective(o.KeepAlive).Count, o.DeadPeerAfter())
}

// DeadPeerAfter is how long after the last segment received from it this
// idle connection is closed by the kernel if its peer vanished, from the
// options it holds, or 0 if never (keep-alive off). Without a user
// timeout: Idle + Interval×Count. With one, Linux's tcp_keepalive_timer
// ignores the probe count and closes the connection at the first probe
// due, after the first, once the user timeout has passed: Idle +
// Interval×k for the least k >= 1 that reaches it.
func (s SocketState) DeadPeerAfter() time.Duration {
	if !s.KeepAlive {
		return 0
	}
	return deadPeerAfter(s.KeepAliveIdle, s.KeepAliveInterval, s.KeepAliveCount, s.UserTimeout)
}

func deadPeerAfter(idle, interval time.Duration, count int, userTimeout time.Duration) time.Duration {
	if userTimeout <= 0 {
		return idle + interval*time.Duration(count)
	}
	if interval <= 0 {
		return max(idle, userTimeout)
	}
	k := time.Duration(1)
	if rest := userTimeout - idle; rest > interval {
		k = (rest + interval - 1) / interval
	}
	return idle + interval*k
}
