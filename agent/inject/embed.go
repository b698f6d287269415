package inject

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"embed"
	"encoding/hex"
	"fmt"
	"strings"
)

// binaries holds the guest agent for each architecture, put in bin/ by
// `make build` (the README there keeps the pattern matching without them).
//
//go:embed bin
var binaries embed.FS

// goarch maps the names guest.DetectArch gives to Go's, and the ELF machine
// each must be.
var goarch = map[string]struct {
	name    string
	machine elf.Machine
}{
	"x86_64":  {"amd64", elf.EM_X86_64},
	"aarch64": {"arm64", elf.EM_AARCH64},
}

// EmbeddedBinary returns the agent built into this vhdprep for a guest
// architecture as guest.DetectArch names it.
func EmbeddedBinary(arch string) ([]byte, error) {
	ga, ok := goarch[arch]
	if !ok {
		return nil, fmt.Errorf("the guest's architecture is %s; the vhdprep agent is built for x86_64 and aarch64", archName(arch))
	}
	b, err := binaries.ReadFile("bin/vhdprep-agent-linux-" + ga.name)
	if err != nil {
		return nil, fmt.Errorf("this vhdprep was built without the linux/%s agent: run 'make build', or pass --agent-binary PATH", ga.name)
	}
	return b, nil
}

// AgentBuild describes an agent built into vhdprep: the version and
// commit the build recorded beside it (bin/VERSION, "VERSION COMMIT"), the
// Go that built it (read from the binary) and its digest.
type AgentBuild struct {
	Arch    string `json:"arch"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	SHA256  string `json:"sha256"`
}

// EmbeddedBuilds describes each agent built into this vhdprep, by Go
// architecture; none when it was built without them.
func EmbeddedBuilds() []AgentBuild {
	stamp, _ := binaries.ReadFile("bin/VERSION")
	version, commit, _ := strings.Cut(strings.TrimSpace(string(stamp)), " ")
	out := []AgentBuild{}
	for _, arch := range []string{"amd64", "arm64"} {
		b, err := binaries.ReadFile("bin/vhdprep-agent-linux-" + arch)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(b)
		ab := AgentBuild{Arch: arch, Version: version, Commit: commit, SHA256: hex.EncodeToString(sum[:])}
		if bi, err := buildinfo.Read(bytes.NewReader(b)); err == nil {
			ab.Go = bi.GoVersion
		}
		out = append(out, ab)
	}
	return out
}

// CheckBinary makes sure a given agent binary is a Linux executable for the
// guest's architecture.
func CheckBinary(b []byte, arch string) error {
	ga, ok := goarch[arch]
	if !ok {
		return fmt.Errorf("the guest's architecture is %s; the vhdprep agent is built for x86_64 and aarch64", archName(arch))
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not an ELF executable: %v", err)
	}
	if f.Machine != ga.machine || f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("an ELF %s for %s; the guest is %s: build it with GOARCH=%s", f.Type, f.Machine, arch, ga.name)
	}
	// The guest's C library may be anything, or missing.
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("dynamically linked; build it static with CGO_ENABLED=0")
		}
	}
	return nil
}

func archName(arch string) string {
	if arch == "" {
		return "unknown (no ELF binary found in the image)"
	}
	return arch
}
