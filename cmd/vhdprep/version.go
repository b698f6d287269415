package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/agent/inject"
)

// version and commit are set at build time (see the Makefile):
// -ldflags "-X main.version=... -X main.commit=..."
var (
	version = "dev"
	commit  = ""
)

// versionInfo is what vhdprep version -o json prints: enough to trace a
// binary, and the agents it would inject, to their source.
type versionInfo struct {
	Version string              `json:"version"`
	Commit  string              `json:"commit"`
	Go      string              `json:"go"`
	OS      string              `json:"os"`
	Arch    string              `json:"arch"`
	Agents  []inject.AgentBuild `json:"agents"`
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of vhdprep",
		Example: "  vhdprep version\n  vhdprep version --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.jsonOutput() {
				return a.printJSON(versionInfo{version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, inject.EmbeddedBuilds()})
			}
			fmt.Fprintln(a.io.Out, versionLine())
			return nil
		},
	}
}

// versionLine is what vhdprep version and vhdprep --version print.
func versionLine() string {
	built := fmt.Sprintf("%s, %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if commit != "" {
		built = "commit " + commit[:min(12, len(commit))] + ", " + built
	}
	return fmt.Sprintf("vhdprep %s (%s)", version, built)
}
