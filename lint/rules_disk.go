package lint

import (
	"fmt"
	"strings"

	"github.com/vhdprep/vhdprep/raw/probe"
	"github.com/vhdprep/vhdprep/rootfs"
)

func checkPartitionTable(t *Target) ([]Finding, error) {
	if t.layoutErr != nil {
		return []Finding{{Message: t.layoutErr.Error(), Fix: "repair or rewrite the partition table as the message says; vhdprep resize cannot move a table it cannot read"}}, nil
	}
	g, err := t.layout()
	if err != nil {
		return nil, err
	}
	var fs []Finding
	for _, w := range g.Layout.Warnings {
		fs = append(fs, Finding{Message: w})
	}
	return fs, nil
}

func checkNoSwapOnDisk(t *Target) ([]Finding, error) {
	g, err := t.layout()
	if err != nil {
		return nil, err
	}
	var fs []Finding
	for _, v := range g.Layout.Volumes {
		typed := v.Partition != nil && v.Partition.IsSwap()
		if v.FS.Type == probe.Swap || typed {
			fs = append(fs, Finding{Message: fmt.Sprintf("%s is swap (%s)", v.Name, swapWhy(v.FS.Type == probe.Swap, typed)), Location: Location{Volume: v.Name}})
		}
	}
	return fs, nil
}

func swapWhy(signature, typed bool) string {
	switch {
	case signature && typed:
		return "swap partition type and SWAPSPACE2 signature"
	case signature:
		return "SWAPSPACE2 signature"
	}
	return "swap partition type"
}

func checkNoLVM(t *Target) ([]Finding, error) {
	g, err := t.layout()
	if err != nil {
		return nil, err
	}
	var fs []Finding
	for _, vg := range g.Layout.VGs {
		var lvs []string
		for _, lv := range vg.LVs {
			lvs = append(lvs, lv.Name)
		}
		fs = append(fs, Finding{Message: fmt.Sprintf("LVM volume group %q (logical volumes %s) is on the OS disk; attaching this disk to a VM of the same image clashes", vg.Name, strings.Join(lvs, ", "))})
	}
	return fs, nil
}

func checkBootable(t *Target) ([]Finding, error) {
	g, err := t.layout()
	if err != nil {
		return nil, err
	}
	if b := g.DetectBoot(); !b.Gen1 && !b.Gen2 {
		return []Finding{{Message: "the disk boots neither as Gen1 (BIOS) nor as Gen2 (UEFI): " + b.Detail,
			Fix: "install GRUB for BIOS to the disk, or a UEFI loader at EFI/BOOT/BOOTX64.EFI on the ESP"}}, nil
	}
	return nil, nil
}

func checkOneRoot(t *Target) ([]Finding, error) {
	g, err := t.layout()
	if err != nil {
		return nil, err
	}
	var roots []string
	for _, v := range rootfs.VolumesOf(g.Layout) {
		tree, err := rootfs.OpenFS(v.R, v.Size, v.FSType)
		if err != nil {
			continue
		}
		if _, err := tree.Stat("etc/os-release"); err == nil {
			roots = append(roots, v.Name)
		}
	}
	if len(roots) > 1 {
		return []Finding{{Message: fmt.Sprintf("%d root filesystems on the OS disk (%s)", len(roots), strings.Join(roots, ", "))}}, nil
	}
	return nil, nil
}
