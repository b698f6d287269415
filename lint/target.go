package lint

import (
	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/vhd"
)

// Target is what the rules look at: the image's container and, as the
// image reader grows, the guest inside it.
type Target struct {
	// Name is the image file or root directory, for reports.
	Name string
	// Container describes the image file; nil when checking a directory.
	Container *Container

	config *Config
}

// Container is what the container rules need to know of the image file.
type Container struct {
	Format      diskimage.Format
	FileSize    int64
	VirtualSize int64
	Footer      *vhd.Footer // nil unless the file is a VHD
}

// OpenImage opens an image file as a check target.
func OpenImage(path string) (*Target, error) {
	im, err := diskimage.Open(path)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	return &Target{Name: path, Container: &Container{
		Format:      im.Format,
		FileSize:    im.FileSize,
		VirtualSize: im.Disk.Size(),
		Footer:      im.Footer,
	}}, nil
}

// option returns a rule's configured option, or def.
func (t *Target) option(rule, key, def string) string {
	if t.config == nil {
		return def
	}
	return t.config.option(rule, key, def)
}
