// Command ferretdb runs FerretDB 1.24 (a MongoDB wire-protocol server) with its SQLite backend, for
// the Rocket.Chat target's tests: a real MongoDB server that pymongo talks to over 127.0.0.1.
//
// It embeds the `ferretdb` package instead of building FerretDB's own command, whose init panics
// outside FerretDB's repository for want of the generated build/version/version.txt.
//
//	usage: ferretdb -port 27017 -state DIR [-log warn]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	port := flag.Int("port", 27017, "TCP port to listen on (127.0.0.1 only)")
	state := flag.String("state", "ferretdb-state", "folder for the SQLite databases (created if missing)")
	level := flag.String("log", "warn", "log level: debug, info, warn, error")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: -log %q: %v\n", *level, err)
		os.Exit(2)
	}
	dir, err := filepath.Abs(*state)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: -state %q: %v\n", *state, err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	// The SQLite handler wants a directory URI with a trailing slash: one database file per Mongo database.
	server, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: fmt.Sprintf("127.0.0.1:%d", *port)},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}

	// Stop cleanly on SIGTERM/SIGINT so the SQLite files are closed (the tests send SIGTERM).
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := server.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}
}
