package tune

import (
	"fmt"
	"net"
)

// Apply sets o's per-connection options (KeepAlive, DisableKeepAlive,
// UserTimeout, NoDelay, ReadBuffer, WriteBuffer) on c, for callers that
// accept connections from a listener of their own. The listener fields of
// o are ignored. It returns an *[OptionError] for each invalid field before
// changing anything, or the first error the kernel gave.
func Apply(c *net.TCPConn, o Options) error {
	if err := o.check(false); err != nil {
		return err
	}
	return apply(c, o)
}

// apply sets o's per-connection options on c; o is valid.
func apply(c *net.TCPConn, o Options) error {
	switch {
	case o.DisableKeepAlive:
		if err := c.SetKeepAlive(false); err != nil {
			return fmt.Errorf("tune: set keep-alive off: %w", err)
		}
	case o.KeepAlive.Enable:
		if err := c.SetKeepAliveConfig(o.KeepAlive); err != nil {
			return fmt.Errorf("tune: set keep-alive: %w", err)
		}
	}
	if ut := o.EffectiveUserTimeout(); ut > 0 {
		if err := setUserTimeout(c, ut); err != nil {
			return fmt.Errorf("tune: set TCP_USER_TIMEOUT: %w", err)
		}
	}
	if o.NoDelay {
		if err := c.SetNoDelay(true); err != nil {
			return fmt.Errorf("tune: set TCP_NODELAY: %w", err)
		}
	}
	if o.ReadBuffer > 0 {
		if err := c.SetReadBuffer(o.ReadBuffer); err != nil {
			return fmt.Errorf("tune: set SO_RCVBUF: %w", err)
		}
	}
	if o.WriteBuffer > 0 {
		if err := c.SetWriteBuffer(o.WriteBuffer); err != nil {
			return fmt.Errorf("tune: set SO_SNDBUF: %w", err)
		}
	}
	return nil
}
