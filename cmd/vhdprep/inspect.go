package main

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/guest"
)

func newInspectCmd(a *app) *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "inspect (IMAGE | --root DIR)",
		Short: "Show what is inside an image: partitions, LVM, filesystems, OS, kernels, boot",
		Long: `Inspect reads the image without mounting it, as an ordinary user: the partition table,
LVM volume groups, the filesystem on each volume, the root filesystem and where fstab
mounts the others, the distribution, architecture, kernels with their initramfs, the init
system, and whether the disk boots as an Azure Gen1 (BIOS) or Gen2 (UEFI) VM.`,
		Example: `  vhdprep inspect disk.vhd
  vhdprep inspect --output json disk.qcow2
  vhdprep inspect --root ./rootfs`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := opener(guest.Opener, args, root)(false)
			if err != nil {
				return err
			}
			defer g.Close()
			a.logGuest(g)
			rep := g.Inspect()
			if a.jsonOutput() {
				return a.printJSON(rep)
			}
			printInspect(a.io.Out, rep)
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "inspect a directory tree instead of an image")
	return cmd
}

func printInspect(out io.Writer, r *guest.Report) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "%s\n", r.Name)
	if r.Format != "" {
		fmt.Fprintf(w, "format:\t%s, %s\n", r.Format, humanBytes(r.VirtualSize))
	}
	if t := r.Table; t != nil {
		fmt.Fprintf(w, "partition table:\t%s (disk id %s, %d-byte sectors)\n", t.Scheme, t.DiskID, t.SectorSize)
		for _, p := range t.Partitions {
			flags := ""
			if p.Bootable {
				flags = " boot"
			}
			if p.Logical {
				flags += " logical"
			}
			name := ""
			if p.Name != "" {
				name = fmt.Sprintf(" %q", p.Name)
			}
			fmt.Fprintf(w, "  p%d\tstart %s, size %s\t%s (%s)%s%s\n", p.Number, humanBytes(p.Start), humanBytes(p.Size), p.TypeName, p.Type, name, flags)
		}
	}
	for _, vg := range r.VGs {
		fmt.Fprintf(w, "LVM volume group:\t%s: %s\n", vg.Name, strings.Join(vg.LVs, ", "))
	}
	if len(r.Volumes) > 0 {
		fmt.Fprintf(w, "volumes:\t\n")
		for _, v := range r.Volumes {
			fs := v.FSType
			if fs == "" {
				fs = "(unknown)"
			}
			fmt.Fprintf(w, "  %s\t%s\t%s", v.Name, humanBytes(v.Size), fs)
			if v.Label != "" {
				fmt.Fprintf(w, " label=%s", v.Label)
			}
			if v.UUID != "" {
				fmt.Fprintf(w, " uuid=%s", v.UUID)
			}
			fmt.Fprintln(w)
		}
	}
	if r.RootError != "" {
		fmt.Fprintf(w, "root:\tnot readable: %s\n", r.RootError)
	}
	for _, m := range r.Mounts {
		fmt.Fprintf(w, "mount:\t%s\t%s (%s) %s\n", m.Path, m.Volume, m.FSType, m.Spec)
	}
	if r.RootError == "" {
		osName := r.OS.Name
		if osName == "" {
			osName = "unknown"
		}
		fmt.Fprintf(w, "os:\t%s (id %s, version %s, family %s)\n", osName, dash(r.OS.ID), dash(r.OS.Version), dash(r.OS.Family))
		fmt.Fprintf(w, "arch:\t%s\n", dash(r.Arch))
		fmt.Fprintf(w, "init:\t%s\n", dash(r.Init))
		for _, k := range r.Kernels {
			fmt.Fprintf(w, "kernel:\t%s\timage %s, initramfs %s\n", k.Version, dash(k.Image), dash(k.Initrd))
		}
	}
	if b := r.Boot; b != nil {
		fmt.Fprintf(w, "boots as:\tGen1 (BIOS) %s, Gen2 (UEFI) %s\t%s\n", yesNo(b.Gen1), yesNo(b.Gen2), b.Detail)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning:\t%s\n", warn)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newLsCmd(a *app) *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "ls IMAGE PATH | ls --root DIR PATH",
		Short: "List a directory inside an image",
		Long: `Ls lists a directory inside the image as ls -l does: mode, size and name, a symbolic
link as name -> target. PATH is a path in the guest, where / is the guest's root; ..
is taken by name, as cd takes it, and never leads above /.`,
		Example: `  vhdprep ls disk.vhd /etc/default
  vhdprep ls disk.qcow2 /boot --output json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, name, err := guestAndPath(args, root)
			if err != nil {
				return err
			}
			defer g.Close()
			a.logGuest(g)
			ents, err := g.Root.ReadDir(name)
			if err != nil {
				return fmt.Errorf("ls %s: %w", g.Name, err)
			}
			type entry struct {
				Name   string `json:"name"`
				Mode   string `json:"mode"`
				Size   int64  `json:"size_bytes,string"`
				Target string `json:"target,omitempty"`
			}
			list := []entry{}
			for _, e := range ents {
				info, err := e.Info()
				if err != nil {
					return fmt.Errorf("ls %s: %s: %w", g.Name, e.Name(), err)
				}
				en := entry{Name: e.Name(), Mode: lsMode(info.Mode()), Size: info.Size()}
				if info.Mode()&fs.ModeSymlink != 0 {
					en.Target, _ = g.Root.ReadLink(strings.TrimPrefix(name+"/"+e.Name(), "./"))
				}
				list = append(list, en)
			}
			if a.jsonOutput() {
				return a.printJSON(struct {
					Image   string  `json:"image"`
					Path    string  `json:"path"`
					Entries []entry `json:"entries"`
				}{g.Name, guestPath(name), list})
			}
			// As ls -l: sizes right-aligned, names left, a link's target
			// after an arrow.
			width := 0
			for _, e := range list {
				width = max(width, len(strconv.FormatInt(e.Size, 10)))
			}
			for _, e := range list {
				name := e.Name
				if e.Mode[0] == 'l' {
					name += " -> " + e.Target
				}
				fmt.Fprintf(a.io.Out, "%s %*d %s\n", e.Mode, width, e.Size, name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "a directory tree instead of an image")
	return cmd
}

func newCatCmd(a *app) *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:     "cat IMAGE PATH | cat --root DIR PATH",
		Short:   "Print a file inside an image",
		Example: "  vhdprep cat disk.vhd /etc/fstab\n  vhdprep cat disk.qcow2 /etc/default/grub",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, name, err := guestAndPath(args, root)
			if err != nil {
				return err
			}
			defer g.Close()
			a.logGuest(g)
			f, err := g.Root.Open(name)
			if err != nil {
				return fmt.Errorf("cat %s: %w", g.Name, err)
			}
			defer f.Close()
			if a.jsonOutput() {
				b, err := io.ReadAll(f)
				if err != nil {
					return fmt.Errorf("cat %s: %s: %w", g.Name, name, err)
				}
				return a.printJSON(struct {
					Image   string `json:"image"`
					Path    string `json:"path"`
					Size    int64  `json:"size_bytes,string"`
					Content []byte `json:"content_base64"`
				}{g.Name, guestPath(name), int64(len(b)), b})
			}
			if _, err := io.Copy(a.io.Out, f); err != nil {
				return fmt.Errorf("cat %s: %s: %w", g.Name, name, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "a directory tree instead of an image")
	return cmd
}

// guestAndPath opens the guest named by args/--root and turns the guest
// path (absolute, as users write it) into an fs.FS name.
func guestAndPath(args []string, root string) (*guest.Guest, string, error) {
	imageArgs, p := args[:len(args)-1], args[len(args)-1]
	g, err := opener(guest.Opener, imageArgs, root)(false)
	if err != nil {
		return nil, "", err
	}
	if g.Root == nil {
		g.Close()
		return nil, "", fmt.Errorf("%s: %v", g.Name, g.RootErr)
	}
	// Guest paths are absolute, and .. above / stays at /, as in a shell.
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		name = "."
	}
	return g, name, nil
}

// guestPath is an fs.FS name as the guest's absolute path.
func guestPath(name string) string {
	return path.Clean("/" + name)
}

// lsMode writes a file mode as ls -l does (Go's own marks a link L, a
// device D).
func lsMode(m fs.FileMode) string {
	kind := byte('-')
	switch {
	case m&fs.ModeDir != 0:
		kind = 'd'
	case m&fs.ModeSymlink != 0:
		kind = 'l'
	case m&fs.ModeNamedPipe != 0:
		kind = 'p'
	case m&fs.ModeSocket != 0:
		kind = 's'
	case m&fs.ModeCharDevice != 0:
		kind = 'c'
	case m&fs.ModeDevice != 0:
		kind = 'b'
	}
	b := []byte(m.Perm().String())
	b[0] = kind
	special := func(set bool, i int, lower, upper byte) {
		if set && b[i] == 'x' {
			b[i] = lower
		} else if set {
			b[i] = upper
		}
	}
	special(m&fs.ModeSetuid != 0, 3, 's', 'S')
	special(m&fs.ModeSetgid != 0, 6, 's', 'S')
	special(m&fs.ModeSticky != 0, 9, 't', 'T')
	return string(b)
}
