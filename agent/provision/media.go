package provision

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/vhdprep/vhdprep/agent/imds"
	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/agent/ovf"
)

const (
	// mediaMountDir is where the provisioning media is mounted, briefly.
	mediaMountDir = "/run/vhdprep-agent/media"
	ovfEnvName    = "ovf-env.xml"
	// scsiTypeROM is /sys/block/*/device/type for a CD-ROM (SCSI type 5).
	scsiTypeROM = "5"
)

// mediaFilesystems are the filesystems Azure writes the provisioning
// media in, tried in order.
var mediaFilesystems = []string{"udf", "iso9660"}

// CDROMs lists the block devices that may hold the provisioning media:
// /dev/cdrom, /dev/sr*, and every device whose SCSI type is 5 (CD-ROM),
// without duplicates, in a stable order.
func (p *Provisioner) CDROMs() []string {
	seen := map[string]bool{}
	var devs []string
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			devs = append(devs, d)
		}
	}
	if _, err := os.Stat(p.path("/dev/cdrom")); err == nil {
		add("/dev/cdrom")
	}
	srs, _ := filepath.Glob(p.path("/dev/sr[0-9]*"))
	types, _ := filepath.Glob(p.path("/sys/block/*/device/type"))
	var names []string
	for _, s := range srs {
		names = append(names, filepath.Base(s))
	}
	for _, t := range types {
		b, err := p.readFile(strings.TrimPrefix(t, filepath.Clean(p.Root)), 16)
		if err == nil && strings.TrimSpace(string(b)) == scsiTypeROM {
			names = append(names, filepath.Base(filepath.Dir(filepath.Dir(t))))
		}
	}
	sort.Strings(names)
	for _, n := range names {
		add("/dev/" + n)
	}
	return devs
}

var errNoMedia = errors.New("no provisioning media")

// ReadMedia mounts each CD-ROM read-only as UDF or ISO 9660, reads
// ovf-env.xml from it and unmounts it; the first that parses wins.
func (p *Provisioner) ReadMedia() (*ovf.Env, string, error) {
	devs := p.CDROMs()
	if len(devs) == 0 {
		return nil, "", fmt.Errorf("%w: no CD-ROM device", errNoMedia)
	}
	if err := p.mkdirAll(mediaMountDir, 0o700); err != nil {
		return nil, "", err
	}
	var errs []error
	for _, dev := range devs {
		env, err := p.readDevice(dev)
		if err == nil {
			return env, dev, nil
		}
		errs = append(errs, err)
	}
	return nil, "", fmt.Errorf("%w: %w", errNoMedia, errors.Join(errs...))
}

func (p *Provisioner) readDevice(dev string) (*ovf.Env, error) {
	dir := p.path(mediaMountDir)
	var mountErrs []error
	for _, fstype := range mediaFilesystems {
		if err := p.Sys.Mount(p.path(dev), dir, fstype); err != nil {
			mountErrs = append(mountErrs, err)
			continue
		}
		doc, err := p.readFile(filepath.Join(mediaMountDir, ovfEnvName), ovf.MaxSize)
		if uerr := p.Sys.Unmount(dir); uerr != nil {
			p.log().Warn("unmounting the provisioning media failed", "device", dev, "err", uerr)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dev, err)
		}
		env, err := ovf.Parse(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dev, err)
		}
		return env, nil
	}
	return nil, fmt.Errorf("%s: not mountable as UDF or ISO 9660: %w", dev, errors.Join(mountErrs...))
}

// LoadSettings reads the provisioning settings from the media, falling back
// to IMDS (when given) for what it offers.
func (p *Provisioner) LoadSettings(ctx context.Context, md *imds.Client) (Settings, error) {
	env, dev, err := p.ReadMedia()
	if err == nil {
		p.log().Info("provisioning settings from the media", "device", dev, "ovf", env)
		s := FromOVF(env, ovfEnvName+" on "+dev)
		s.Media = dev
		return s, nil
	}
	p.log().Warn("no ovf-env.xml; trying IMDS", "err", err)
	if md == nil {
		return Settings{}, fmt.Errorf("%w (%v)", ErrNoSettings, err)
	}
	inst, ierr := md.Instance(ctx)
	if ierr != nil {
		return Settings{}, fmt.Errorf("%w (media: %v; IMDS: %v)", ErrNoSettings, err, ierr)
	}
	return FromIMDS(&inst.Compute), nil
}

// virtioDiskRE is a virtio disk, never a CD-ROM: WALinuxAgent's eject_dvd
// leaves those alone.
var virtioDiskRE = regexp.MustCompile(`^/dev/vd[b-z]`)

// EjectMedia ejects the provisioning media once provisioning is done, as
// WALinuxAgent does, so the settings (a password among them) are not left
// readable in the drive. Without the eject tool it is left in; a failure
// is logged only: provisioning succeeded.
func (p *Provisioner) EjectMedia(ctx context.Context, dev string) {
	if dev == "" || virtioDiskRE.MatchString(dev) {
		return
	}
	if _, err := p.Sys.LookPath("eject"); err != nil {
		p.log().Info("the provisioning media stays in: no eject tool", "device", dev)
		return
	}
	if _, err := p.Sys.Run(ctx, "eject", []string{dev}, nil); err != nil {
		p.log().Warn("ejecting the provisioning media failed", "device", dev, "err", err)
		return
	}
	p.log().Info("provisioning media ejected", "device", dev)
}

var uuidRE = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// VMID returns the VM's unique ID from the DMI product UUID, in the byte
// order IMDS uses: the firmware stores the first three groups
// little-endian (WALinuxAgent's _correct_instance_id).
func (p *Provisioner) VMID() (string, error) {
	raw, err := p.Sys.ProductUUID()
	if err != nil {
		return "", fmt.Errorf("VM ID: %w", err)
	}
	if !uuidRE.MatchString(raw) {
		return "", fmt.Errorf("VM ID: DMI product_uuid %q is not a UUID", raw)
	}
	return strings.ToLower(swapUUID(raw)), nil
}

// swapUUID reverses the bytes of the first three groups of a UUID.
func swapUUID(u string) string {
	g := strings.Split(u, "-")
	for i := range 3 {
		b := []byte(g[i])
		for l, r := 0, len(b)-2; l < r; l, r = l+2, r-2 {
			b[l], b[l+1], b[r], b[r+1] = b[r], b[r+1], b[l], b[l+1]
		}
		g[i] = string(b)
	}
	return strings.Join(g, "-")
}

// ProvisionedFor returns the VM ID the marker records, or "" when this
// system was never provisioned.
func (p *Provisioner) ProvisionedFor() (string, error) {
	b, err := p.readFile(layout.MarkerFile, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// IsProvisioned reports whether this VM (vmID) was provisioned. A marker
// written with the firmware's byte order also counts, as in WALinuxAgent.
func (p *Provisioner) IsProvisioned(vmID string) (bool, error) {
	rec, err := p.ProvisionedFor()
	if err != nil || rec == "" {
		return false, err
	}
	return strings.EqualFold(rec, vmID) || (uuidRE.MatchString(rec) && strings.EqualFold(swapUUID(rec), vmID)), nil
}

// MarkProvisioned records that VM vmID is provisioned.
func (p *Provisioner) MarkProvisioned(vmID string) error {
	if err := p.mkdirAll(layout.StateDir, 0o700); err != nil {
		return err
	}
	return p.writeFile(layout.MarkerFile, []byte(vmID+"\n"), 0o600)
}
