package ova

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/disktest"
	"github.com/vhdprep/vhdprep/vmdk"
)

func open(b []byte) (*Image, error) { return Open(bytes.NewReader(b), int64(len(b))) }

// The OVF's first disk is read where it lies in the tar, as qemu-img reads
// it extracted, whatever order the tar holds the disks in: a stream as
// vSphere exports it (its directory named by its footer) and one as
// qemu-img writes it.
func TestReadsFirstDisk(t *testing.T) {
	dir := t.TempDir()
	src, data := disktest.Source(t, dir, 5<<20+512)
	sys := bytes.Clone(data)
	copy(sys[1<<20:], "the system disk")
	vmware := disktest.VMDK(sys, 128, 512, true)
	if err := os.WriteFile(filepath.Join(dir, "sys.vmdk"), vmware, 0o644); err != nil {
		t.Fatal(err)
	}
	qemu := filepath.Join(dir, "data.vmdk")
	disktest.Qemu(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, qemu)
	qemuBytes, err := os.ReadFile(qemu)
	if err != nil {
		t.Fatal(err)
	}
	for first, want := range map[string][]byte{"sys.vmdk": sys, "data.vmdk": data} {
		if oracle := disktest.QemuRaw(t, "vmdk", filepath.Join(dir, first)); !bytes.Equal(oracle, want) {
			t.Fatalf("qemu-img reads another disk in %s", first)
		}
		second := map[string]string{"sys.vmdk": "data.vmdk", "data.vmdk": "sys.vmdk"}[first]
		b := disktest.Tar(t, "vm.ovf", disktest.OVF(first, second), "vm.mf", []byte("SHA256(vm.ovf)= 00\n"),
			"data.vmdk", qemuBytes, "sys.vmdk", vmware)
		if !Detect(b[:512]) {
			t.Fatal("Detect does not know the OVA")
		}
		im, err := open(b)
		if err != nil {
			t.Fatal(err)
		}
		disktest.AssertSame(t, im, want)
		info := im.Info()
		if info.OVF != "vm.ovf" || info.Opened != first || len(info.Disks) != 2 || info.Disks[1].File != second ||
			info.Disks[0].Capacity != "1 byte * 2^30" || info.VMDK.CreateType != "streamOptimized" {
			t.Fatalf("info %+v", info)
		}
	}
}

// Tars that are no OVA, OVFs without a disk, disks that are not there or
// not readable in place are refused, each with its reason.
func TestRefuses(t *testing.T) {
	zero := []byte(vmdk.DescriptorMagic + "\ncreateType=\"custom\"\nRW 8 ZERO\n")
	gzip := bytes.Replace(disktest.OVF("d.vmdk"), []byte(`ovf:size="1"`), []byte(`ovf:compression="gzip"`), 1)
	chunked := bytes.Replace(disktest.OVF("d.vmdk"), []byte(`ovf:size="1"`), []byte(`ovf:chunkSize="1024"`), 1)
	full := disktest.Tar(t, "vm.ovf", disktest.OVF("d.vmdk"), "d.vmdk", append(zero, make([]byte, 4096)...))
	for name, c := range map[string]struct {
		b    []byte
		err  error
		want string
	}{
		"not a tar":  {[]byte("hello"), ErrNotOVA, "not an OVA"},
		"no ovf":     {disktest.Tar(t, "d.vmdk", zero), ErrNotOVA, "not an OVA"},
		"no disk":    {disktest.Tar(t, "vm.ovf", disktest.OVF()), ErrCorrupt, "names no disk"},
		"bad xml":    {disktest.Tar(t, "vm.ovf", []byte("<Envelope>")), ErrCorrupt, "vm.ovf"},
		"missing":    {disktest.Tar(t, "vm.ovf", disktest.OVF("d.vmdk")), ErrCorrupt, "not in the tar"},
		"gzip":       {disktest.Tar(t, "vm.ovf", gzip, "d.vmdk", zero), ErrUnsupported, "gzip-compressed"},
		"chunked":    {disktest.Tar(t, "vm.ovf", chunked, "d.vmdk", zero), ErrUnsupported, "chunks"},
		"truncated":  {full[:2048], ErrCorrupt, "truncated"},
		"not a vmdk": {disktest.Tar(t, "vm.ovf", disktest.OVF("d.vmdk"), "d.vmdk", []byte("plain")), vmdk.ErrNotVMDK, "d.vmdk"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := open(c.b)
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want %v mentioning %q", err, c.err, c.want)
			}
		})
	}
	if _, err := open(full); err != nil {
		t.Fatalf("the untouched OVA: %v", err)
	}
}

// Every tar is taken for an OVA, to be refused when it holds no OVF; a
// disk is not.
func TestDetect(t *testing.T) {
	if !Detect(disktest.Tar(t, "notes.txt", []byte("x"))[:512]) || Detect(make([]byte, 512)) {
		t.Fatal("Detect takes a disk for a tar, or a tar for a disk")
	}
}
