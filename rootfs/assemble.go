package rootfs

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/vhdprep/vhdprep/raw/part"
	"github.com/vhdprep/vhdprep/raw/volume"
)

// Volume is a filesystem the guest may mount, with every name the guest
// may use for it.
type Volume struct {
	Name      string   // "p2", "rhel/root": for messages
	Device    []string // "/dev/sda2", "/dev/mapper/rhel-root", ...
	UUID      string
	Label     string
	PartUUID  string
	PartLabel string
	FSType    string
	R         io.ReaderAt
	Size      int64
}

// VolumesOf lists a disk layout's volumes with the device names Linux gives
// them on the disk controllers a VM may have (sda on Hyper-V and SCSI, vda
// on virtio, xvda on Xen, nvme0n1 on NVMe, hda on old IDE).
func VolumesOf(l *volume.Layout) []Volume {
	var out []Volume
	for _, v := range l.Volumes {
		vol := Volume{Name: v.Name, UUID: v.FS.UUID, Label: v.FS.Label, FSType: v.FS.Type, R: v.R, Size: v.Size}
		switch {
		case v.Partition != nil:
			vol.PartUUID, vol.PartLabel = v.Partition.UUID, v.Partition.Name
			vol.Device = partitionDevices(v.Partition)
		case v.LV != "":
			mapper := strings.ReplaceAll(v.VG, "-", "--") + "-" + strings.ReplaceAll(v.LV, "-", "--")
			vol.Device = []string{"/dev/mapper/" + mapper, "/dev/" + v.VG + "/" + v.LV, "/dev/disk/by-id/dm-name-" + mapper}
		default:
			vol.Device = []string{"/dev/sda", "/dev/vda", "/dev/xvda", "/dev/nvme0n1", "/dev/hda"}
		}
		out = append(out, vol)
	}
	return out
}

func partitionDevices(p *part.Partition) []string {
	n := fmt.Sprint(p.Number)
	return []string{"/dev/sda" + n, "/dev/vda" + n, "/dev/xvda" + n, "/dev/nvme0n1p" + n, "/dev/hda" + n}
}

// matches tells whether an fstab or root= spec names the volume.
func (v *Volume) matches(spec string) bool {
	key, val, ok := strings.Cut(spec, "=")
	if ok {
		val = strings.Trim(val, `"`)
		switch key {
		case "UUID":
			return v.UUID != "" && strings.EqualFold(val, v.UUID)
		case "LABEL":
			return v.Label != "" && val == v.Label
		case "PARTUUID":
			return v.PartUUID != "" && strings.EqualFold(val, v.PartUUID)
		case "PARTLABEL":
			return v.PartLabel != "" && val == v.PartLabel
		}
		return false
	}
	for prefix, field := range map[string]string{"/dev/disk/by-uuid/": v.UUID, "/dev/disk/by-partuuid/": v.PartUUID} {
		if rest, ok := strings.CutPrefix(spec, prefix); ok {
			return field != "" && strings.EqualFold(rest, field)
		}
	}
	for prefix, field := range map[string]string{"/dev/disk/by-label/": v.Label, "/dev/disk/by-partlabel/": v.PartLabel} {
		if rest, ok := strings.CutPrefix(spec, prefix); ok {
			return field != "" && rest == field // labels are case-sensitive
		}
	}
	for _, d := range v.Device {
		if d == spec {
			return true
		}
	}
	return false
}

// Mounted is a filesystem in the assembled root.
type Mounted struct {
	Path   string `json:"path"` // "/", "/boot", "/boot/efi"
	Volume string `json:"volume"`
	FSType string `json:"fstype"`
	Spec   string `json:"spec"`
}

// Root is the guest's file tree as the running system sees it.
type Root struct {
	*Tree
	Mounts   []Mounted
	Fstab    []FstabEntry
	Warnings []string
}

// ErrNoRoot is returned when no volume holds a root filesystem.
var ErrNoRoot = errors.New("no root filesystem found")

// Assemble finds the root filesystem (the one whose fstab names itself as
// "/", else the one holding etc/os-release), reads its fstab and mounts the
// local filesystems it lists where the guest would.
func Assemble(vols []Volume) (*Root, error) {
	var fallback *Root
	fallbackIdx := -1
	var unreadable []error // volumes that may hold the root but cannot be read
	for i := range vols {
		v := &vols[i]
		t, err := OpenFS(v.R, v.Size, v.FSType)
		if err != nil {
			if v.FSType != "" && v.FSType != "swap" && v.FSType != "LVM2_member" {
				unreadable = append(unreadable, fmt.Errorf("%s: %w", v.Name, err))
			}
			continue
		}
		r := &Root{Tree: t, Mounts: []Mounted{{Path: "/", Volume: v.Name, FSType: v.FSType}}}
		if b, err := t.ReadFile("etc/fstab"); err == nil {
			if r.Fstab, err = ParseFstab(b); err != nil {
				r.Warnings = append(r.Warnings, err.Error())
			}
			for _, e := range r.Fstab {
				if e.File == "/" && v.matches(e.Spec) {
					r.Mounts[0].Spec = e.Spec
					return r.mountAll(vols, i), nil
				}
			}
		}
		if _, err := t.Stat("etc/os-release"); err == nil && fallback == nil {
			fallback, fallbackIdx = r, i
			r.Warnings = append(r.Warnings, fmt.Sprintf("no fstab entry for / names %s; it was taken as the root because it holds /etc/os-release", v.Name))
		}
	}
	if fallback != nil {
		return fallback.mountAll(vols, fallbackIdx), nil
	}
	if len(unreadable) > 0 {
		return nil, fmt.Errorf("%w; unreadable: %w", ErrNoRoot, errors.Join(unreadable...))
	}
	return nil, ErrNoRoot
}

// Filesystem types that are not on the disk (or not files at all).
var notOnDisk = map[string]bool{
	"swap": true, "proc": true, "sysfs": true, "tmpfs": true, "devpts": true, "devtmpfs": true,
	"nfs": true, "nfs4": true, "cifs": true, "smb3": true, "cgroup": true, "cgroup2": true, "none": true,
	"efivarfs": true, "bpf": true, "debugfs": true, "securityfs": true, "hugetlbfs": true, "mqueue": true,
}

// mountAll mounts the fstab's local filesystems over the root volume.
func (r *Root) mountAll(vols []Volume, rootIdx int) *Root {
	for _, e := range r.Fstab {
		if e.File == "/" || !strings.HasPrefix(e.File, "/") || notOnDisk[e.Type] || e.HasOption("bind") {
			continue
		}
		var found *Volume
		for i := range vols {
			if i != rootIdx && vols[i].matches(e.Spec) {
				found = &vols[i]
				break
			}
		}
		if found == nil {
			if !e.HasOption("nofail") && !e.HasOption("noauto") {
				r.Warnings = append(r.Warnings, fmt.Sprintf("fstab line %d: %s for %s is not on this disk", e.Line, e.Spec, e.File))
			}
			continue
		}
		t, err := OpenFS(found.R, found.Size, found.FSType)
		if err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("fstab line %d: %s on %s: %v", e.Line, e.File, found.Name, err))
			continue
		}
		at := strings.TrimPrefix(path.Clean(e.File), "/")
		r.mount(at, t.mounts[0].d)
		r.Mounts = append(r.Mounts, Mounted{Path: "/" + at, Volume: found.Name, FSType: found.FSType, Spec: e.Spec})
	}
	return r
}

var (
	_ FS = (*Tree)(nil)
	_ FS = (*Root)(nil)
)
