package lint

import (
	"fmt"
	"strings"

	"github.com/vhdprep/vhdprep/guest/agents"
	"github.com/vhdprep/vhdprep/rootfs"
)

// The programs extensions run.
const (
	pythonLink        = "usr/bin/python"
	defaultPython     = "usr/bin/python3"
	opensslPath       = "usr/bin/openssl"
	opensslPathLegacy = "bin/openssl"
)

// extensionNeed is a program Azure's own extensions run in the guest,
// whichever agent starts them, and the extensions that fail without it.
type extensionNeed struct {
	what       string   // for the message
	paths      []string // any of these
	extensions []string
	why        string
	fix        string
}

var extensionNeeds = []extensionNeed{
	{"openssl", []string{opensslPath, opensslPathLegacy}, []string{"CustomScript", "Run Command"},
		"they decrypt their protectedSettings with openssl cms (then smime)", "install the openssl package"},
	{"/usr/bin/python or /usr/bin/python3", []string{pythonLink, defaultPython}, []string{"VMAccess", "Log Analytics (OMS)", "Azure Disk Encryption", "Linux Diagnostics"},
		"their handlers are Python programs", "install python3"},
}

// extensionsRun tells whether VM extensions will run in this image: an
// agent that runs them is installed with extensions on (WALinuxAgent, the
// vhdprep agent), or no agent is installed yet and the one AGT001 asks
// for will. cloud-init and azure-init provision but run no extension.
func extensionsRun(root rootfs.FS) (bool, error) {
	installed := 0
	for _, a := range []struct{ program, agent string }{{waagentProgram, agents.WAAgent}, {vhdprepAgentBin, agents.Vhdprep}} {
		if !exists(root, a.program) {
			continue
		}
		installed++
		conf, _, err := agents.Values(root, a.agent)
		if err != nil {
			return false, err
		}
		if agents.Switch(a.agent, conf, agents.KeyExtensions, true) {
			return true, nil
		}
	}
	return installed == 0 && !exists(root, cloudInitProgram) && !exists(root, azureInitProgram), nil
}

// checkExtensionPrerequisites: what Azure's extensions need, whatever
// agent runs them.
func checkExtensionPrerequisites(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	if run, err := extensionsRun(root); err != nil || !run {
		return nil, err
	}
	var fs []Finding
	for _, n := range extensionNeeds {
		if !existsAny(root, n.paths) {
			fs = append(fs, Finding{Message: fmt.Sprintf("no %s: the %s extensions fail (%s)", n.what, strings.Join(n.extensions, ", "), n.why), Fix: n.fix})
		}
	}
	return fs, nil
}

// checkPythonForAgent: WALinuxAgent is a Python program, and extensions
// that call /usr/bin/python fail where only python3 is installed (Ubuntu
// 20.04 and later), whichever agent runs them. No Python at all is AGT007's
// finding for the extensions, not repeated here.
func checkPythonForAgent(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	anyPython := existsAny(root, []string{defaultPython, "usr/bin/python2", pythonLink})
	var fs []Finding
	if exists(root, waagentProgram) && !anyPython {
		fs = append(fs, Finding{Message: "WALinuxAgent is installed but no Python interpreter is: it cannot run", Fix: "install python3"})
	}
	run, err := extensionsRun(root)
	if err != nil {
		return nil, err
	}
	if run && anyPython && !exists(root, pythonLink) {
		fs = append(fs, Finding{Message: "/usr/bin/python is missing; extensions that call it fail (Ubuntu 20.04 and later dropped it)",
			Location: Location{File: "/" + pythonLink},
			Fix:      "install python-is-python3 (Debian, Ubuntu), or run 'alternatives --set python /usr/bin/python3' (RHEL)"})
	}
	return fs, nil
}
