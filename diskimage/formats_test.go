package diskimage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/raw"
)

// VDI, VHDX and VMDK images of every kind qemu-img writes convert to the
// disk qemu-img reads in them, byte for byte as raw and by qemu-img
// compare as a VHD, and info names the convert command that fixes them.
func TestConvertVirtualBoxHyperVVMware(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	const size = 24*raw.MiB + 7*512
	writeSparse(t, src, size, 0, 5*raw.MiB+512, 16*raw.MiB, size-4096)
	for _, tc := range []struct {
		name, format string
		opts         []string
		info         func(*Info) bool
	}{
		{"vdi-dynamic", "vdi", []string{"-o", "static=off"}, func(i *Info) bool { return i.VDI != nil && i.VDI.Type == "dynamic" }},
		{"vdi-fixed", "vdi", []string{"-o", "static=on"}, func(i *Info) bool { return i.VDI != nil && i.VDI.Type == "fixed" }},
		{"vhdx-dynamic", "vhdx", []string{"-o", "subformat=dynamic,block_size=1M"}, func(i *Info) bool { return i.VHDX != nil && i.VHDX.Type == "dynamic" }},
		{"vhdx-fixed", "vhdx", []string{"-o", "subformat=fixed,block_size=2M"}, func(i *Info) bool { return i.VHDX != nil && i.VHDX.Type == "fixed" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(dir, tc.name+"."+tc.format)
			qemuImg(t, append(append([]string{"convert", "-f", "raw", "-O", tc.format}, tc.opts...), src, in)...)
			oracle := filepath.Join(dir, tc.name+".oracle")
			qemuImg(t, "convert", "-f", tc.format, "-O", "raw", in, oracle)

			out := filepath.Join(dir, tc.name+".raw")
			if _, err := Convert(context.Background(), ConvertOptions{Input: in, Output: out, ToRaw: true}); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(out)
			want, _ := os.ReadFile(oracle)
			if !bytes.Equal(got, want) {
				t.Fatalf("vhdprep's raw (%d bytes) differs from qemu-img's (%d bytes)", len(got), len(want))
			}
			vhdOut := filepath.Join(dir, tc.name+".vhd")
			if _, err := Convert(context.Background(), ConvertOptions{Input: in, Output: vhdOut}); err != nil {
				t.Fatal(err)
			}
			assertSameData(t, tc.format, in, "vpc", vhdOut)

			info, err := Inspect(in, nil)
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != Format(tc.format) || info.VirtualSize != int64(len(want)) || !tc.info(info) {
				t.Fatalf("info: format %s, size %d, fields %+v %+v", info.Format, info.VirtualSize, info.VDI, info)
			}
			if info.Valid || len(info.Problems) == 0 || !strings.Contains(info.Problems[0], "fix: vhdprep convert "+in) {
				t.Fatalf("verdict %v; want VHD001 naming vhdprep convert", info.Problems)
			}
		})
	}
}
