// Package zeroschema holds the Go code generated from zeroflist.capnp, the
// Cap'n Proto schema of 0-flist directory and ACL entries (the v0.4-era flist
// format). The generated file is not edited by hand; regenerate it with
// go generate (needs the capnp compiler, Debian package capnproto).
package zeroschema

//go:generate sh -c "go build -o /tmp/capnpc-go capnproto.org/go/capnp/v3/capnpc-go && capnp compile -I $(go list -m -f '{{.Dir}}' capnproto.org/go/capnp/v3)/std -o- zeroflist.capnp | /tmp/capnpc-go -promises=0 -schemas=0 -structstrings=0"
