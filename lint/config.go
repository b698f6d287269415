package lint

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is what a .vhdprep.yaml file (and the check flags) say about the
// rules:
//
//	disable: [KRN003, KRN005]
//	severity:
//	  SWP002: error
//	rules:
//	  KRN001:
//	    console: ttyAMA0
//	fail-on: warning
//	agent: auto
//	remove-users: true
//
// The last two are what vhdprep prepare does besides the rules.
type Config struct {
	Disable  []string
	Severity map[string]Severity
	Rules    map[string]map[string]string
	FailOn   Severity
	// Agent is prepare's choice of provisioning agent: one of AgentChoices
	// ("" is AgentAuto).
	Agent string
	// RemoveUsers has prepare's deprovisioning remove the accounts other
	// than system ones.
	RemoveUsers bool
	// Path is the file the config was read from, which the fix commands
	// that check's hints name must read too.
	Path string
}

// configKeys are the keys a config file may have.
var configKeys = []string{"disable", "severity", "rules", "fail-on", "agent", "remove-users"}

// Prepare's choices of provisioning agent.
const (
	AgentAuto    = "auto"    // inject vhdprep's agent unless one already provisions (AGT001 passes)
	AgentInject  = "inject"  // inject it; refused where another agent starts at boot
	AgentReplace = "replace" // inject it and disable the others (agent inject --replace-waagent)
	AgentKeep    = "keep"    // inject nothing
)

// AgentChoices are the values of Config.Agent.
var AgentChoices = []string{AgentAuto, AgentInject, AgentReplace, AgentKeep}

// LoadConfig reads a config file and checks it against the catalog: an
// unknown key, rule ID or option is an error naming its line, so a typo
// never disables nothing. Rule IDs are case-insensitive.
func LoadConfig(path string, catalog []*Rule) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &Config{Path: path}
	if len(doc.Content) == 0 {
		return c, nil
	}
	if err := c.decode(doc.Content[0], ruleIndex(catalog)); err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return c, nil
}

// decode fills c from the document's top node, holding every key, rule ID
// and option to what exists; an error starts with the line it is on.
func (c *Config) decode(top *yaml.Node, byID map[string]*Rule) error {
	at := func(n *yaml.Node, format string, args ...any) error {
		return fmt.Errorf("%d: "+format, append([]any{n.Line}, args...)...)
	}
	id := func(n *yaml.Node) (string, error) {
		if n.Kind != yaml.ScalarNode || byID[strings.ToUpper(n.Value)] == nil {
			return "", at(n, "%s", unknownIDs([]string{n.Value}, byID))
		}
		return strings.ToUpper(n.Value), nil
	}
	pairs := func(n *yaml.Node, what string) ([]*yaml.Node, error) {
		if n.Kind != yaml.MappingNode {
			return nil, at(n, "%s wants a map of rule IDs", what)
		}
		return n.Content, nil
	}
	if top.Kind != yaml.MappingNode {
		return at(top, "want a map with the keys %s", strings.Join(configKeys, ", "))
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i], top.Content[i+1]
		switch key.Value {
		case "disable":
			if val.Kind != yaml.SequenceNode {
				return at(val, "disable wants a list of rule IDs: disable: [KRN003]")
			}
			for _, n := range val.Content {
				r, err := id(n)
				if err != nil {
					return err
				}
				c.Disable = append(c.Disable, r)
			}
		case "severity":
			kv, err := pairs(val, "severity")
			if err != nil {
				return err
			}
			c.Severity = map[string]Severity{}
			for j := 0; j+1 < len(kv); j += 2 {
				r, err := id(kv[j])
				if err != nil {
					return err
				}
				sev, err := ParseSeverity(kv[j+1].Value)
				if err != nil {
					return at(kv[j+1], "%s: %v", r, err)
				}
				c.Severity[r] = sev
			}
		case "rules":
			kv, err := pairs(val, "rules")
			if err != nil {
				return err
			}
			c.Rules = map[string]map[string]string{}
			for j := 0; j+1 < len(kv); j += 2 {
				r, err := id(kv[j])
				if err != nil {
					return err
				}
				opts := map[string]string{}
				if err := kv[j+1].Decode(&opts); err != nil {
					return at(kv[j+1], "rules: %s wants a map of option: value", r)
				}
				for k := 0; k+1 < len(kv[j+1].Content); k += 2 {
					if o := kv[j+1].Content[k]; !hasOption(byID[r], o.Value) {
						return at(o, "rule %s has no option %q%s (options: %s)", r, o.Value, suggest(o.Value, optionList(byID[r])), optionNames(byID[r]))
					}
				}
				c.Rules[r] = opts
			}
		case "fail-on":
			sev, err := ParseSeverity(val.Value)
			if err != nil {
				return at(val, "fail-on: %v", err)
			}
			c.FailOn = sev
		case "agent":
			if !contains(AgentChoices, val.Value) {
				return at(val, "agent: %q is not one of %s%s", val.Value, strings.Join(AgentChoices, ", "), suggest(val.Value, AgentChoices))
			}
			c.Agent = val.Value
		case "remove-users":
			if err := val.Decode(&c.RemoveUsers); err != nil {
				return at(val, "remove-users wants true or false, not %q", val.Value)
			}
		default:
			return at(key, "unknown key %q%s; the keys are %s", key.Value, suggest(key.Value, configKeys), strings.Join(configKeys, ", "))
		}
	}
	return nil
}

// Validate checks every rule ID and option the config names, and makes
// rule IDs upper case in place: they are case-insensitive.
func (c *Config) Validate(catalog []*Rule) error {
	byID := ruleIndex(catalog)
	var unknown []string
	for i, id := range c.Disable {
		c.Disable[i] = strings.ToUpper(id)
		if byID[c.Disable[i]] == nil {
			unknown = append(unknown, id)
		}
	}
	for id := range c.Severity {
		if byID[id] == nil {
			unknown = append(unknown, id)
		}
	}
	for id, opts := range c.Rules {
		r := byID[id]
		if r == nil {
			unknown = append(unknown, id)
			continue
		}
		for key := range opts {
			if _, ok := r.Options[key]; !ok {
				return fmt.Errorf("rule %s has no option %q (options: %s)", id, key, optionNames(r))
			}
		}
	}
	if len(unknown) > 0 {
		return errors.New(unknownIDs(unknown, byID))
	}
	return nil
}

func ruleIndex(catalog []*Rule) map[string]*Rule {
	byID := make(map[string]*Rule, len(catalog))
	for _, r := range catalog {
		byID[r.ID] = r
	}
	return byID
}

// unknownIDs says which rule IDs do not exist, and which one was meant
// where one is near.
func unknownIDs(ids []string, byID map[string]*Rule) string {
	sort.Strings(ids)
	known := make([]string, 0, len(byID))
	for id := range byID {
		known = append(known, id)
	}
	sort.Strings(known)
	if len(ids) == 1 {
		return fmt.Sprintf("unknown rule ID %q%s; 'vhdprep check --list-rules' lists them", ids[0], suggest(strings.ToUpper(ids[0]), known))
	}
	return fmt.Sprintf("unknown rule IDs %s; 'vhdprep check --list-rules' lists them", strings.Join(ids, ", "))
}

// suggest is ` (did you mean "x"?)` for the nearest of choices by edit
// distance, or nothing when none is near.
func suggest(s string, choices []string) string {
	best, bestD := "", max(2, len(s)/3)+1
	for _, c := range choices {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is Levenshtein's distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func hasOption(r *Rule, key string) bool {
	_, ok := r.Options[key]
	return ok
}

func optionList(r *Rule) []string {
	var names []string
	for k := range r.Options {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func optionNames(r *Rule) string {
	if len(r.Options) == 0 {
		return "none"
	}
	return strings.Join(optionList(r), ", ")
}

func (c *Config) disabled(id string) bool {
	for _, d := range c.Disable {
		if d == id {
			return true
		}
	}
	return false
}

func (c *Config) hasSeverity(id string) bool {
	_, ok := c.Severity[id]
	return ok
}

func (c *Config) severity(r *Rule) Severity {
	if s, ok := c.Severity[r.ID]; ok {
		return s
	}
	return r.Severity
}

// option returns a rule's configured option, or def.
func (c *Config) option(id, key, def string) string {
	if v, ok := c.Rules[id][key]; ok {
		return v
	}
	return def
}
