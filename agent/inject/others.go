package inject

import (
	"strings"

	"github.com/vhdprep/vhdprep/guest/agents"
	"github.com/vhdprep/vhdprep/rootfs"
)

// rivals are the other provisioning agents. Each reports Ready and
// provisions, so it would race the vhdprep agent. They are turned off by
// their units' enable links (and lint's AGT006 looks at those); cloud-init
// also by the file its generator and units check.
var rivals = []struct {
	name      string
	units     []string
	cloudInit bool
}{
	{"WALinuxAgent", []string{"walinuxagent.service", "waagent.service"}, false},
	{"azure-init", []string{"azure-init.service"}, false},
	{"cloud-init", []string{"cloud-init-local.service", "cloud-init.service", "cloud-init-main.service",
		"cloud-init-network.service", "cloud-config.service", "cloud-final.service", "cloud-init.target"}, true},
}

const (
	cloudInitDisabled = "/etc/cloud/cloud-init.disabled"
	maskDir           = "/etc/systemd/system" // the administrator's units: enable links and masks
)

// unitDirs are where packages install units.
var unitDirs = []string{"/usr/lib/systemd/system", "/lib/systemd/system"}

// enableLinks lists the symlinks in the *.wants directories of dir that
// start unit.
func enableLinks(root rootfs.FS, dir, unit string) []string {
	ents, _ := root.ReadDir(strings.TrimPrefix(dir, "/"))
	var out []string
	for _, e := range ents {
		p := dir + "/" + e.Name() + "/" + unit
		if !strings.HasSuffix(e.Name(), ".wants") {
			continue
		}
		if _, err := root.Lstat(strings.TrimPrefix(p, "/")); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// packageUnitDirs are where the guest's packages install units (and the
// *.wants links of the units they enable themselves): one directory when
// /lib links to /usr/lib.
func packageUnitDirs(root rootfs.FS) []string {
	if info, err := root.Lstat("lib"); err == nil && info.IsDir() {
		return unitDirs
	}
	return unitDirs[:1]
}

// cloudInitOff tells whether cloud-init is disabled, or would not choose
// Azure as its datasource (as check's AGT006 sees it).
func cloudInitOff(root rootfs.FS) bool {
	_, err := root.Lstat(strings.TrimPrefix(cloudInitDisabled, "/"))
	return err == nil || !agents.CloudInitChoosesAzure(root)
}
