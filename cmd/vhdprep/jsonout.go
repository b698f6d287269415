package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/vhdprep/vhdprep/internal/textdiff"
	"github.com/vhdprep/vhdprep/lint"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

// schemaVersion is the version of every command's --output json (the
// README's "JSON output" lists the keys). It changes only when a key
// changes meaning or goes away; new keys may come without it.
//
// The vocabulary, the same for every command:
//   - every document is an object whose first key is "schema_version";
//   - "image" names the image the command worked on, as given (with
//     --root, the directory);
//   - keys are snake_case; a quantity carries its unit in its name
//     ("_bytes", "_seconds", "_bytes_per_second");
//   - every byte count or offset ("..._bytes") and every other integer that
//     may pass 2^53 (a VHDX sequence number, GPT attributes) is a decimal
//     string, which no JSON reader rounds; counts of things (rules,
//     requests, entries, lines) are numbers;
//   - a list is [] when empty and a map {}, never null; an object that
//     does not apply is left out.
const schemaVersion = 1

// printJSON writes v, an object, as indented JSON to stdout, with
// schema_version first and empty lists and maps as [] and {}.
func (a *app) printJSON(v any) error {
	b, err := marshalJSON(v)
	if err != nil {
		return err
	}
	_, err = a.io.Out.Write(b)
	return err
}

// marshalJSON is printJSON's document.
func marshalJSON(v any) ([]byte, error) {
	v = withEmptyLists(v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "->" and <image> read as they are
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := bytes.TrimSpace(buf.Bytes())
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("internal error: JSON output %T is not an object", v)
	}
	head := fmt.Sprintf(`{"schema_version":%d`, schemaVersion)
	if string(b) != "{}" {
		head += ","
	}
	var out bytes.Buffer
	if err := json.Indent(&out, append([]byte(head), b[1:]...), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// withEmptyLists returns v with every nil slice and map it holds (through
// pointers, structs, slices and maps) replaced by an empty one, so JSON
// says [] and {}, never null. v is changed where it can be; a value that
// is not a pointer is copied first.
func withEmptyLists(v any) any {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return v
	}
	if rv.Kind() != reflect.Pointer {
		p := reflect.New(rv.Type())
		p.Elem().Set(rv)
		rv = p
	}
	fillNil(rv, 0)
	return rv.Interface()
}

func fillNil(v reflect.Value, depth int) {
	if depth > 32 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			fillNil(v.Elem(), depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			// An embedded struct's fields are the document's own, even
			// where its type is unexported.
			if f := t.Field(i); (f.IsExported() || f.Anonymous) && f.Tag.Get("json") != "-" {
				fillNil(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // []byte is base64, and omitted where it is empty
		}
		if v.IsNil() {
			if v.CanSet() {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return
		}
		for i := range v.Len() {
			fillNil(v.Index(i), depth+1)
		}
	case reflect.Array:
		if v.CanAddr() {
			for i := range v.Len() {
				fillNil(v.Index(i), depth+1)
			}
		}
	case reflect.Map:
		if v.IsNil() && v.CanSet() {
			v.Set(reflect.MakeMap(v.Type()))
		}
	}
}

// changeJSON is one file change of fix, deprovision or agent inject and
// remove, as JSON shows it, dry run or not: what is done to which path,
// and the unified diff (a binary file named with its sizes).
type changeJSON struct {
	Action string `json:"action"` // write, link, remove, rmdir
	Path   string `json:"path"`
	Mode   string `json:"mode,omitempty"`
	Link   string `json:"link,omitempty"`
	Diff   string `json:"diff,omitempty"`
}

func changesJSON(changes []write.Change) []changeJSON {
	out := []changeJSON{}
	for _, c := range changes {
		ch := changeJSON{Action: "write", Path: c.Path}
		switch {
		case c.Dir:
			ch.Action = "rmdir"
		case c.Removed:
			ch.Action = "remove"
		case c.Link != "":
			ch.Action, ch.Link = "link", c.Link
		default:
			if c.Mode != 0 {
				ch.Mode = fmt.Sprintf("%04o", c.Mode)
			}
			var d strings.Builder
			textdiff.Unified(&d, "a"+c.Path, "b"+c.Path, c.Old, c.New)
			ch.Diff = d.String()
		}
		out = append(out, ch)
	}
	return out
}

// planJSON is what fix and deprovision print with --output json, the same
// for a dry run and a real run: the plan per rule, every change with its
// diff, and check's summary of the image as the command leaves it (after
// a real run, check on what was written; after a dry run, which changes
// nothing, the check the plan was made from).
type planJSON struct {
	Image   string         `json:"image"`
	DryRun  bool           `json:"dry_run"`
	Written bool           `json:"written"`
	Refused string         `json:"refused,omitempty"` // a dry run's: why the real run would be refused
	Rules   []lint.RuleFix `json:"rules"`
	Changes []changeJSON   `json:"changes"`
	Check   lint.Summary   `json:"check"`

	ready bool // the plan was made
}

func newPlanJSON(plan *lint.Plan, dryRun bool, refused error) planJSON {
	p := planJSON{DryRun: dryRun, Rules: plan.Rules, Changes: changesJSON(plan.Changes), ready: true}
	if plan.Report != nil {
		p.Image, p.Check = plan.Report.Target, plan.Report.Summary
	}
	if dryRun && refused != nil {
		p.Refused = refused.Error()
	}
	return p
}

// finish records the check on what was written, after a real run.
func (p *planJSON) finish(after *lint.Report) {
	if after != nil {
		p.Written, p.Check = true, after.Summary
	}
}

// isNotConverged tells a repair that was written but left its rule
// failing (exit 1, with the result printed) from a failure.
func isNotConverged(err error) bool {
	var nc *lint.NotConvergedError
	return errors.As(err, &nc)
}
