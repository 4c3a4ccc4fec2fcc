//go:build !unix

package server

import (
	"errors"
	"os"
)

var errNoHandover = errors.New("server: Handover needs a Unix system")

type inherited struct{ pid int }

func requestHandover(string) (*inherited, error)  { return nil, errNoHandover }
func (*inherited) take(string, string) []*os.File { return nil }
func (*inherited) close(bool) error               { return nil }
func (s *Server) listenHandover() error           { return errNoHandover }
