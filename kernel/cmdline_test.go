package kernel

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	line := `BOOT_IMAGE=/vmlinuz root=UUID=abc ro console=tty1 console=ttyS0,115200n8 quiet dyndbg="file x.c +p" -- single "a b"`
	c := ParseCmdline(line)
	if c.String() != line {
		t.Fatalf("String() = %q", c.String())
	}
	if !c.Has("quiet") || !c.Has("ro") || c.Has("splash") || !c.HasValuePrefix("console", "ttyS0") || c.HasValuePrefix("console", "ttyS") {
		t.Fatalf("%+v", c.Params())
	}
	if v := c.Values("console"); len(v) != 2 || v[1] != "ttyS0,115200n8" {
		t.Fatalf("console values %v", v)
	}
	if v, _ := c.Value("console"); v != "ttyS0,115200n8" {
		t.Fatalf("effective console %q", v)
	}
	if cs := c.Consoles(); len(cs) != 2 || cs[1] != (Console{"ttyS0", "115200n8"}) || cs[0] != (Console{Device: "tty1"}) {
		t.Fatalf("consoles %+v", cs)
	}
	if v := c.Values("dyndbg"); len(v) != 1 || v[0] != "file x.c +p" {
		t.Fatalf("quoted value %v", v)
	}
	if init := c.Init(); len(init) != 2 || init[0] != "single" || init[1] != `"a b"` || c.Has("single") {
		t.Fatalf("init args %q", init)
	}
	if n := len(c.Params()); n != 7 {
		t.Fatalf("%d params", n)
	}
}

// TestParseCmdlineKernelRules follows lib/cmdline.c's next_arg.
func TestParseCmdlineKernelRules(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []Param
	}{
		{"  a\tb\n c  ", []Param{{Key: "a"}, {Key: "b"}, {Key: "c"}}},
		{`a="x y" b`, []Param{{"a", "x y", true}, {Key: "b"}}},
		{`"a=x y" b`, []Param{{"a", "x y", true}, {Key: "b"}}},
		{`"quoted word"`, []Param{{Key: "quoted word"}}},
		{`a=x"y z" b`, []Param{{"a", `x"y z"`, true}, {Key: "b"}}},
		{`a= b==c =d`, []Param{{"a", "", true}, {"b", "=c", true}, {Key: "=d"}}},
		{`a="unterminated b`, []Param{{"a", "unterminated b", true}}},
		{`k="" x="`, []Param{{"k", "", true}, {"x", "", true}}},
		{"a -- b -- c", []Param{{Key: "a"}}},
		{"--=x", []Param{{"--", "x", true}}},
	} {
		got := ParseCmdline(c.in).Params()
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseCmdline(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
	if c := ParseCmdline("libata.atapi_enabled=0"); !c.Has("libata.atapi-enabled") {
		t.Error("dashes and underscores in a key are alike, as the kernel compares them")
	}
}

func TestAddRemove(t *testing.T) {
	for _, c := range []struct {
		in, want string
		add      string
		remove   string
	}{
		{"ro quiet\n", "ro\n", "", "quiet"},
		{"quiet ro\n", "ro\n", "", "quiet"},
		{"ro\tquiet  splash", "ro\tsplash", "", "quiet"},
		{"ro quiet -- single", "ro -- single", "", "quiet"},
		{"ro -- quiet", "ro -- quiet", "", "quiet"},
		{"quiet", "", "", "quiet"},
		{"quiet ro quiet", "ro", "", "quiet"},
		{"ro\n", "ro console=ttyS0\n", "console=ttyS0", ""},
		{"ro -- single", "ro console=ttyS0 -- single", "console=ttyS0", ""},
		{"-- single", "console=ttyS0 -- single", "console=ttyS0", ""},
		{"  ", "console=ttyS0  ", "console=ttyS0", ""},
		{"console=ttyS0,9600", "console=ttyS0,9600", "console=ttyS0,115200n8", ""},
		{"console=tty0", "console=tty0 console=ttyS0", "console=ttyS0", ""},
		{"root=/dev/sda1 ro", "root=/dev/sda1 ro", "root=UUID=x", ""},
	} {
		got := ParseCmdline(c.in)
		if c.remove != "" {
			got = got.Remove(c.remove)
		}
		if c.add != "" {
			got = got.Add(c.add)
		}
		if got.String() != c.want {
			t.Errorf("%q remove %q add %q = %q, want %q", c.in, c.remove, c.add, got.String(), c.want)
		}
	}
}

// FuzzParseCmdline: String gives back the parsed text exactly; Add and
// Remove do what they say and touch nothing else.
func FuzzParseCmdline(f *testing.F) {
	f.Add(`root=UUID=x ro quiet console=ttyS0,115200 a="b c" -- single`, "quiet")
	f.Add(`BOOT_IMAGE=(hd0,gpt2)/vmlinuz-6.1 root=/dev/mapper/vg-root ro crashkernel=auto rhgb quiet`+"\n", "crashkernel=auto")
	f.Add(`"a b"=c  d="e -- f" -- g`, "d")
	f.Fuzz(func(t *testing.T, s, key string) {
		c := ParseCmdline(s)
		if c.String() != s {
			t.Fatalf("String() = %q, want %q", c.String(), s)
		}
		for _, p := range c.Params() {
			if p.Key == "" && !p.HasValue {
				t.Fatalf("empty parameter from %q", s)
			}
		}
		if key == "" || key == "--" || strings.ContainsAny(key, "\" \t\n\v\f\r=") {
			return
		}
		removed := c.Remove(key)
		if removed.Has(key) || len(removed.Init()) != len(c.Init()) {
			t.Fatalf("%q.Remove(%q) = %q", s, key, removed)
		}
		if !c.Has(key) && removed.String() != s {
			t.Fatalf("%q.Remove(%q) changed it to %q", s, key, removed)
		}
		added := removed.Add(key + "=1")
		if v, _ := added.Value(key); v != "1" || len(added.Params()) != len(removed.Params())+1 || len(added.Init()) != len(c.Init()) {
			t.Fatalf("%q.Add(%q=1) = %q", removed, key, added)
		}
	})
}

func TestEditParams(t *testing.T) {
	for _, c := range []struct {
		in, want string
		add      []string
		remove   []string
	}{
		{"quiet", "console=ttyS0,115200n8", []string{"console=ttyS0,115200n8"}, []string{"quiet"}},
		{"root=UUID=x ro  quiet splash", "root=UUID=x ro console=ttyS0", []string{"console=ttyS0"}, []string{"quiet", "splash"}},
		{"rhgb quiet crashkernel=auto", "crashkernel=auto", nil, []string{"rhgb", "quiet"}},
		{"console=tty1 console=ttyS0,9600", "console=tty1 console=ttyS0,9600 rootdelay=300", []string{"console=ttyS0,115200n8", "rootdelay=300"}, nil},
		{`a="x quiet y" quiet`, `a="x quiet y"`, nil, []string{"quiet"}},
		{"", "earlyprintk=ttyS0", []string{"earlyprintk=ttyS0"}, nil},
		{"crashkernel=auto ro", "ro", nil, []string{"crashkernel=auto"}},
		{"crashkernel=256M ro", "crashkernel=256M ro", nil, []string{"crashkernel=auto"}},
	} {
		if got := EditParams(c.in, c.add, c.remove); got != c.want {
			t.Errorf("EditParams(%q, %v, %v) = %q, want %q", c.in, c.add, c.remove, got, c.want)
		}
	}
}
