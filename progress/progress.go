// Package progress lets library code report how far a long job is without
// knowing whether, or how, anything is drawn: the CLI decides that.
package progress

// Reporter is told the size of a job and how much of it is done.
type Reporter interface {
	// Start begins a job of total units (bytes, usually) described by what.
	Start(what string, total int64)
	// Add reports n more units done; it may be called from several
	// goroutines at once.
	Add(n int64)
	// Finish ends the job, successful or not.
	Finish()
}

// Discard is a Reporter that reports nothing.
var Discard Reporter = discard{}

type discard struct{}

func (discard) Start(string, int64) {}
func (discard) Add(int64)           {}
func (discard) Finish()             {}

// Or returns r, or Discard when r is nil, so Options structs may leave it unset.
func Or(r Reporter) Reporter {
	if r == nil {
		return Discard
	}
	return r
}
