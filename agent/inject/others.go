package inject

import (
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

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
// Azure as its datasource.
func cloudInitOff(root rootfs.FS) bool {
	_, err := root.Lstat(strings.TrimPrefix(cloudInitDisabled, "/"))
	return err == nil || !azureDatasource(root)
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
