//go:build tools

// Package tools pins the etcd server command for the build script; it is never compiled.
package tools

import _ "go.etcd.io/etcd/server/v3"
