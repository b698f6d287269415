package guest

import "errors"

// ErrImageOrDir is what an Opener given both an image and a directory, or
// neither, returns.
var ErrImageOrDir = errors.New("give an image or a directory tree, one of them")

// Opener opens the image file, or with dir set instead the directory tree:
// to change it (an image with OpenToChange, its lock taken before anything
// is read, so what is planned is what is changed) or to read it (Open,
// OpenDir). The verbs that change a guest take it, and open again with it,
// to read, what they wrote.
func Opener(image, dir string) func(change bool) (*Guest, error) {
	return func(change bool) (*Guest, error) {
		switch {
		case dir != "" && image == "":
			return OpenDir(dir)
		case dir == "" && image != "" && change:
			return OpenToChange(image)
		case dir == "" && image != "":
			return Open(image)
		}
		return nil, ErrImageOrDir
	}
}
