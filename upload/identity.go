package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/vhdprep/vhdprep/raw"
)

// Metadata names on the blob (C# identifiers, as Azure requires; lower case,
// as the service may return them).
const (
	metaSize        = "vhdprep_size"
	metaMtime       = "vhdprep_mtime"
	metaFingerprint = "vhdprep_fingerprint"
)

// fingerprintSpan is how much of each end of the disk the fingerprint hashes.
const fingerprintSpan = raw.MiB

// identity tells whether a blob is an upload of this file. The fingerprint
// hashes the footer and the first and last MiB of the disk: the footer
// holds a unique ID that every VHD writer draws at random, so two different
// images almost never share it, and the first MiB (partition table, boot
// loader) and last MiB (GPT backup) change with any repartitioning. It does
// not see an edit in the middle of the disk with the footer kept (vhdprep
// fix, a mount that changes a file): the modification time does, unless it
// was restored on purpose. What slips through both is caught by --verify,
// never by resume, which trusts what the blob holds.
type identity struct {
	size        int64
	mtime       time.Time
	fingerprint string
}

func identify(r io.ReaderAt, size int64, mtime time.Time) (identity, error) {
	h := sha256.New()
	data := size - PageSize // the disk before the footer
	span := min(int64(fingerprintSpan), data)
	for _, part := range []raw.Extent{{Offset: data, Length: PageSize}, {Offset: 0, Length: span}, {Offset: data - span, Length: span}} {
		if _, err := io.Copy(h, io.NewSectionReader(r, part.Offset, part.Length)); err != nil {
			return identity{}, fmt.Errorf("fingerprinting: %w", err)
		}
	}
	return identity{size, mtime, hex.EncodeToString(h.Sum(nil))}, nil
}

func (id identity) metadata() map[string]string {
	return map[string]string{
		metaSize:        strconv.FormatInt(id.size, 10),
		metaMtime:       strconv.FormatInt(id.mtime.UnixNano(), 10),
		metaFingerprint: id.fingerprint,
	}
}

// differs says how the blob's metadata shows another file, or "".
func (id identity) differs(p *Properties) string {
	md := p.Metadata
	switch {
	case md[metaFingerprint] == "":
		return "it was not written by vhdprep upload"
	case p.Size != id.size || md[metaSize] != strconv.FormatInt(id.size, 10):
		return fmt.Sprintf("it is %d bytes long, the file %d", p.Size, id.size)
	case md[metaFingerprint] != id.fingerprint:
		return "its fingerprint (footer, first and last MiB) differs"
	case md[metaMtime] != strconv.FormatInt(id.mtime.UnixNano(), 10):
		return "the file was modified since that upload began"
	}
	return ""
}

// destination is what the blob already holds, and whether that is trusted.
type destination struct {
	// have lists the blob's data ranges: where the file is zero they are
	// cleared, and with trusted set, the file's data in them is not sent.
	have    []raw.Extent
	trusted bool
}

// prepare finds or creates the blob and says what it already holds.
func prepare(ctx context.Context, o Options, id identity, sum *Summary) (*destination, error) {
	var props *Properties
	err := retry(ctx, &o, nil, "get properties", func(ctx context.Context) (err error) {
		props, err = o.Blob.Properties(ctx)
		return err
	})
	if cc, ok := o.Blob.(ContainerCreator); ok && isContainerNotFound(err) && !o.ManagedDisk {
		if err := retry(ctx, &o, nil, "create container", cc.CreateContainer); err != nil {
			return nil, containerError(cc.Container(), err)
		}
		sum.ContainerCreated = true
		err = ErrNotFound
	}
	exists := err == nil
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	ranges := func(trusted bool) (*destination, error) {
		d := &destination{trusted: trusted}
		err := retry(ctx, &o, nil, "get page ranges", func(ctx context.Context) (err error) {
			d.have, err = o.Blob.PageRanges(ctx)
			return err
		})
		return d, err
	}
	switch {
	case o.ManagedDisk && !exists:
		return nil, fmt.Errorf("%w: create the disk first with --upload-type Upload --upload-size-bytes %d", ErrNotFound, id.size)
	case o.ManagedDisk && props.Size != id.size:
		return nil, fmt.Errorf("%w: the disk has %d bytes, the file %d; create the disk with --upload-size-bytes %d", ErrDiskSize, props.Size, id.size, id.size)
	case o.ManagedDisk:
		// Its content is unknown: send all data, clear what must be zero.
		return ranges(false)
	case exists && id.differs(props) == "":
		sum.Resumed = true
		return ranges(true)
	case exists && !o.Overwrite:
		return nil, fmt.Errorf("%w: %s; give --overwrite to replace it", ErrOtherFile, id.differs(props))
	}
	err = retry(ctx, &o, nil, "create", func(ctx context.Context) error {
		return o.Blob.Create(ctx, id.size, id.metadata())
	})
	return &destination{}, err
}

// containerError says that a missing container could not be created, and
// what to do about it.
func containerError(name string, err error) error {
	var re *ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		return fmt.Errorf("container %s does not exist, and this credential may not create it (HTTP 403 %s): create it (az storage container create --name %s), or use a credential that may (an account key, an account SAS with create permission, or the Storage Blob Data Contributor role)", name, re.Code, name)
	}
	return fmt.Errorf("container %s does not exist, and creating it failed: %w", name, err)
}
