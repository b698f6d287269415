package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/diskimage"
)

func newResizeCmd(a *app) *cobra.Command {
	var size string
	opts := diskimage.ResizeOptions{}
	cmd := &cobra.Command{
		Use:   "resize IMAGE (--size SIZE | --align)",
		Short: "Grow or shrink a raw image or fixed VHD in place, to a whole MiB",
		Long: `Resize changes the virtual size of a raw image or fixed VHD where it is. The VHD
footer moves to the new end, and a GPT's backup header with it, so the partition table
stays valid. The new size is always a whole MiB. Shrinking needs --shrink and never
cuts into a partition, or on a disk without a partition table into data. The result is
verified, and the file restored if that fails. Another vhdprep changing the image (fix,
resize) holds its lock: resize is then refused with that process's pid and command.`,
		Example: `  vhdprep resize disk.vhd --size 30G
  vhdprep resize disk.raw --align            # round up to the next MiB
  vhdprep resize disk.vhd --size 10G --shrink`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = args[0]
			switch {
			case size == "" && !opts.Align:
				return usageError{fmt.Errorf("give --size SIZE or --align")}
			case size != "" && opts.Align:
				return usageError{fmt.Errorf("give --size or --align, not both")}
			case size != "":
				n, err := diskimage.ParseSize(size)
				if err != nil {
					return usageError{err}
				}
				opts.Size = n
			}
			a.logf("resizing %s (its lock held while it changes)", opts.Path)
			res, err := diskimage.Resize(opts)
			if err != nil {
				return err
			}
			a.logf("%s: %s, %d -> %d bytes; changed %v, backup GPT moved %v; verified", res.Path, res.Format, res.OldSize, res.NewSize, res.Changed, res.GPTMoved)
			if a.jsonOutput() {
				return a.printJSON(res)
			}
			if !res.Changed {
				fmt.Fprintf(a.io.Out, "%s is already %s; nothing to do\n", res.Path, humanBytes(res.NewSize))
				return nil
			}
			fmt.Fprintf(a.io.Out, "%s: %s -> %s", res.Path, humanBytes(res.OldSize), humanBytes(res.NewSize))
			if res.GPTMoved {
				fmt.Fprint(a.io.Out, " (backup GPT moved to the new end)")
			}
			fmt.Fprintln(a.io.Out)
			return nil
		},
	}
	cmd.Flags().StringVar(&size, "size", "", "new virtual size (30G, 30720M, bytes), rounded up to a whole MiB")
	cmd.Flags().BoolVar(&opts.Align, "align", false, "round the current size up to the next MiB")
	cmd.Flags().BoolVar(&opts.Shrink, "shrink", false, "allow a smaller size (never below the last partition, or the last data without a partition table)")
	return cmd
}
