package diskimage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/raw/part"
)

// FuzzSizeChanges is the property behind every size change: from a seed,
// a disk of a random size (GPT, MBR or none, by sfdisk) with data at random
// places, and a random operation (convert, --size, --to raw, --in-place,
// resize --size, --align, --shrink). The operation either succeeds, and
// the result has the size meant, its partition table whole (our reader, and
// sgdisk -v for GPT) and every byte of data the partitions (or, without a
// table, the disk) held; or it refuses a shrink below the floor, and the
// file is unchanged.
func FuzzSizeChanges(f *testing.F) {
	for seed := range uint64(24) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		testimage.RequireTools(t, "sfdisk", "sgdisk", "qemu-img")
		sizeChangeCase(t, rand.New(rand.NewPCG(seed, seed>>32|1)))
	})
}

func sizeChangeCase(t *testing.T, rng *rand.Rand) {
	dir := t.TempDir()
	in := filepath.Join(dir, "disk.raw")
	scheme := []string{"gpt", "dos", "none"}[rng.IntN(3)]
	size := 8*raw.MiB + rng.Int64N(40*raw.MiB)
	if scheme != "none" {
		size &^= 511 // partition tools work in sectors
	}
	// Partitions from 1 MiB, ending at least 1 MiB before the end; data
	// inside them, or anywhere on a disk without a table.
	var parts []raw.Extent
	var data []int64
	if scheme == "none" {
		for range 1 + rng.IntN(3) {
			data = append(data, rng.Int64N(size-64<<10)&^511)
		}
	} else {
		start := int64(raw.MiB)
		for range 1 + rng.IntN(2) {
			room := size - raw.MiB - start
			if room < raw.MiB {
				break
			}
			n := raw.MiB + rng.Int64N(room-raw.MiB+1)&^(raw.MiB-1)
			parts = append(parts, raw.Extent{Offset: start, Length: n})
			data = append(data, start+rng.Int64N(n-64<<10)&^511)
			start += n
		}
	}
	writeSparse(t, in, size, data...)
	if scheme != "none" {
		var script strings.Builder
		fmt.Fprintf(&script, "label: %s\n", scheme)
		for _, p := range parts {
			fmt.Fprintf(&script, "start=%d, size=%d\n", p.Offset/512, p.Length/512)
		}
		cmd := exec.Command("sfdisk", "-q", in)
		cmd.Stdin = strings.NewReader(script.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk %q: %v\n%s", script.String(), err, out)
		}
	}
	before, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	keep := parts // what must survive
	if scheme == "none" {
		keep = []raw.Extent{{Offset: 0, Length: size}}
	}

	// The operation, and the disk size it must give.
	var (
		name   string
		out    = in
		outFmt = Raw
		want   int64
		floor  int64 // a shrink below it must be refused
		err2   error
	)
	ctx := context.Background()
	grow := func() int64 { return size + rng.Int64N(30*raw.MiB) }
	switch op := rng.IntN(5); op {
	case 0, 1:
		opts := ConvertOptions{Input: in, Output: filepath.Join(dir, "out"), ToRaw: op == 1}
		if rng.IntN(2) == 0 {
			opts.Size = grow()
		}
		name, out, outFmt = fmt.Sprintf("convert --size %d --to-raw=%v", opts.Size, opts.ToRaw), opts.Output, VHDFixed
		want = max(size, opts.Size)
		if opts.ToRaw {
			outFmt = Raw
		} else {
			want = raw.AlignMiB(want)
		}
		_, err2 = Convert(ctx, opts)
	case 2:
		opts := ConvertOptions{Input: in, InPlace: true}
		if rng.IntN(2) == 0 {
			opts.Size = grow()
		}
		name, outFmt, want = fmt.Sprintf("convert --in-place --size %d", opts.Size), VHDFixed, raw.AlignMiB(max(size, opts.Size))
		_, err2 = Convert(ctx, opts)
	case 3:
		name, want = "resize --align", raw.AlignMiB(size)
		_, err2 = Resize(ResizeOptions{Path: in, Align: true})
	case 4:
		target := raw.MiB + rng.Int64N(size+20*raw.MiB)
		name, want = fmt.Sprintf("resize --size %d --shrink", target), raw.AlignMiB(target)
		switch {
		case scheme == "none":
			for _, d := range data {
				floor = max(floor, d+64<<10)
			}
		case len(parts) > 0:
			floor = parts[len(parts)-1].End()
			if scheme == "gpt" {
				floor += 33 * 512
			}
		}
		_, err2 = Resize(ResizeOptions{Path: in, Size: target, Shrink: true})
	}
	if want < floor {
		if err2 == nil || !strings.Contains(err2.Error(), "cannot shrink") {
			t.Fatalf("%s %s disk of %d bytes, floor %d: %v; want a refusal", name, scheme, size, floor, err2)
		}
		if after, _ := os.ReadFile(in); !bytes.Equal(after, before) {
			t.Fatalf("%s: a refused shrink changed the file", name)
		}
		return
	}
	if err2 != nil {
		t.Fatalf("%s on a %s disk of %d bytes: %v", name, scheme, size, err2)
	}

	im, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.Format != outFmt || im.Disk.Size() != want {
		t.Fatalf("%s: %s of %d bytes, want %s of %d", name, im.Format, im.Disk.Size(), outFmt, want)
	}
	tab, err := part.Read(im.Disk, want)
	if err != nil {
		t.Fatal(err)
	}
	if scheme != "none" && (len(tab.Partitions) != len(parts) || len(tab.Warnings) != 0) {
		t.Fatalf("%s: table %+v", name, tab)
	}
	if scheme == "gpt" {
		sgdiskVerify(t, out)
	}
	for _, k := range keep {
		k = raw.Clip([]raw.Extent{k}, min(size, want))[0]
		got := make([]byte, k.Length)
		if _, err := im.Disk.ReadAt(got, k.Offset); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, before[k.Offset:k.End()]) {
			t.Fatalf("%s on a %s disk of %d bytes: data at %d-%d changed", name, scheme, size, k.Offset, k.End())
		}
	}
}
