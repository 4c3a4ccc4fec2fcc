//go:build unix

package handover_test

import (
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"

	"github.com/fastserve/fastserve/handover"
)

// Two generations of a server in one program: the second takes the
// first's listening socket instead of binding its own.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "handover")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "handover.sock")

	// The running process: nobody to take over from, so it binds.
	old, err := handover.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	old.Add("https", ":8443", ln.(*net.TCPListener))
	_ = old.Listen()

	// Its successor: takes the socket, then says it serves.
	next, err := handover.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	files := next.Take("https", ":8443")
	taken, _ := net.FileListener(files[0])
	files[0].Close()
	if _, err := next.Serving(); err != nil {
		log.Fatal(err)
	}
	<-old.HandedOver() // the old process drains and exits
	ln.Close()
	fmt.Println("same socket:", taken.Addr().String() == ln.Addr().String())
	taken.Close()
	next.Close()
	// Output: same socket: true
}
