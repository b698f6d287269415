package lint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
type Config struct {
	Disable  []string                     `yaml:"disable"`
	Severity map[string]Severity          `yaml:"severity"`
	Rules    map[string]map[string]string `yaml:"rules"`
	FailOn   Severity                     `yaml:"fail-on"`
}

// LoadConfig reads a config file and checks it against the catalog: an
// unknown rule ID or option is an error, so a typo never disables nothing.
func LoadConfig(path string, catalog []*Rule) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(catalog); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Validate checks every rule ID and option the config names.
func (c *Config) Validate(catalog []*Rule) error {
	byID := make(map[string]*Rule, len(catalog))
	for _, r := range catalog {
		byID[r.ID] = r
	}
	var unknown []string
	check := func(id string) {
		if byID[id] == nil {
			unknown = append(unknown, id)
		}
	}
	for _, id := range c.Disable {
		check(id)
	}
	for id := range c.Severity {
		check(id)
	}
	for id, opts := range c.Rules {
		r := byID[id]
		if r == nil {
			check(id)
			continue
		}
		for key := range opts {
			if _, ok := r.Options[key]; !ok {
				return fmt.Errorf("rule %s has no option %q (options: %s)", id, key, optionNames(r))
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown rule IDs %s; 'vhdprep check --list-rules' lists them", strings.Join(unknown, ", "))
	}
	return nil
}

func optionNames(r *Rule) string {
	if len(r.Options) == 0 {
		return "none"
	}
	var names []string
	for k := range r.Options {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
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
