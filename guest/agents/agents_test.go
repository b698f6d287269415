package agents

import (
	"testing"

	"gopkg.in/yaml.v3"
)

// cloud-init's swap size, as its cc_mounts module reads it.
func TestCloudInitSwapMB(t *testing.T) {
	for in, want := range map[string]string{"size: 2G": "2048", "size: 2147483648": "2048", "size: 512M": "512", "size: 1.5G": "1536", "size: auto": "", "filename: /swap.img": "", "size: 0": ""} {
		cfg := map[string]any{}
		if err := yaml.Unmarshal([]byte("swap:\n  "+in+"\n"), &cfg); err != nil {
			t.Fatal(err)
		}
		if got := cloudInitSwapMB(cfg); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}
