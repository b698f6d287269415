package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

type versionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of vhdprep",
		Example: "  vhdprep version\n  vhdprep version --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.jsonOutput() {
				return a.printJSON(versionInfo{version, runtime.Version(), runtime.GOOS, runtime.GOARCH})
			}
			fmt.Fprintln(a.io.Out, versionLine())
			return nil
		},
	}
}

// versionLine is what vhdprep version and vhdprep --version print.
func versionLine() string {
	return fmt.Sprintf("vhdprep %s (%s, %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
