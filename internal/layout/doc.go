// Package layout holds the rules of the repository's structure, as a
// test that reads the import graph (go list) and the sources, and fails
// on an arrow that must not exist:
//
//   - server, the connection engine, imports no feature that is served
//     through it: not the reverse proxy (proxy), not static files
//     (static). Features reach the engine through its seams.
//   - The leaves (accesslog, certs, handover, proxy, proxyproto, ratelimit,
//     sites, static) never import server, in their code or their tests.
//   - tune imports nothing of the module.
//   - Nothing imports the command (cmd/...).
//   - The bench package (the library, not its tests and not the
//     bench/peers programs, which measure the engine) does not import
//     server.
//   - Outside server, nothing type-asserts to one of server's types (the
//     engine's connection type is unexported, and stays out of reach).
//
// It has no code of its own.
package layout
