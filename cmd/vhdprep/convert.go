package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/internal/units"
)

func newConvertCmd(a *app) *cobra.Command {
	var size, to string
	opts := diskimage.ConvertOptions{}
	cmd := &cobra.Command{
		Use:   "convert INPUT [OUTPUT]",
		Short: "Convert a raw, qcow2, VHD, VDI, VHDX, VMDK or OVA image into a fixed VHD Azure accepts",
		Long: `Convert writes the input as a fixed VHD whose virtual size is the input's, rounded up
to a whole MiB. Holes stay holes: only data is read and written. The output appears
whole or not at all, and the input is never changed (except with --in-place). When the
size changes, a GPT's backup moves to the new end. A fixed VHD whose footer disagrees with
the file (truncated or over-long) is refused; --accept-data-loss copies the disk its footer
describes and says what was lost. A warning says when Azure would refuse the output.`,
		Example: `  vhdprep convert disk.raw disk.vhd
  vhdprep convert disk.qcow2 disk.vhd --size 30G
  vhdprep convert dynamic.vhd fixed.vhd
  vhdprep convert vm.ova disk.vhd              # the OVF's first disk
  vhdprep convert --in-place disk.raw          # append the footer; no copy
  vhdprep convert --to raw disk.vhd disk.raw
  vhdprep convert --in-place --to raw disk.vhd # strip the footer`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Input = args[0]
			switch {
			case opts.InPlace && len(args) == 2:
				return usageError{fmt.Errorf("--in-place converts INPUT where it is; give no OUTPUT")}
			case !opts.InPlace && len(args) == 1:
				return usageError{fmt.Errorf("give an OUTPUT file, or --in-place")}
			case len(args) == 2:
				opts.Output = args[1]
			}
			switch to {
			case "vhd":
			case "raw":
				opts.ToRaw = true
			default:
				return usageError{fmt.Errorf("--to must be vhd or raw, not %q", to)}
			}
			if size != "" {
				n, err := diskimage.ParseSize(size)
				if err != nil {
					return usageError{err}
				}
				opts.Size = n
			}
			opts.Progress = a.progress()
			a.logf("converting %s to a %s %s", opts.Input, map[bool]string{false: "fixed VHD", true: "raw image"}[opts.ToRaw], map[bool]string{false: "at " + opts.Output, true: "in place"}[opts.InPlace])
			res, err := diskimage.Convert(cmd.Context(), opts)
			if errors.Is(err, context.Canceled) {
				return interrupted("nothing was written: the partial output was removed")
			} else if err != nil {
				return err
			}
			if !a.quiet && !a.jsonOutput() {
				if res.Disk != "" {
					fmt.Fprintf(a.io.ErrOut, "vhdprep: converting %s\n", res.Disk)
				}
				if res.DataLost != "" {
					fmt.Fprintf(a.io.ErrOut, "vhdprep: warning: %s\n", res.DataLost)
				}
				for _, w := range res.Warnings {
					fmt.Fprintf(a.io.ErrOut, "vhdprep: warning: %s\n", w)
				}
			}
			a.logf("read %s as %s, virtual size %d bytes", res.Input, res.InputFormat, res.InputSize)
			if res.Changed {
				a.logf("wrote %d bytes (data and footer); the rest of %s is holes; read back and renamed into place", res.BytesWritten, res.Output)
			}
			if a.jsonOutput() {
				return a.printJSON(res)
			}
			if !res.Changed {
				fmt.Fprintf(a.io.Out, "%s is already a %s image; nothing to do\n", res.Input, res.OutputFormat)
				return nil
			}
			fmt.Fprintf(a.io.Out, "%s (%s, %s) -> %s (%s, %s)\n", res.Input, res.InputFormat, humanBytes(res.InputSize),
				res.Output, res.OutputFormat, humanBytes(res.VirtualSize))
			return nil
		},
	}
	cmd.Flags().StringVar(&size, "size", "", "virtual size of the output (30G, 30720M, bytes); at least the input's")
	cmd.Flags().StringVar(&to, "to", "vhd", "output format: vhd (fixed) or raw")
	cmd.Flags().BoolVar(&opts.InPlace, "in-place", false, "convert INPUT itself: append (or with --to raw, strip) the VHD footer")
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "overwrite OUTPUT if it exists")
	cmd.Flags().BoolVar(&opts.AcceptDataLoss, "accept-data-loss", false, "copy a truncated or over-long fixed VHD as the disk its footer describes: bytes the file lacks become zeros, bytes past the footer's size are dropped")
	return cmd
}

// humanBytes prints a size as every command shows it.
func humanBytes(n int64) string { return units.Bytes(n) }
