package inject

import (
	"bytes"
	"debug/elf"
	"embed"
	"fmt"
)

// agents holds the guest agent for each architecture, put in bin/ by
// `make build` (the README there keeps the pattern matching without them).
//
//go:embed bin
var agents embed.FS

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
	b, err := agents.ReadFile("bin/vhdprep-agent-linux-" + ga.name)
	if err != nil {
		return nil, fmt.Errorf("this vhdprep was built without the linux/%s agent: run 'make build', or pass --agent-binary PATH", ga.name)
	}
	return b, nil
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
