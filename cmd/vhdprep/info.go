package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/vmdk"
)

func newInfoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "info IMAGE",
		Short: "Show an image's format, sizes, VHD footer and whether Azure accepts it",
		Example: `  vhdprep info disk.vhd
  vhdprep info disk.qcow2 --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := diskimage.Inspect(args[0], guest.BootsGen2(args[0]))
			if err != nil {
				return err
			}
			a.logf("opened %s: format %s, %d bytes, virtual size %d bytes", info.Path, info.Format, info.FileSize, info.VirtualSize)
			a.logf("Azure's verdict: valid %v, %d problems, %d warnings", info.Valid, len(info.Problems), len(info.Warnings))
			if a.jsonOutput() {
				return a.printJSON(info)
			}
			printInfo(a, info)
			return nil
		},
	}
}

func printInfo(a *app, info *diskimage.Info) {
	w := tabwriter.NewWriter(a.io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "file:\t%s\n", info.Path)
	fmt.Fprintf(w, "format:\t%s\n", info.Format)
	fmt.Fprintf(w, "virtual size:\t%s (%d bytes)\n", humanBytes(info.VirtualSize), info.VirtualSize)
	fmt.Fprintf(w, "file size:\t%d bytes\n", info.FileSize)
	fmt.Fprintf(w, "MiB aligned:\t%v\n", info.MiBAligned)
	if f := info.Footer; f != nil {
		fmt.Fprintf(w, "footer:\t\n")
		fmt.Fprintf(w, "  disk type:\t%s\n", f.DiskType)
		fmt.Fprintf(w, "  current size:\t%d\n", f.CurrentSize)
		fmt.Fprintf(w, "  original size:\t%d\n", f.OriginalSize)
		fmt.Fprintf(w, "  geometry (C/H/S):\t%d/%d/%d = %d bytes\n", f.Cylinders, f.Heads, f.SectorsPerTrk, f.GeometrySize)
		fmt.Fprintf(w, "  size qemu-img sees:\t%d\n", f.QemuSize)
		fmt.Fprintf(w, "  creator:\t%q %s on %q\n", f.CreatorApp, f.CreatorVersion, f.CreatorHostOS)
		fmt.Fprintf(w, "  timestamp:\t%s\n", f.Timestamp.Format("2006-01-02 15:04:05 MST"))
		fmt.Fprintf(w, "  features:\t%#x\n", f.Features)
		fmt.Fprintf(w, "  format version:\t%s\n", f.FormatVersion)
		fmt.Fprintf(w, "  data offset:\t%#x\n", f.DataOffset)
		fmt.Fprintf(w, "  checksum:\t%s\n", f.Checksum)
		fmt.Fprintf(w, "  unique id:\t%s\n", f.UniqueID)
		fmt.Fprintf(w, "  saved state:\t%v\n", f.SavedState)
	}
	if v := info.VDI; v != nil {
		fmt.Fprintf(w, "vdi header:\t\n")
		fmt.Fprintf(w, "  type:\t%s\n", v.Type)
		fmt.Fprintf(w, "  version:\t%s\n", v.Version)
		fmt.Fprintf(w, "  text:\t%q\n", v.Text)
		fmt.Fprintf(w, "  block size:\t%d\n", v.BlockSize)
		fmt.Fprintf(w, "  blocks:\t%d, %d allocated\n", v.Blocks, v.BlocksAllocated)
		fmt.Fprintf(w, "  geometry (C/H/S):\t%d/%d/%d\n", v.Cylinders, v.Heads, v.Sectors)
		fmt.Fprintf(w, "  flags:\t%#x\n", v.Flags)
		fmt.Fprintf(w, "  description:\t%q\n", v.Description)
		fmt.Fprintf(w, "  uuid:\t%s\n", v.UUID)
		fmt.Fprintf(w, "  last snapshot uuid:\t%s\n", v.LastSnapUUID)
	}
	if v := info.VHDX; v != nil {
		fmt.Fprintf(w, "vhdx:\t\n")
		fmt.Fprintf(w, "  type:\t%s\n", v.Type)
		fmt.Fprintf(w, "  creator:\t%q\n", v.Creator)
		fmt.Fprintf(w, "  current header:\t%d (sequence %d)\n", v.CurrentHeader, v.SequenceNumber)
		if v.LogEntriesReplayed > 0 {
			fmt.Fprintf(w, "  log:\t%d bytes at %#x, %d entries replayed in memory (the file is unchanged)\n", v.LogLength, v.LogOffset, v.LogEntriesReplayed)
		} else {
			fmt.Fprintf(w, "  log:\t%d bytes at %#x, empty\n", v.LogLength, v.LogOffset)
		}
		fmt.Fprintf(w, "  block size:\t%d\n", v.BlockSize)
		fmt.Fprintf(w, "  sector size:\t%d logical, %d physical\n", v.LogicalSectorSize, v.PhysicalSectorSize)
		fmt.Fprintf(w, "  BAT:\t%d entries, chunk ratio %d\n", v.BATEntries, v.ChunkRatio)
		fmt.Fprintf(w, "  page 83 id:\t%s\n", v.Page83)
		fmt.Fprintf(w, "  file write guid:\t%s\n", v.FileWriteGUID)
		fmt.Fprintf(w, "  data write guid:\t%s\n", v.DataWriteGUID)
	}
	if o := info.OVA; o != nil {
		fmt.Fprintf(w, "ova:\t\n")
		fmt.Fprintf(w, "  descriptor:\t%s\n", o.OVF)
		for i, d := range o.Disks {
			fmt.Fprintf(w, "  disk %d:\t%s (%s), %s\n", i+1, d.File, d.ID, d.Capacity)
		}
		fmt.Fprintf(w, "  read:\t%s, the first disk\n", o.Opened)
		printVMDK(w, &o.VMDK)
	}
	if v := info.VMDK; v != nil {
		printVMDK(w, v)
	}
	if info.Valid {
		fmt.Fprintf(w, "azure:\tvalid: a fixed VHD of a whole number of MiB, 20 MiB to 4095 GiB\n")
	} else {
		fmt.Fprintf(w, "azure:\tnot accepted as it is\n")
	}
	w.Flush()
	for _, p := range info.Problems {
		fmt.Fprintf(a.io.Out, "  - error: %s\n", p)
	}
	for _, p := range info.Warnings {
		fmt.Fprintf(a.io.Out, "  - warning: %s\n", p)
	}
}

func printVMDK(w io.Writer, v *vmdk.Info) {
	fmt.Fprintf(w, "vmdk:\t\n")
	fmt.Fprintf(w, "  create type:\t%s\n", v.CreateType)
	if v.CID != "" {
		fmt.Fprintf(w, "  cid:\t%s\n", v.CID)
	}
	for i, e := range v.Extents {
		fmt.Fprintf(w, "  extent %d:\t%s %s, %d bytes", i+1, e.Access, e.Type, e.Size)
		if e.File != "" {
			fmt.Fprintf(w, ", %s", e.File)
		}
		if e.Offset != 0 {
			fmt.Fprintf(w, " from offset %d", e.Offset)
		}
		fmt.Fprintln(w)
		if s := e.Sparse; s != nil {
			var traits []string
			for _, t := range []struct {
				on   bool
				name string
			}{{s.Compressed, "deflated grains"}, {s.Markers, "markers"}, {s.FooterGD, "directory in the footer"},
				{s.RedundantGD, "redundant directory"}, {s.ZeroGrains, "zeroed grains"}, {s.UncleanShutdown, "not closed cleanly"}} {
				if t.on {
					traits = append(traits, t.name)
				}
			}
			fmt.Fprintf(w, "    sparse:\tversion %d, flags %#x, grains of %d bytes, tables of %d, directory of %d; %s\n",
				s.Version, s.Flags, s.GrainSize, s.GrainTableEntries, s.GrainDirectoryEntries, strings.Join(traits, ", "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(v.DDB)) {
		fmt.Fprintf(w, "  ddb.%s:\t%s\n", k, v.DDB[k])
	}
}
