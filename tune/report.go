package tune

// A SocketReport is the part of a [SocketState] an operator checks, in
// seconds and microseconds, with JSON names: that keep-alive reached the
// kernel, and how the path to the peer is doing.
type SocketReport struct {
	State                    string  `json:"state"`
	KeepAlive                bool    `json:"keepalive"`
	KeepAliveIdleSeconds     float64 `json:"keepalive_idle_seconds"`
	KeepAliveIntervalSeconds float64 `json:"keepalive_interval_seconds"`
	KeepAliveCount           int     `json:"keepalive_count"`
	UserTimeoutSeconds       float64 `json:"user_timeout_seconds"`
	// DeadPeerAfterSeconds is how long after the peer's last segment the
	// kernel closes the connection, idle, if the peer vanished (no FIN or
	// RST arrives): SocketState.DeadPeerAfter. Nil, and absent from the
	// JSON, when nothing bounds it (keep-alive off).
	DeadPeerAfterSeconds *float64 `json:"dead_peer_after_seconds,omitempty"`
	RTTMicros            int64    `json:"rtt_us"`
	RTTVarMicros         int64    `json:"rttvar_us"`
	Retransmits          uint32   `json:"retransmits_total"`
	Unacked              uint32   `json:"unacked"`
	Lost                 uint32   `json:"lost"`
}

// Report is s as a SocketReport.
func (s SocketState) Report() *SocketReport {
	r := &SocketReport{
		State:                    s.State.String(),
		KeepAlive:                s.KeepAlive,
		KeepAliveIdleSeconds:     s.KeepAliveIdle.Seconds(),
		KeepAliveIntervalSeconds: s.KeepAliveInterval.Seconds(),
		KeepAliveCount:           s.KeepAliveCount,
		UserTimeoutSeconds:       s.UserTimeout.Seconds(),
		RTTMicros:                s.RTT.Microseconds(),
		RTTVarMicros:             s.RTTVar.Microseconds(),
		Retransmits:              s.TotalRetransmits,
		Unacked:                  s.Unacked,
		Lost:                     s.Lost,
	}
	if d := s.DeadPeerAfter(); d > 0 {
		secs := d.Seconds()
		r.DeadPeerAfterSeconds = &secs
	}
	return r
}
