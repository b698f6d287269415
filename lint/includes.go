package lint

import "github.com/vhdprep/vhdprep/rootfs"

// Bounds on a configuration that includes other files (sshd_config,
// sudoers), which a hostile image cannot make the reading exceed.
const (
	maxIncludeDepth = 16 // how deep includes go (sshd's SERVCONF_MAX_DEPTH)
	// maxIncludedFiles bounds the files read, counting each time: a file
	// that includes itself twice would otherwise be read 2^16 times.
	maxIncludedFiles = 256
)

// includes reads the files of one configuration within those bounds.
type includes struct {
	root rootfs.FS
	read int // files read so far
}

// file is the content of name, included at depth; nil past the bounds or
// for a directory (an include that matches one reads no configuration).
func (in *includes) file(name string, depth int) ([]byte, error) {
	if in.read++; depth > maxIncludeDepth || in.read > maxIncludedFiles {
		return nil, nil
	}
	if fi, err := in.root.Stat(name); err == nil && fi.IsDir() {
		return nil, nil
	}
	return readFile(in.root, name)
}
