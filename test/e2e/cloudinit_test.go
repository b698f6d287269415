//go:build e2e

package e2e

import (
	"encoding/json"
	"os/exec"
	"slices"
	"testing"
)

// cloudInitCases are cloud-init configurations as images carry them:
// cloud.cfg and its cloud.cfg.d drop-ins, under /etc/cloud.
var cloudInitCases = []configCase{
	{"a drop-in names Azure", map[string]string{"cloud.cfg": "datasource_list: [ NoCloud, None ]\n", "cloud.cfg.d/90-azure.cfg": "datasource_list: [ Azure ]\n"}},
	{"a later drop-in wins", map[string]string{"cloud.cfg": "{}\n", "cloud.cfg.d/10-azure.cfg": "datasource_list: [ Azure ]\n", "cloud.cfg.d/99-builder.cfg": "datasource_list: [ NoCloud ]\n"}},
	{"only .cfg files count", map[string]string{"cloud.cfg": "datasource_list: [ NoCloud ]\n", "cloud.cfg.d/90-azure.cfg.disabled": "datasource_list: [ Azure ]\n"}},
	{"no list: cloud-init's own", map[string]string{"cloud.cfg": "datasource:\n  Azure:\n    apply_network_config: false\n", "cloud.cfg.d/05_logging.cfg": "output: {all: '| tee -a /var/log/cloud-init-output.log'}\n"}},
	{"a nested drop-in keeps the list", map[string]string{"cloud.cfg": "datasource_list: [ Azure, None ]\n", "cloud.cfg.d/50-ds.cfg": "datasource:\n  Azure:\n    data_dir: /var/lib/waagent\n"}},
}

// wantCloudInitAgrees: check's AGT005 reads each of cloudInitCases as the
// guest's own cloud-init merges it (read_conf_with_confd in a chroot of
// the image's tree): it passes exactly where the merged datasource_list is
// cloud-init's own or names Azure.
func wantCloudInitAgrees(t *testing.T, vhdprep, root string) {
	cloudInit := guestProgram{path: "usr/bin/cloud-init", dir: "/etc/cloud", mode: 0o644, inside: "/tmp/vhdprep-e2e-cloud"}
	cloudInit.eachCase(t, root, cloudInitCases, func(t *testing.T, guest string) {
		out, err := exec.Command("chroot", root, "python3", "-c",
			"import json, sys; from cloudinit import util; print(json.dumps(util.read_conf_with_confd(sys.argv[1]).get('datasource_list')))",
			cloudInit.inside+"/cloud.cfg").Output()
		var list []string
		if err != nil || json.Unmarshal(out, &list) != nil {
			t.Fatalf("the guest's cloud-init: %v\n%s", err, out)
		}
		want := list == nil || slices.Contains(list, "Azure")
		if got, _ := ruleOutcome(t, vhdprep, guest, "AGT005"); (got == "pass") != want {
			t.Errorf("AGT005 %s, but the guest's cloud-init merges datasource_list %v", got, list)
		}
	})
}
