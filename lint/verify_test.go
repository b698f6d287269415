package lint

import (
	"errors"
	"strings"
	"testing"
)

// A repair that changes files but leaves its rule failing is reported by
// rule, with what check still finds; one that converges, and one that
// says what the user must still do, are not.
func TestVerifyRepairsNamesRepairsThatDoNotConverge(t *testing.T) {
	wants := func(id, name, good string) *Rule {
		return &Rule{ID: id, Area: AreaGeneralize, Severity: Error, Title: name + " is good", Fixable: true,
			Check: func(t *Target) ([]Finding, error) {
				root, _ := t.root()
				if b, _ := readFile(root, name); string(b) != good {
					return []Finding{{Message: "/" + name + " is not " + good, Location: Location{File: "/" + name}}}, nil
				}
				return nil, nil
			}}
	}
	broken := wants("TST001", "etc/broken", "good")
	broken.Repair = func(t *Target, o *Overlay) error { o.Write("etc/broken", []byte("still bad")); return nil }
	works := wants("TST002", "etc/works", "good")
	works.Repair = func(t *Target, o *Overlay) error { o.Write("etc/works", []byte("good")); return nil }
	partial := wants("TST003", "etc/partial", "good")
	partial.Repair = func(t *Target, o *Overlay) error {
		o.Write("etc/partial", []byte("half"))
		o.Note("finish it in the guest")
		return nil
	}
	catalog := []*Rule{broken, works, partial}
	target := tree(t, map[string]string{"etc/broken": "bad", "etc/works": "bad", "etc/partial": "bad"})
	plan, err := PlanFix(target, catalog, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Claimed(); strings.Join(got, " ") != "TST001 TST002" {
		t.Fatalf("claimed %v", got)
	}
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	fresh, _ := OpenDir(target.Name)
	rep, err := VerifyRepairs(fresh, catalog, nil, CommandFix, plan.Claimed())
	var nc *NotConvergedError
	if !errors.As(err, &nc) || len(nc.Rules) != 1 || rep == nil {
		t.Fatalf("verify: %v", err)
	}
	if want := "TST001: vhdprep fix changed the image for it, but check still finds: /etc/broken is not good (/etc/broken)"; err.Error() != want {
		t.Fatalf("got  %s\nwant %s", err, want)
	}
	if err := Verify(fresh, CommandDeprovision, []string{"SEC004"}); err != nil {
		t.Fatalf("a rule that passes: %v", err)
	}
}
