//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

const MiB = 1 << 20

// matrixBuildTimeout bounds one image's build: from an empty cache, a
// debootstrap of its release (about 150 MB) and its own packages.
const matrixBuildTimeout = 30 * time.Minute

// matrixImage is one image of build-matrix.sh and what check must say of it.
// Findings are rule ID -> status; every rule a table does not name must pass.
type matrixImage struct {
	name string
	// facts asserts, with the host's own tools, what the image holds that
	// the expected findings follow from. root is the tree the image's root
	// filesystem was made from.
	facts func(t *testing.T, img, root string)
	// stock are the findings on the image as built, fixed after check, fix,
	// agent inject, deprovision.
	stock, fixed map[string]string
	// fixedFacts, when set, asserts what the pipeline must have left; root
	// is the image's tree as built, for the guest's own tools.
	fixedFacts func(t *testing.T, img, root string)
	// inject is how agent inject runs: --replace-waagent where an agent is.
	inject []string
	// ext4 are the offsets of the ext4 filesystems fix may write.
	ext4 []int64
	// xfsRoot is the offset of an XFS root, which vhdprep cannot write: the
	// commands must refuse it untouched, and the pipeline runs on a copy of
	// the root tree (--root) that then goes back into a disk.
	xfsRoot int64
	boot    bool // boot the fixed image until systemd runs from its root
	gen2    bool // as a Gen2 VM (UEFI); else Gen1 (BIOS)
	virtio  bool // with the disk on virtio, not IDE: for a host-only initramfs made on KVM
	// prepare also takes the stock image through vhdprep prepare, the
	// whole job in one command, and boots its output instead.
	prepare bool
	// premount, when set, runs in the shell initramfs-tools opens before
	// it mounts the root (premountShell), booted from the fixed image's
	// own kernel and initramfs; what it prints must match each of want.
	premount *shellCheck
}

// shellCheck is a script for a guest's shell and what its output must show.
type shellCheck struct {
	script string
	want   []*regexp.Regexp
}

// What check finds on every raw image of the matrix, stock or fixed: no VHD
// footer yet (convert's business), and systemd-networkd, not dhclient.
var rawImage = map[string]string{
	"VHD001": "fail", "VHD002": "skip", "VHD003": "skip", "VHD006": "skip", "NET004": "skip",
}

// What Debian leaves on every stock image besides: update-grub's quiet
// command line without Azure's console settings, sshd without
// ClientAliveInterval, and the SSH host keys made at install.
var stockDebian = with(rawImage,
	"KRN001", "fail", "KRN002", "fail", "KRN003", "fail", "KRN004", "fail",
	"SSH002", "fail", "SEC003", "fail",
)

// with is base plus the given findings.
func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

var matrix = []matrixImage{
	{
		// LVM root with a separate /boot, swap partition and swap LV, and
		// /etc/default/grub without GRUB_CMDLINE_LINUX.
		name: "lvm-bios",
		facts: func(t *testing.T, img, root string) {
			wantBlkid(t, img, 1*MiB, "TYPE=ext4", "UUID=1f2e3d01-0000-4000-8000-00000000b007")
			wantBlkid(t, img, 256*MiB, "TYPE=swap")
			wantBlkid(t, img, 384*MiB, "TYPE=LVM2_member")
			wantBlkid(t, img, lvmRoot, "TYPE=ext4", "UUID=1f2e3d01-0000-4000-8000-0000000000f1")
			wantBlkid(t, img, lvmRoot+1400*MiB, "TYPE=swap")
			grub := debugfsCat(t, img, lvmRoot, "/etc/default/grub")
			if strings.Contains(grub, "\nGRUB_CMDLINE_LINUX=") || !strings.Contains(grub, "\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"") {
				t.Errorf("/etc/default/grub is not the one-line-DEFAULT kind:\n%s", grub)
			}
			fstab := debugfsCat(t, img, lvmRoot, "/etc/fstab")
			for _, swap := range []string{"UUID=1f2e3d01-0000-4000-8000-00000000005a none swap", "/dev/mapper/vg0-swap none swap"} {
				if !strings.Contains(fstab, swap) {
					t.Errorf("fstab lacks %q:\n%s", swap, fstab)
				}
			}
			// initramfs-tools (MODULES=most) with the lvm2 hook: Hyper-V's
			// drivers and what an LVM root needs.
			files := initramfsFiles(t, debugfsFile(t, img, 1*MiB, initrdIn(t, img, 1*MiB, "/")))
			for _, f := range []string{"/hv_vmbus.ko", "/hv_storvsc.ko", "/hv_netvsc.ko", "/sd_mod.ko", "/dm-mod.ko", "sbin/lvm"} {
				wantListed(t, files, f)
			}
		},
		stock: with(stockDebian,
			"DSK002", "fail", // the swap partition and the swap LV
			"DSK003", "fail", // a PV on the OS disk
			"SWP001", "fail", // both swaps in fstab
			"SWP002", "fail", // swap wanted, and no agent to put it on the resource disk
			"AGT001", "fail",
			"AGT007", "fail", // no Python: VMAccess and the other Python extensions fail
		),
		fixed: with(rawImage,
			// fix comments the swaps out of fstab; the swap partition and
			// the PV stay on the disk, and swap on the resource disk is the
			// user's choice (it was wanted, nothing turned it on).
			"DSK002", "fail", "DSK003", "fail", "SWP002", "fail",
			"KRN003", "fail", // left out: initramfs-tools would sleep rootdelay seconds on each boot
			"AGT007", "fail",
		),
		ext4: []int64{1 * MiB, lvmRoot},
		boot: true,
	},
	{
		// GPT, an ESP and an XFS root, booting only by UEFI.
		name: "xfs-uefi",
		facts: func(t *testing.T, img, root string) {
			wantBlkid(t, img, 1*MiB, "TYPE=vfat", "UUID=1F2E-3D02")
			wantBlkid(t, img, 64*MiB, "TYPE=xfs", "UUID=1f2e3d02-0000-4000-8000-0000000000f1")
			if out := mustExec(t, "sfdisk", "--dump", img); !strings.Contains(out, "label: gpt") ||
				!strings.Contains(out, "type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B") || strings.Contains(out, "21686148-6449-6E6F-744E-656564454649") {
				t.Errorf("not GPT with an ESP and no BIOS boot partition:\n%s", out)
			}
			if mbr := readAt(t, img, 0, 440); bytes.Contains(mbr, []byte("GRUB")) {
				t.Error("the MBR holds GRUB's boot code: the disk would boot by BIOS too")
			}
			wantListed(t, initramfsFiles(t, filepath.Join(root, "initrd.img")), "/hv_storvsc.ko")
		},
		// xfsprogs brings python3: AGT007 passes. No agent yet: the one the
		// image gets will run extensions, and there is python3 but no
		// /usr/bin/python (AGT003).
		stock: with(stockDebian, "KRN009", "fail", "AGT001", "fail", "AGT003", "fail"),
		// fix --root knows the root's UUID from fstab (KRN009); the agent
		// runs extensions, and there is python3 but no /usr/bin/python.
		fixed:   with(rawImage, "KRN003", "fail", "AGT003", "fail"),
		xfsRoot: 64 * MiB,
		boot:    true,
		gen2:    true,
	},
	{
		// Debian 13 with dracut in host-only mode, WALinuxAgent and cloud-init.
		name: "trixie-agents",
		facts: func(t *testing.T, img, root string) {
			wantBlkid(t, img, 1*MiB, "TYPE=ext4", "UUID=1f2e3d03-0000-4000-8000-0000000000f1")
			if rel := debugfsCat(t, img, 1*MiB, "/etc/os-release"); !strings.Contains(rel, `VERSION_CODENAME=trixie`) {
				t.Errorf("not Debian 13:\n%s", rel)
			}
			for _, f := range []string{"/usr/sbin/waagent", "/usr/bin/cloud-init", "/etc/waagent.conf", "/etc/dracut.conf.d/90-hostonly.conf"} {
				debugfsCat(t, img, 1*MiB, f)
			}
			// Host-only for a virtio build host: virtio_scsi brings
			// scsi_mod, but there is no disk driver over it.
			files := initramfsFiles(t, debugfsFile(t, img, 1*MiB, initrdIn(t, img, 1*MiB, "/boot")))
			wantListed(t, files, "/virtio_blk.ko")
			wantListed(t, files, "/scsi_mod.ko")
			for _, f := range []string{"/hv_vmbus.ko", "/hv_storvsc.ko", "/hv_netvsc.ko", "/sd_mod.ko"} {
				if listed(files, f) {
					t.Errorf("the host-only initramfs holds %s", f)
				}
			}
		},
		stock: with(stockDebian,
			"KRN009", "fail",
			// The build host's virtio drivers only: no Hyper-V drivers, no
			// sd_mod (modules in this kernel; nvme is built in). The root
			// disk never appears on Azure.
			"DRV001", "fail", "DRV002", "fail", "DRV003", "fail", "DRV008", "fail",
			"SWP003", "fail", // waagent.conf's ResourceDisk.Format=y while cloud-init provisions
			"AGT003", "fail", // WALinuxAgent and no /usr/bin/python
		),
		// fix names the drivers in dracut.conf.d, adds them (and what they
		// need) to the present initramfs, and adds rootdelay=300 (dracut
		// does not sleep on it).
		fixed: with(rawImage,
			"AGT003", "fail",
		),
		// Swap on the resource disk is opt-in: this image never had swap,
		// and neither fix nor inject may turn it on for any agent.
		fixedFacts: func(t *testing.T, img, root string) {
			// The drivers in dracut's own archive, where this independent
			// reader and the guest's lsinitrd see them, beside the host's own.
			initramfs := debugfsFile(t, img, 1*MiB, initrdIn(t, img, 1*MiB, "/boot"))
			files := initramfsFiles(t, initramfs)
			for _, f := range []string{"/hv_vmbus.ko", "/hv_storvsc.ko", "/hv_netvsc.ko", "/scsi_mod.ko", "/sd_mod.ko", "/virtio_blk.ko", "etc/cmdline.d/90-vhdprep-azure.conf"} {
				wantListed(t, files, f)
			}
			wantGuestLists(t, root, "lsinitrd", initramfs, "hv_storvsc.ko", "rd.driver.pre=hv_vmbus")
			for _, f := range append(filesIn(t, img, 1*MiB, "/etc/cloud/cloud.cfg.d"), "/etc/waagent.conf", "/etc/vhdprep-agent.conf") {
				text := debugfsCat(t, img, 1*MiB, f)
				if strings.Contains(text, "ResourceDisk.EnableSwap=y") || (strings.Contains(f, "cloud.cfg.d") && strings.Contains(text, "swap")) {
					t.Errorf("%s turns swap on:\n%s", f, text)
				}
			}
			// What the packaged waagent.conf sets comes over to the agent
			// that replaced WALinuxAgent, and the file says whence.
			conf := debugfsCat(t, img, 1*MiB, "/etc/vhdprep-agent.conf")
			if !strings.Contains(conf, "carried Extensions.Enabled, Provisioning.MonitorHostName, ResourceDisk.") || !strings.Contains(conf, "over from /etc/waagent.conf") {
				t.Errorf("/etc/vhdprep-agent.conf does not carry waagent.conf's settings over:\n%s", conf)
			}
		},
		inject: []string{"--replace-waagent"},
		ext4:   []int64{1 * MiB},
		// The initramfs fix made again still boots the kernel it belongs
		// to, from the virtio disk its host-only build was made for.
		boot:   true,
		virtio: true,
	},
	{
		// Debian 12 whose initramfs-tools initramfs holds only the virtio
		// drivers of the KVM host it was built on.
		name: "bookworm-dep",
		facts: func(t *testing.T, img, root string) {
			wantBlkid(t, img, 1*MiB, "TYPE=ext4", "UUID=1f2e3d04-0000-4000-8000-0000000000f1")
			files := initramfsFiles(t, debugfsFile(t, img, 1*MiB, initrdIn(t, img, 1*MiB, "/boot")))
			wantListed(t, files, "/virtio_blk.ko")
			for _, f := range []string{"/hv_vmbus.ko", "/hv_storvsc.ko", "/hv_netvsc.ko", "/scsi_mod.ko", "/sd_mod.ko"} {
				if listed(files, f) {
					t.Errorf("the build host's initramfs holds %s", f)
				}
			}
		},
		stock: with(stockDebian,
			"KRN009", "fail",
			"DRV001", "fail", "DRV002", "fail", "DRV003", "fail", "DRV008", "fail",
			"AGT001", "fail",
			"AGT007", "fail",
		),
		fixed: with(rawImage,
			"KRN003", "fail", // left out: initramfs-tools would sleep rootdelay seconds on each boot
			"AGT007", "fail",
		),
		// The drivers in initramfs-tools' own archive, loaded first by its
		// conf/modules, beside the build host's.
		fixedFacts: func(t *testing.T, img, root string) {
			initramfs := debugfsFile(t, img, 1*MiB, initrdIn(t, img, 1*MiB, "/boot"))
			files := initramfsFiles(t, initramfs)
			for _, f := range []string{"/hv_vmbus.ko", "/hv_storvsc.ko", "/hv_netvsc.ko", "/scsi_mod.ko", "/sd_mod.ko", "/virtio_blk.ko", "conf/modules"} {
				wantListed(t, files, f)
			}
			wantGuestLists(t, root, "lsinitramfs", initramfs, "kernel/drivers/scsi/hv_storvsc.ko")
		},
		ext4:    []int64{1 * MiB},
		boot:    true,
		virtio:  true,
		prepare: true,
		// The guest kernel takes the modules fix added: initramfs-tools'
		// init loads the SCSI disk chain from conf/modules (it was not in
		// the stock archive), and hv_vmbus's own init runs and declines
		// only because QEMU is no Hyper-V (its enlightenments need a KVM
		// that allows them). A module missing from the initramfs would
		// read "No such file or directory"; one the kernel refused,
		// "Invalid module format" or "Unknown symbol".
		premount: &shellCheck{
			script: "cat /proc/modules; insmod /lib/modules/$(uname -r)/kernel/drivers/hv/hv_vmbus.ko",
			want: []*regexp.Regexp{
				regexp.MustCompile(`(?m)^sd_mod \d+`),
				regexp.MustCompile(`(?m)^scsi_mod \d+ \d+ sd_mod,`),
				regexp.MustCompile(`insmod: error inserting '\S*/hv_vmbus\.ko': -1 No such device`),
			},
		},
	},
}

// lvmRoot is lvm-bios's root LV: the PV's partition at 384 MiB, its data
// area 1 MiB in, the root LV first.
const lvmRoot = 385 * MiB

func TestMatrix(t *testing.T) {
	testimage.RequireTools(t, "debootstrap", "qemu-system-x86_64", "sfdisk", "mkfs.ext4", "mkfs.xfs",
		"xfs_repair", "mkfs.vfat", "mcopy", "mkswap", "blkid", "debugfs", "e2fsck", "zstd")
	if os.Getuid() != 0 {
		t.Fatal("the image matrix is built with debootstrap, which needs root: run make e2e as root")
	}
	vhdprep := os.Getenv("VHDPREP")
	if vhdprep == "" {
		t.Fatal("VHDPREP names the vhdprep binary to test (make e2e sets it)")
	}
	cache := testimage.CacheDir(t, "e2e")
	for _, m := range matrix {
		// Each stage is a subtest: a wrong finding or exit code fails its
		// stage and the rest still run; no image to go on ends the test.
		t.Run(m.name, func(t *testing.T) {
			work := t.TempDir()
			img := filepath.Join(work, m.name+".raw")
			var root, cached string
			if !t.Run("build", func(t *testing.T) {
				cached, root = buildMatrixImage(t, cache, m.name)
				mustExec(t, "cp", "--sparse=always", "--reflink=auto", cached, img)
			}) {
				return
			}
			t.Run("facts", func(t *testing.T) { m.facts(t, img, root) })
			t.Run("check", func(t *testing.T) { wantFindings(t, "the stock image", vhdprep, m.stock, img) })
			t.Run("sshd", func(t *testing.T) { wantSSHDAgrees(t, vhdprep, root) })
			t.Run("sudo", func(t *testing.T) { wantSudoAgrees(t, vhdprep, root) })
			t.Run("cloud-init", func(t *testing.T) { wantCloudInitAgrees(t, vhdprep, root) })
			if m.xfsRoot != 0 {
				t.Run("refusals", func(t *testing.T) { wantRefusals(t, vhdprep, m, img) })
				if !t.Run("pipeline --root", func(t *testing.T) { img = fixThroughRoot(t, vhdprep, cache, m, root, img) }) {
					return
				}
			} else {
				t.Run("pipeline", func(t *testing.T) { pipeline(t, vhdprep, m, img) })
			}
			t.Run("check after", func(t *testing.T) { wantFindings(t, "the fixed image", vhdprep, m.fixed, img) })
			if m.fixedFacts != nil {
				t.Run("facts after", func(t *testing.T) { m.fixedFacts(t, img, root) })
			}
			t.Run("fsck", func(t *testing.T) {
				for _, off := range m.ext4 {
					if out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, off)).CombinedOutput(); err != nil {
						t.Errorf("e2fsck -fn at %d MiB: %v\n%s", off/MiB, err, out)
					}
				}
				if m.xfsRoot != 0 {
					if out, err := exec.Command("xfs_repair", "-n", extract(t, img, m.xfsRoot)).CombinedOutput(); err != nil {
						t.Errorf("xfs_repair -n: %v\n%s", err, out)
					}
				}
			})
			if m.premount != nil {
				t.Run("initramfs", func(t *testing.T) {
					kernel := debugfsFile(t, img, 1*MiB, "/vmlinuz")
					out := premountShell(t, kernel, debugfsFile(t, img, 1*MiB, initrdIn(t, img, 1*MiB, "/boot")), m.premount.script)
					for _, want := range m.premount.want {
						if !want.MatchString(out) {
							t.Errorf("the initramfs shell's output lacks %q:\n%s", want, out)
						}
					}
				})
			}
			booted := img
			if m.prepare {
				booted = filepath.Join(work, m.name+".vhd")
				if !t.Run("prepare", func(t *testing.T) { wantPrepared(t, vhdprep, m, cached, booted) }) {
					return
				}
			}
			if m.boot {
				t.Run("boot", func(t *testing.T) {
					cmdline := bootToRoot(t, booted, m.gen2, m.virtio)
					t.Logf("kernel command line: %s", cmdline)
					has := func(param string) bool {
						for _, w := range strings.Fields(cmdline) {
							if w == param || strings.HasPrefix(w, param+",") {
								return true
							}
						}
						return false
					}
					for _, want := range []string{"console=ttyS0", "earlyprintk=ttyS0"} {
						if !has(want) {
							t.Errorf("the booted kernel's command line lacks %s: %s", want, cmdline)
						}
					}
					if has("quiet") {
						t.Errorf("the booted kernel's command line still has quiet: %s", cmdline)
					}
				})
			}
		})
	}
}

// steps are the commands a user runs to make an image ready, in order.
func (m matrixImage) steps() [][]string {
	return [][]string{{"fix"}, append([]string{"agent", "inject"}, m.inject...), {"deprovision"}}
}

// pipeline runs the steps on a writable image; each must succeed.
func pipeline(t *testing.T, vhdprep string, m matrixImage, img string) {
	for _, args := range m.steps() {
		out, code := run(context.Background(), t, vhdprep, append(args, img)...)
		t.Logf("vhdprep %s:\n%s", strings.Join(args, " "), out)
		if code != 0 {
			t.Errorf("vhdprep %s exited %d", strings.Join(args, " "), code)
		}
	}
}

// wantPrepared: vhdprep prepare takes the stock image (the cached build
// itself, which it must not change) to a fixed VHD that passes the gate;
// e2fsck agrees with what it wrote.
func wantPrepared(t *testing.T, vhdprep string, m matrixImage, stock, out string) {
	before := fileSum(t, stock)
	text, code := run(context.Background(), t, vhdprep, "prepare", stock, out)
	t.Logf("vhdprep prepare:\n%s", text)
	if code != 0 {
		t.Fatalf("vhdprep prepare exited %d", code)
	}
	if fileSum(t, stock) != before {
		t.Errorf("prepare changed its input %s", stock)
	}
	for _, step := range []string{"agent        done", "fix          done", "deprovision  done", "gate         done", "output       done"} {
		if !strings.Contains(text, "  "+step) {
			t.Errorf("prepare's report lacks %q", step)
		}
	}
	report, _ := run(context.Background(), t, vhdprep, "check", "--output", "json", out)
	var rep struct {
		Summary struct {
			Errors int `json:"errors"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(report), &rep); err != nil || rep.Summary.Errors != 0 {
		t.Errorf("check of prepare's output: %v\n%s", err, report)
	}
	for _, off := range m.ext4 {
		if b, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", out, off)).CombinedOutput(); err != nil {
			t.Errorf("e2fsck -fn of prepare's output at %d MiB: %v\n%s", off/MiB, err, b)
		}
	}
}

// planLine is a line of a writing command's plan: a rule or step and what
// it changes ("KRN004: [/etc/default/grub]", "leases: nothing to change").
var planLine = regexp.MustCompile(`(?m)^[A-Za-z0-9]+: (\[|nothing to change|cannot fix|not for fix|note:).*`)

// wantRefusals: on an image whose root vhdprep cannot write, each step
// refuses before it plans anything, names itself and the way out (--root),
// exits 3, and leaves every byte as it was; with --dry-run it shows the
// plan and says the real run would be refused.
func wantRefusals(t *testing.T, vhdprep string, m matrixImage, img string) {
	sum := fileSum(t, img)
	var commands []string
	for _, args := range m.steps() {
		commands = append(commands, "vhdprep "+strings.Join(args, " "))
	}
	for i, args := range m.steps() {
		command := commands[i]
		out, code := run(context.Background(), t, vhdprep, append(args, img)...)
		t.Logf("%s:\n%s", command, out)
		if code != 3 { // the job was not done (README: exit codes)
			t.Errorf("%s on an XFS root exited %d, want 3", command, code)
		}
		if !strings.Contains(strings.ToLower(out), "xfs") || !strings.Contains(out, command+" --root") {
			t.Errorf("%s's refusal does not name XFS and the remedy %q", command, command+" --root")
		}
		for _, other := range commands {
			if other != command && strings.Contains(out, other) {
				t.Errorf("%s's refusal names %s", command, other)
			}
		}
		if plan := planLine.FindString(out); plan != "" {
			t.Errorf("%s planned before refusing: %q", command, plan)
		}
		dry, _ := run(context.Background(), t, vhdprep, append(args, "--dry-run", img)...)
		if !strings.Contains(strings.ToLower(dry), "refuse") {
			t.Errorf("%s --dry-run does not say the real run would be refused:\n%s", command, dry)
		}
		if fileSum(t, img) != sum {
			t.Fatalf("%s changed the image it refused", command)
		}
	}
}

// fixThroughRoot is the way out the refusals name: the pipeline on a copy
// of the root tree (what a user gets by mounting the image), whose result
// goes back into a disk as the user would copy it back. It returns that disk.
func fixThroughRoot(t *testing.T, vhdprep, cache string, m matrixImage, root, img string) string {
	tree := filepath.Join(t.TempDir(), "root")
	mustExec(t, "cp", "-a", "--reflink=auto", root, tree)
	for _, args := range m.steps() {
		out, code := run(context.Background(), t, vhdprep, append(args, "--root", tree)...)
		t.Logf("vhdprep %s --root:\n%s", strings.Join(args, " "), out)
		if code != 0 {
			t.Fatalf("vhdprep %s --root exited %d", strings.Join(args, " "), code)
		}
	}
	fixed := filepath.Join(filepath.Dir(img), m.name+"-fixed.raw")
	buildScript(t, "./build-matrix.sh", cache, m.name, tree, fixed)
	return fixed
}

// buildMatrixImage builds (or finds in the cache) one image of the matrix.
func buildMatrixImage(t *testing.T, cache, name string) (img, root string) {
	for _, line := range strings.Split(buildScript(t, "./build-matrix.sh", cache, name), "\n") {
		if v, ok := strings.CutPrefix(line, "image="); ok {
			img = v
		} else if v, ok := strings.CutPrefix(line, "root="); ok {
			root = v
		}
	}
	if img == "" || root == "" {
		t.Fatal("build-matrix.sh did not name the image and its root tree")
	}
	return img, root
}

// buildScript runs an image script, its progress in the test log, and
// returns its standard output.
func buildScript(t *testing.T, script string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), matrixBuildTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, script, args...)
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, testWriter{t}), testWriter{t}
	// On timeout the whole job gets SIGTERM, so the script's trap
	// unmounts what the package scripts mounted before it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v", script, strings.Join(args, " "), err)
	}
	return out.String()
}

// wantFindings runs check on img and compares every rule's status.
func wantFindings(t *testing.T, what, vhdprep string, want map[string]string, img string) {
	t.Helper()
	report, _ := run(context.Background(), t, vhdprep, "check", "--output", "json", img)
	got := ruleStatuses(t, report)
	ids := map[string]bool{}
	for id := range got {
		ids[id] = true
	}
	for id := range want {
		ids[id] = true
	}
	var sorted []string
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	for _, id := range sorted {
		w := want[id]
		if w == "" {
			w = "pass"
		}
		if g := got[id]; g != w {
			if g == "" {
				g = "absent"
			}
			t.Errorf("%s on %s: %s, want %s", id, what, g, w)
		}
	}
	if t.Failed() {
		out, _ := run(context.Background(), t, vhdprep, "check", img)
		t.Logf("check on %s:\n%s", what, out)
	}
}

// wantBlkid: the filesystem at off in img is what blkid says.
func wantBlkid(t *testing.T, img string, off int64, want ...string) {
	t.Helper()
	out := mustExec(t, "blkid", "-p", "-o", "export", "-O", fmt.Sprint(off), img)
	for _, w := range want {
		if !strings.Contains(out, "\n"+w+"\n") {
			t.Errorf("blkid at %d MiB: no %s in\n%s", off/MiB, w, out)
		}
	}
}

// debugfsCat is a file of the ext4 filesystem at off in img.
func debugfsCat(t *testing.T, img string, off int64, path string) string {
	t.Helper()
	b, err := os.ReadFile(debugfsFile(t, img, off, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// debugfsFile copies a file (symlinks followed) of the ext4 filesystem at
// off in img out with debugfs, and returns the copy's path.
func debugfsFile(t *testing.T, img string, off int64, path string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	fs := fmt.Sprintf("%s?offset=%d", img, off)
	for range 8 {
		link := strings.TrimSpace(mustExec(t, "debugfs", "-R", "stat "+path, fs))
		target, ok := strings.CutPrefix(link[strings.LastIndex(link, "\n")+1:], "Fast link dest: ")
		if !ok {
			break
		}
		target = strings.Trim(target, `"`)
		if !strings.HasPrefix(target, "/") {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	mustExec(t, "debugfs", "-R", fmt.Sprintf("dump %s %s", path, out), fs)
	if st, err := os.Stat(out); err != nil || st.Size() == 0 {
		t.Fatalf("debugfs found no %s in the filesystem at %d MiB", path, off/MiB)
	}
	return out
}

// filesIn lists the regular files in dir of the ext4 filesystem at off
// in img.
func filesIn(t *testing.T, img string, off int64, dir string) []string {
	t.Helper()
	var files []string
	// ls -p: /inode/mode/uid/gid/name/size/ per entry, the mode in octal.
	for _, line := range strings.Split(mustExec(t, "debugfs", "-R", "ls -p "+dir, fmt.Sprintf("%s?offset=%d", img, off)), "\n") {
		if f := strings.Split(line, "/"); len(f) > 5 && strings.HasPrefix(f[2], "10") {
			files = append(files, filepath.Join(dir, f[5]))
		}
	}
	return files
}

// initrdIn is the path of the one initrd.img-VERSION in dir of the ext4
// filesystem at off in img.
func initrdIn(t *testing.T, img string, off int64, dir string) string {
	t.Helper()
	var found []string
	for _, f := range filesIn(t, img, off, dir) {
		if strings.HasPrefix(filepath.Base(f), "initrd.img-") {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		t.Fatalf("initrd.img-* in %s at %d MiB: %v, want one", dir, off/MiB, found)
	}
	return found[0]
}

// initramfsFiles lists an initramfs: the uncompressed cpio archives
// (newc) one after another, as both tools put microcode and firmware first,
// then the compressed main archive, decompressed by the host's own tool.
// (initramfs-tools' lsinitramfs reads the uncompressed part byte by byte
// in shell: minutes for one image.)
func initramfsFiles(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for len(data) > 0 {
		if data[0] == 0 { // padding between archives
			data = data[1:]
			continue
		}
		if !bytes.HasPrefix(data, []byte("07070")) {
			tool := map[string]string{"\x28\xb5\x2f\xfd": "zstd", "\xfd7zXZ": "xz", "\x1f\x8b": "gzip", "\x02\x21\x4c\x18": "lz4"}
			for magic, name := range tool {
				if bytes.HasPrefix(data, []byte(magic)) {
					cmd := exec.Command(name, "-dc")
					cmd.Stdin = bytes.NewReader(data)
					out, err := cmd.Output()
					if err != nil {
						t.Fatalf("%s -dc of %s: %v", name, path, err)
					}
					names, _ := cpioArchive(t, out)
					return append(files, names...)
				}
			}
			t.Fatalf("%s: neither cpio nor a known compression at %d bytes from the end", path, len(data))
		}
		names, n := cpioArchive(t, data)
		files = append(files, names...)
		data = data[n:]
	}
	return files
}

// cpioArchive lists the newc archive at the start of b, file names
// without a module's compression suffix, and returns its length.
func cpioArchive(t *testing.T, b []byte) ([]string, int) {
	t.Helper()
	var names []string
	for off := 0; ; {
		if off+110 > len(b) || !bytes.HasPrefix(b[off:], []byte("07070")) {
			t.Fatalf("a broken cpio archive at byte %d", off)
		}
		// Header fields are 8 hex digits after the 6-byte magic; the
		// header, the name and the data are each padded to 4 bytes.
		field := func(i int) int {
			var v int
			fmt.Sscanf(string(b[off+6+8*i:off+14+8*i]), "%08x", &v)
			return v
		}
		size, namesize := field(6), field(11)
		name := string(b[off+110 : off+110+namesize-1])
		data := (off + 110 + namesize + 3) &^ 3
		off = min((data+size+3)&^3, len(b))
		if name == "TRAILER!!!" {
			return names, off
		}
		for _, ext := range []string{".xz", ".zst", ".gz"} {
			name = strings.TrimSuffix(name, ext)
		}
		names = append(names, name)
	}
}

// wantGuestLists runs the guest's own initramfs lister (lsinitrd,
// lsinitramfs) in a chroot of its tree on the initramfs file, and wants
// each of words in what it prints (lsinitrd prints the command line
// drop-ins too). The file is put in the tree's /tmp for the run.
func wantGuestLists(t *testing.T, root, lister, initramfs string, words ...string) {
	t.Helper()
	inside := "/tmp/vhdprep-e2e-" + filepath.Base(initramfs)
	mustExec(t, "cp", initramfs, root+inside)
	defer os.Remove(root + inside)
	out, err := exec.Command("chroot", root, lister, inside).CombinedOutput()
	if err != nil {
		t.Fatalf("%s in the guest's tree: %v\n%s", lister, err, out)
	}
	for _, w := range words {
		if !strings.Contains(string(out), w) {
			t.Errorf("the guest's %s does not show %s:\n%s", lister, w, out)
		}
	}
}

// listed says whether a file whose path ends in suffix is in the list.
func listed(files []string, suffix string) bool {
	for _, f := range files {
		if strings.HasSuffix(f, suffix) {
			return true
		}
	}
	return false
}

func wantListed(t *testing.T, files []string, suffix string) {
	t.Helper()
	if !listed(files, suffix) {
		t.Errorf("the initramfs holds no %s", suffix)
	}
}

func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// extract copies the partition at off in img (to the end of the disk) to
// a file of its own, for tools that read no offset.
func extract(t *testing.T, img string, off int64) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "part")
	mustExec(t, "dd", "if="+img, "of="+out, "bs=1M", fmt.Sprintf("skip=%d", off/MiB), "conv=sparse", "status=none")
	return out
}

func fileSum(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// mustExec runs a host tool and returns its standard output.
func mustExec(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
