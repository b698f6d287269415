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
	// A second signal gets the default action, so an impatient user can
	// force the exit; an interrupted image change is undone by the next run.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], iostreams.System())
	stop()
	os.Exit(code)
}
