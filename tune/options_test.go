package tune_test

import (
	"errors"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/tune"
)

func TestValidateRejects(t *testing.T) {
	somaxconn := sysctl(t, "net.core.somaxconn")
	rmemMax := sysctl(t, "net.core.rmem_max")
	ka := func(idle, intvl time.Duration, n int) net.KeepAliveConfig {
		return net.KeepAliveConfig{Enable: true, Idle: idle, Interval: intvl, Count: n}
	}
	for _, tc := range []struct {
		name string
		o    tune.Options
		want string
	}{
		{"negative idle", tune.Options{KeepAlive: ka(-time.Second, 0, 0)},
			"tune: KeepAlive.Idle must be a whole number of seconds from 1s to 32767s, or 0 for 15s, got -1s"},
		{"sub-second interval", tune.Options{KeepAlive: ka(0, 500*time.Millisecond, 0)},
			"tune: KeepAlive.Interval must be a whole number of seconds from 1s to 32767s, or 0 for 15s, got 500ms"},
		{"fractional idle", tune.Options{KeepAlive: ka(1500*time.Millisecond, 0, 0)},
			"tune: KeepAlive.Idle must be a whole number of seconds from 1s to 32767s, or 0 for 15s, got 1.5s"},
		{"idle above kernel max", tune.Options{KeepAlive: ka(32768*time.Second, 0, 0)},
			"tune: KeepAlive.Idle must be a whole number of seconds from 1s to 32767s, or 0 for 15s, got 9h6m8s"},
		{"count above kernel max", tune.Options{KeepAlive: ka(0, 0, 128)},
			"tune: KeepAlive.Count must be from 1 to 127, or 0 for 9, got 128"},
		{"negative count", tune.Options{KeepAlive: ka(0, 0, -1)},
			"tune: KeepAlive.Count must be from 1 to 127, or 0 for 9, got -1"},
		{"count with keep-alive disabled", tune.Options{KeepAlive: net.KeepAliveConfig{Count: 3}},
			"tune: KeepAlive.Count must be zero when KeepAlive.Enable is false (set Enable to use it), got 3"},
		{"idle with keep-alive disabled", tune.Options{KeepAlive: net.KeepAliveConfig{Idle: time.Minute}},
			"tune: KeepAlive.Idle must be zero when KeepAlive.Enable is false (set Enable to use it), got 1m0s"},
		{"keep-alive both on and off", tune.Options{DisableKeepAlive: true, KeepAlive: ka(time.Minute, 0, 0)},
			"tune: KeepAlive must be zero when DisableKeepAlive is set, got {Enable:true Idle:1m0s Interval:0s Count:0}"},
		{"sub-millisecond user timeout", tune.Options{UserTimeout: 1500 * time.Microsecond},
			"tune: UserTimeout must be a whole number of milliseconds from 1ms to 596h31m23.647s, 0 to derive it from KeepAlive, or negative for off, got 1.5ms"},
		{"negative backlog", tune.Options{Backlog: -1},
			"tune: Backlog must be 0 (the kernel's somaxconn) or more, got -1"},
		{"backlog above somaxconn", tune.Options{Backlog: somaxconn + 1},
			"tune: Backlog must be from 0 to " + strconv.Itoa(somaxconn) + " (net.core.somaxconn), got " + strconv.Itoa(somaxconn+1)},
		{"negative read buffer", tune.Options{ReadBuffer: -1},
			"tune: ReadBuffer must be 0 (kernel autotuning) or more bytes, got -1"},
		{"negative write buffer", tune.Options{WriteBuffer: -4096},
			"tune: WriteBuffer must be 0 (kernel autotuning) or more bytes, got -4096"},
		{"read buffer above rmem_max", tune.Options{ReadBuffer: rmemMax + 1},
			"tune: ReadBuffer must be from 0 to " + strconv.Itoa(rmemMax) + " bytes (net.core.rmem_max), got " + strconv.Itoa(rmemMax+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			require.Error(t, err)
			assert.EqualError(t, err, tc.want)
			var oe *tune.OptionError
			assert.True(t, errors.As(err, &oe), "error is an *OptionError")

			// Listen refuses the same options before making a socket.
			_, err = tune.Listen("tcp4", "127.0.0.1:0", tc.o)
			assert.EqualError(t, err, tc.want)
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	err := tune.Options{Backlog: -1, ReadBuffer: -1, UserTimeout: 1500 * time.Microsecond}.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var oe *tune.OptionError
		require.True(t, errors.As(e, &oe))
		fields = append(fields, oe.Field)
	}
	assert.Equal(t, []string{"UserTimeout", "Backlog", "ReadBuffer"}, fields)
}

func TestValidateAccepts(t *testing.T) {
	for name, o := range map[string]tune.Options{
		"zero":    {},
		"default": tune.Default(),
		"keep-alive with Go's defaults for unset fields": {KeepAlive: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second}},
		"keep-alive off": {DisableKeepAlive: true},
		"kernel maxima":  {KeepAlive: net.KeepAliveConfig{Enable: true, Idle: 32767 * time.Second, Interval: 32767 * time.Second, Count: 127}},
	} {
		t.Run(name, func(t *testing.T) { assert.NoError(t, o.Validate()) })
	}
}

func TestFastOpenNeedsServerSysctl(t *testing.T) {
	v := sysctl(t, "net.ipv4.tcp_fastopen")
	err := tune.Options{FastOpen: true}.Validate()
	if v&2 != 0 {
		assert.NoError(t, err, "net.ipv4.tcp_fastopen=%d allows server Fast Open", v)
		return
	}
	assert.EqualError(t, err, "tune: FastOpen must be false where net.ipv4.tcp_fastopen ("+strconv.Itoa(v)+
		" here) lacks the server bit 0x2 (sysctl -w net.ipv4.tcp_fastopen=3 sets it), got true")
}

func TestListenRejectsNetwork(t *testing.T) {
	for _, network := range []string{"udp", "unix", "ip4", ""} {
		_, err := tune.Listen(network, "127.0.0.1:0", tune.Options{})
		assert.EqualError(t, err, `tune: network must be "tcp", "tcp4" or "tcp6", got "`+network+`"`)
	}
	_, err := tune.ListenGroup("tcp4", "127.0.0.1:0", 0, tune.Options{})
	assert.EqualError(t, err, "tune: ListenGroup needs n >= 1 listeners, got 0")
}

// TestDeadPeerAfter: the bound the kernel puts on a vanished idle peer,
// as tcp_keepalive_timer computes it, and when a user timeout changes it.
func TestDeadPeerAfter(t *testing.T) {
	ka := func(idle, intvl time.Duration, n int) net.KeepAliveConfig {
		return net.KeepAliveConfig{Enable: true, Idle: idle, Interval: intvl, Count: n}
	}
	s := time.Second
	for _, tc := range []struct {
		name       string
		o          tune.Options
		userTO     time.Duration // EffectiveUserTimeout
		after      time.Duration // DeadPeerAfter
		overridden bool
	}{
		{"default", tune.Default(), 110 * s, 110 * s, false},
		{"keep-alive alone", tune.Options{KeepAlive: ka(s, s, 2)}, 3 * s, 3 * s, false},
		{"Go's defaults", tune.Options{}, 0, 150 * s, false},
		{"unset fields take Go's defaults", tune.Options{KeepAlive: ka(30*s, 0, 0)}, 165 * s, 165 * s, false},
		{"user timeout off", tune.Options{KeepAlive: ka(s, s, 2), UserTimeout: -1}, 0, 3 * s, false},
		{"longer user timeout", tune.Options{KeepAlive: ka(s, s, 2), UserTimeout: 110 * s}, 110 * s, 110 * s, true},
		{"shorter user timeout", tune.Options{KeepAlive: ka(60*s, 10*s, 5), UserTimeout: 30 * s}, 30 * s, 70 * s, true},
		{"between probes", tune.Options{KeepAlive: ka(60*s, 10*s, 5), UserTimeout: 85 * s}, 85 * s, 90 * s, true},
		{"equal", tune.Options{KeepAlive: ka(60*s, 10*s, 5), UserTimeout: 110 * s}, 110 * s, 110 * s, false},
		{"keep-alive off", tune.Options{DisableKeepAlive: true}, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS != "linux" && tc.o.UserTimeout == 0 {
				tc.userTO = 0
			}
			assert.Equal(t, tc.userTO, tc.o.EffectiveUserTimeout(), "EffectiveUserTimeout")
			if runtime.GOOS == "linux" {
				assert.Equal(t, tc.after, tc.o.DeadPeerAfter(), "DeadPeerAfter")
			}
			assert.Equal(t, tc.overridden, tc.o.KeepAliveOverridden(), "KeepAliveOverridden")
			assert.Equal(t, tc.overridden, tc.o.KeepAliveNote() != "", "KeepAliveNote: %q", tc.o.KeepAliveNote())
		})
	}
}
