//go:build !unix

package handover

import (
	"errors"
	"log/slog"
	"os"
)

var errNoHandover = errors.New("handover: needs a Unix system")

// A File is a socket this process serves and may offer.
type File interface {
	File() (*os.File, error)
}

// Registry would hand listening sockets on; it needs Unix file
// descriptor passing, so elsewhere Open fails.
type Registry struct{}

// Open fails: hand-over needs a Unix system.
func Open(string, *slog.Logger) (*Registry, error) { return nil, errNoHandover }

func (*Registry) Take(string, string) []*os.File { return nil }
func (*Registry) Add(string, string, File)       {}
func (*Registry) Serving() (int, error)          { return 0, nil }
func (*Registry) Abandon()                       {}
func (*Registry) HandedOver() <-chan struct{}    { return nil }
func (*Registry) Close()                         {}
func (*Registry) Listen() error                  { return errNoHandover }
