package main

import (
	"fmt"
	"strings"
	"sync"

	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/lint"
	"github.com/vhdprep/vhdprep/upload"
)

// What --verbose logs, on stderr, one line a step: the image opened and
// its format, each rule run, each change planned and applied, the check
// again afterwards, and upload's retries and throttles with their reason.
// Every line goes through upload.Redact: a SAS signature or account key
// never reaches the log.

// logMu keeps lines whole: upload's workers log at once.
var logMu sync.Mutex

// logf prints a line on stderr in --verbose mode (not with --quiet).
func (a *app) logf(format string, args ...any) {
	if a.verbose && !a.quiet {
		line := "vhdprep: " + upload.Redact(fmt.Sprintf(format, args...)) + "\n"
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprint(a.io.ErrOut, line)
	}
}

// logOpen wraps what a library verb opens, to log each opening and to
// learn the image's name for the JSON output.
func (a *app) logOpen(open func(change bool) (*lint.Target, error)) func(change bool) (*lint.Target, error) {
	return func(change bool) (*lint.Target, error) {
		t, err := open(change)
		if err != nil {
			return nil, err
		}
		if a.image == "" {
			a.image = t.Name
		}
		a.logTarget(t, change)
		return t, nil
	}
}

// logOpenGuest is logOpen for the verbs that work on a guest (agent
// inject and remove).
func (a *app) logOpenGuest(open func(change bool) (*guest.Guest, error)) func(change bool) (*guest.Guest, error) {
	return func(change bool) (*guest.Guest, error) {
		g, err := open(change)
		if err != nil {
			return nil, err
		}
		if a.image == "" {
			a.image = g.Name
		}
		a.logGuestOpened(g, change)
		return g, nil
	}
}

// opening says what an image was opened for.
func opening(change bool) string {
	if change {
		return "to change (its lock held)"
	}
	return "to read"
}

// logTarget says what was opened, and the format detected.
func (a *app) logTarget(t *lint.Target, change bool) {
	how := opening(change)
	if c := t.Container; c != nil {
		a.logf("opened %s %s: format %s, %d bytes, virtual size %d bytes", t.Name, how, c.Format, c.FileSize, c.VirtualSize)
	} else {
		a.logf("opened the directory %s %s", t.Name, how)
	}
}

// logGuest says what a read command opened.
func (a *app) logGuest(g *guest.Guest) { a.logGuestAs(g, "") }

// logGuestOpened says what agent inject or remove opened, and for what.
func (a *app) logGuestOpened(g *guest.Guest, change bool) { a.logGuestAs(g, " "+opening(change)) }

func (a *app) logGuestAs(g *guest.Guest, how string) {
	if g.Image != nil {
		a.logf("opened %s%s: format %s, virtual size %d bytes", g.Name, how, g.Image.Format, g.Image.Disk.Size())
	} else {
		a.logf("opened the directory %s%s", g.Name, how)
	}
	for _, m := range g.Mounts {
		a.logf("mounted %s at %s (%s)", m.Volume, m.Path, m.FSType)
	}
	if g.RootErr != nil {
		a.logf("no root filesystem: %v", g.RootErr)
	}
}

// logReport logs each rule check ran and what became of it.
func (a *app) logReport(what string, rep *lint.Report) {
	if !a.verbose || rep == nil {
		return
	}
	for _, o := range rep.Outcomes {
		line := fmt.Sprintf("%s: rule %s: %s", what, o.ID, o.Status)
		if n := len(o.Findings); n > 0 {
			line += fmt.Sprintf(", %d findings", n)
		}
		if o.Reason != "" {
			line += " (" + o.Reason + ")"
		}
		a.logf("%s", line)
	}
	s := rep.Summary
	a.logf("%s: %d errors, %d warnings, %d info; %d rules passed, %d failed, %d skipped", what, s.Errors, s.Warnings, s.Infos, s.Passed, s.Failed, s.Skipped)
}

// logPlan logs the check a plan was made from, each rule's repair, and
// each change planned.
func (a *app) logPlan(plan *lint.Plan) {
	if !a.verbose {
		return
	}
	a.logReport("check", plan.Report)
	for _, r := range plan.Rules {
		switch {
		case r.Command != "":
			a.logf("repair %s: for another command: %s", r.ID, r.Command)
		case r.Error != "":
			a.logf("repair %s: cannot: %s", r.ID, r.Error)
		default:
			a.logf("repair %s: changes %s", r.ID, strings.Join(r.Files, ", "))
		}
	}
	for _, c := range changesJSON(plan.Changes) {
		a.logf("change planned: %s %s", c.Action, c.Path)
	}
}

// logAfter logs what a writing command applied and the check again.
func (a *app) logAfter(after *lint.Report, err error) {
	if !a.verbose || after == nil {
		return
	}
	a.logf("changes applied and verified")
	a.logReport("check again", after)
	if isNotConverged(err) {
		a.logf("check again: a repaired rule still fails")
	}
}
