package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// holdIdle opens o.idle WebSockets, each echoing one message, says
// "ready", and holds them until a signal or the end of standard input.
func holdIdle(o options) error {
	fmt.Println(raiseFileLimit())
	start := time.Now()
	conns, err := openAll(&o, o.idle)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	sources := o.sources
	if sources == 0 {
		sources = sourcesNeeded(o.idle)
	}
	fmt.Printf("ready: %d WebSockets to %s from %d source address(es) in %v, %d-byte echo each; tls: %s\n",
		len(conns), o.addr, sources, time.Since(start).Round(time.Millisecond), o.size, tlsState(conns[0]))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case s := <-sig:
		fmt.Printf("closing %d WebSockets on %v\n", len(conns), s)
	case <-stdinClosed:
	}
	return nil
}
