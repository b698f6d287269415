// Command vhdprep takes a Linux disk image from "built somewhere" to
// "running on Azure". This package is only the command line: flags, output
// and exit codes over the library packages.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vhdprep/vhdprep/internal/iostreams"
)

func main() {
	// Ctrl-C and SIGTERM cancel the context; commands stop, remove partial
	// outputs and return, so the exit code and message still reach the user.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], iostreams.System())
	stop()
	os.Exit(code)
}
