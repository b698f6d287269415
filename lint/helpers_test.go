package lint

import "github.com/vhdprep/vhdprep/guest"

// OpenDir opens a directory tree as a check target (the command line opens
// one with Opener).
func OpenDir(dir string) (*Target, error) {
	g, err := guest.OpenDir(dir)
	return newTarget(dir, g, err)
}

// Apply writes the plan into the target without the checks and the fresh
// view Fix wraps it in (see Plan.write).
func (p *Plan) Apply(t *Target) error {
	return t.Guest.Apply(p.Changes, p.command())
}
