package diskimage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
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
		{"vmdk-sparse", "vmdk", []string{"-o", "subformat=monolithicSparse"}, vmdkIs("monolithicSparse")},
		{"vmdk-stream", "vmdk", []string{"-o", "subformat=streamOptimized"}, vmdkIs("streamOptimized")},
		{"vmdk-flat", "vmdk", []string{"-o", "subformat=monolithicFlat"}, vmdkIs("monolithicFlat")},
		{"vmdk-2gb-sparse", "vmdk", []string{"-o", "subformat=twoGbMaxExtentSparse"}, vmdkIs("twoGbMaxExtentSparse")},
		{"vmdk-2gb-flat", "vmdk", []string{"-o", "subformat=twoGbMaxExtentFlat"}, vmdkIs("twoGbMaxExtentFlat")},
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

func vmdkIs(createType string) func(*Info) bool {
	return func(i *Info) bool { return i.VMDK != nil && i.VMDK.CreateType == createType }
}

// An OVA's first disk, a stream as vSphere exports it, converts to the
// disk qemu-img reads in it once extracted, and info says which disk it is.
func TestConvertOVA(t *testing.T) {
	dir := t.TempDir()
	_, data := disktest.Source(t, dir, 12*raw.MiB+512)
	stream := disktest.VMDK(data, 128, 512, true)
	extracted := filepath.Join(dir, "disk1.vmdk")
	os.WriteFile(extracted, stream, 0o644)
	in := filepath.Join(dir, "vm.ova")
	os.WriteFile(in, disktest.Tar(t, "vm.ovf", disktest.OVF("disk1.vmdk", "disk2.vmdk"), "disk1.vmdk", stream, "disk2.vmdk", stream), 0o644)
	out := filepath.Join(dir, "vm.raw")
	res, err := Convert(context.Background(), ConvertOptions{Input: in, Output: out, ToRaw: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Disk != "disk1.vmdk, the first of the 2 disks its OVF names" {
		t.Fatalf("convert says it read %q", res.Disk)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, disktest.QemuRaw(t, "vmdk", extracted)) {
		t.Fatal("vhdprep's raw differs from qemu-img's")
	}
	vhdOut := filepath.Join(dir, "vm.vhd")
	if _, err := Convert(context.Background(), ConvertOptions{Input: in, Output: vhdOut}); err != nil {
		t.Fatal(err)
	}
	assertSameData(t, "vmdk", extracted, "vpc", vhdOut)
	info, err := Inspect(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != OVA || info.OVA == nil || info.OVA.Opened != "disk1.vmdk" || len(info.OVA.Disks) != 2 || info.OVA.VMDK.CreateType != "streamOptimized" {
		t.Fatalf("info %+v", info)
	}
	if info.Valid || len(info.Problems) == 0 || !strings.Contains(info.Problems[0], "fix: vhdprep convert "+in) {
		t.Fatalf("verdict %v; want VHD001 naming vhdprep convert", info.Problems)
	}
}

// A VMDK descriptor's extent files are opened only in its directory: a
// link beside it that leads out is refused, naming the descriptor.
func TestVMDKExtentLinkOutside(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), make([]byte, 4096), 0o644)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "d-flat.vmdk"))
	in := filepath.Join(dir, "d.vmdk")
	os.WriteFile(in, []byte("# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"d-flat.vmdk\" 0\n"), 0o644)
	if _, err := Inspect(in, nil); err == nil || !strings.Contains(err.Error(), in+": ") {
		t.Fatalf("err = %v; want the link refused, naming %s", err, in)
	}
}
