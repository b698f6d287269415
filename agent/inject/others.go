package inject

import (
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vhdprep/vhdprep/rootfs"
)

// unitAgents are the other provisioning agents, started by their own units.
// Each reports Ready and provisions, so it would race the vhdprep agent.
var unitAgents = []struct {
	name  string
	units []string
}{
	{"WALinuxAgent", []string{"walinuxagent.service", "waagent.service"}},
	{"azure-init", []string{"azure-init.service"}},
}

// cloud-init is turned off by one file, which its systemd generator and
// units check; its units stay as the distribution installed them.
var cloudInitUnits = []string{"cloud-init-local.service", "cloud-init.service", "cloud-init-main.service",
	"cloud-init-network.service", "cloud-config.service", "cloud-final.service", "cloud-init.target"}

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

// vendorEnabled tells whether a package enables unit itself (a link in a
// *.wants directory beside its unit file), which only a mask undoes.
func vendorEnabled(root rootfs.FS, unit string) bool {
	for _, dir := range unitDirs {
		if len(enableLinks(root, dir, unit)) > 0 {
			return true
		}
	}
	return false
}

// cloudInitProvisions tells whether cloud-init starts at boot and may pick
// the Azure datasource.
func cloudInitProvisions(root rootfs.FS) bool {
	if _, err := root.Lstat(strings.TrimPrefix(cloudInitDisabled, "/")); err == nil {
		return false
	}
	enabled := false
	for _, u := range cloudInitUnits {
		enabled = enabled || len(enableLinks(root, maskDir, u)) > 0 || vendorEnabled(root, u)
	}
	return enabled && azureDatasource(root)
}

// azureDatasource reads datasource_list as cloud-init does (cloud.cfg, then
// cloud.cfg.d/*.cfg in order, the last setting wins); without one, the
// default list includes Azure.
func azureDatasource(root rootfs.FS) bool {
	files := []string{"etc/cloud/cloud.cfg"}
	ents, _ := root.ReadDir("etc/cloud/cloud.cfg.d")
	var extra []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".cfg") {
			extra = append(extra, path.Join("etc/cloud/cloud.cfg.d", e.Name()))
		}
	}
	sort.Strings(extra)
	list := []string{"Azure"}
	for _, f := range append(files, extra...) {
		b, err := root.ReadFile(f)
		if err != nil {
			continue
		}
		var cfg struct {
			DatasourceList []string `yaml:"datasource_list"`
		}
		if yaml.Unmarshal(b, &cfg) == nil && cfg.DatasourceList != nil {
			list = cfg.DatasourceList
		}
	}
	for _, d := range list {
		if d == "Azure" {
			return true
		}
	}
	return false
}
