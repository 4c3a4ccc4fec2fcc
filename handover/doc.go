// Package handover passes a server's listening sockets from a running
// process to the one that replaces it (a new binary, a new
// configuration), so that no socket is ever closed and no connection
// queued on one is reset, as HAProxy's expose-fd listeners and nginx's
// binary upgrade do, without a parent-child relation between the two
// (tableflip needs one): an operator or a unit manager starts the
// successor.
//
// A Registry records the sockets this process serves (Add), like
// tableflip's Fds, so that offering them needs no walk through the
// server's own lists:
//
//	reg, err := handover.Open("/run/fastserve/handover.sock", logger) // takes what the running process offers
//	files := reg.Take("https", ":443")                              // else bind anew
//	reg.Add("https", ":443", ln)                                    // what this process serves
//	// once serving:
//	prev, err := reg.Serving() // the previous process drains
//	err = reg.Listen()         // offer to the next one
//	<-reg.HandedOver()         // the next one serves: drain
//
// The path is a Unix socket made mode 0600; on Linux only a process of
// the same user (or root) may take the sockets (SO_PEERCRED). If the new
// process fails before Serving, the old one serves on as if nothing
// happened, and may offer the sockets again at once.
//
// Limits: Unix only (descriptor passing with SCM_RIGHTS).
package handover
