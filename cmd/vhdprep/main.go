// Command vhdprep takes a Linux disk image from "built somewhere" to
// "running on Azure". This package is only the command line: flags, output
// and exit codes over the library packages.
package main

import (
	"os"

	"github.com/vhdprep/vhdprep/internal/iostreams"
)

// signals is what the first SIGINT or SIGTERM does (see interrupts); nil
// when vhdprep runs inside a test.
var signals *interrupts

func main() {
	ctx, in := catchInterrupts()
	signals = in
	os.Exit(run(ctx, os.Args[1:], iostreams.System()))
}
