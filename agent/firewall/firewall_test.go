package firewall

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/agent/provision"
)

var wireServer = netip.MustParseAddr("168.63.129.16")

func TestNftScriptIsWALinuxAgentsRule(t *testing.T) {
	g := &Guard{WireServer: wireServer, UID: 0}
	want := `add table ip vhdprep-agent
delete table ip vhdprep-agent
add table ip vhdprep-agent
add chain ip vhdprep-agent output { type filter hook output priority 0 ; policy accept ; }
add rule ip vhdprep-agent output ip daddr 168.63.129.16 tcp dport != 53 meta skuid != 0 ct state invalid,new counter drop
`
	if got := g.NftScript(); got != want {
		t.Errorf("nft script\n%s\nwant\n%s", got, want)
	}
}

func TestIptablesRulesAreWALinuxAgents(t *testing.T) {
	g := &Guard{WireServer: wireServer, UID: 0}
	var got []string
	for _, r := range g.IptablesRules() {
		got = append(got, strings.Join(iptablesArgs("-A", r), " "))
	}
	want := []string{
		"-w -t security -A OUTPUT -d 168.63.129.16 -p tcp --destination-port 53 -j ACCEPT",
		"-w -t security -A OUTPUT -d 168.63.129.16 -p tcp -m owner --uid-owner 0 -j ACCEPT",
		"-w -t security -A OUTPUT -d 168.63.129.16 -p tcp -m conntrack --ctstate INVALID,NEW -j DROP",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("iptables rules\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// fakeTools puts the named scripts alone on PATH, so the real tools are
// not found (the scripts themselves see the system's PATH); bodies get the
// arguments in "$@" and $dir, a directory for their state. Every call is
// logged to $dir/calls.
func fakeTools(t *testing.T, tools map[string]string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	for name, body := range tools {
		script := "#!/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\ndir=" + dir + "\necho \"" + name + " $*\" >> $dir/calls\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	return dir
}

func calls(t *testing.T, dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "calls"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
}

// iptablesLike keeps rules as lines of $dir/rules: -C fails with status 1
// for a missing rule, -D removes one copy or fails with 1, -A appends.
const iptablesLike = `shift 3; op=$1; shift; rule="$*"; touch $dir/rules
case $op in
-C) grep -qxF -- "$rule" $dir/rules || exit 1;;
-A) echo "$rule" >> $dir/rules;;
-D) n=$(grep -nxF -- "$rule" $dir/rules | head -n1 | cut -d: -f1); [ -n "$n" ] || exit 1; sed -i "${n}d" $dir/rules;;
esac`

func TestIptablesApplyTwiceKeepsOneCopy(t *testing.T) {
	dir := fakeTools(t, map[string]string{"iptables": iptablesLike})
	g := &Guard{Sys: provision.Host{}, WireServer: wireServer, UID: 0}
	for i := range 2 {
		if b, err := g.Apply(context.Background()); err != nil || b != "iptables" {
			t.Fatalf("apply %d: %q, %v", i, b, err)
		}
	}
	rules, err := os.ReadFile(filepath.Join(dir, "rules"))
	if err != nil {
		t.Fatal(err)
	}
	want := "OUTPUT -d 168.63.129.16 -p tcp --destination-port 53 -j ACCEPT\n" +
		"OUTPUT -d 168.63.129.16 -p tcp -m owner --uid-owner 0 -j ACCEPT\n" +
		"OUTPUT -d 168.63.129.16 -p tcp -m conntrack --ctstate INVALID,NEW -j DROP\n"
	if string(rules) != want {
		t.Errorf("rules after two applies\n%s\nwant one copy in order\n%s", rules, want)
	}
	var appends int
	for _, c := range calls(t, dir) {
		if strings.Contains(c, "_-A_") {
			appends++
		}
	}
	if appends != 3 {
		t.Errorf("%d appends over two applies, want 3 (the second finds the rules)", appends)
	}
}

// A partial set (the drop rule alone, say, left by a crash) is replaced
// by the three in order: a drop before the accepts would cut the agent off.
func TestIptablesPartialSetReplacedInOrder(t *testing.T) {
	dir := fakeTools(t, map[string]string{"iptables": iptablesLike})
	drop := "OUTPUT -d 168.63.129.16 -p tcp -m conntrack --ctstate INVALID,NEW -j DROP\n"
	if err := os.WriteFile(filepath.Join(dir, "rules"), []byte(drop+drop), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &Guard{Sys: provision.Host{}, WireServer: wireServer, UID: 0}
	if _, err := g.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	rules, _ := os.ReadFile(filepath.Join(dir, "rules"))
	if lines := strings.Split(strings.TrimSpace(string(rules)), "\n"); len(lines) != 3 || lines[2]+"\n" != drop {
		t.Errorf("rules\n%s\nwant the three once, the drop last", rules)
	}
}

func TestIptablesFailureIsNotAbsence(t *testing.T) {
	fakeTools(t, map[string]string{"iptables": `echo "can't initialize iptables table 'security'" >&2; exit 3`})
	g := &Guard{Sys: provision.Host{}, WireServer: wireServer, UID: 0}
	_, err := g.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "security") {
		t.Errorf("err %v, want iptables' own message", err)
	}
}

func TestNftPreferredAndAppliedAsOneTransaction(t *testing.T) {
	dir := fakeTools(t, map[string]string{"nft": `cat >> $dir/stdin`, "iptables": `exit 0`})
	g := &Guard{Sys: provision.Host{}, WireServer: wireServer, UID: 0}
	for range 2 {
		if b, err := g.Apply(context.Background()); err != nil || b != "nft" {
			t.Fatalf("%q, %v", b, err)
		}
	}
	if c := calls(t, dir); strings.Join(c, " ") != "nft_-f_- nft_-f_-" {
		t.Errorf("calls %q, want nft -f - twice and no iptables", c)
	}
	stdin, _ := os.ReadFile(filepath.Join(dir, "stdin"))
	if string(stdin) != g.NftScript()+g.NftScript() {
		t.Errorf("nft got\n%s", stdin)
	}
}

func TestNoToolNoAddress(t *testing.T) {
	fakeTools(t, nil)
	g := &Guard{Sys: provision.Host{}, WireServer: wireServer}
	if _, err := g.Apply(context.Background()); !errors.Is(err, ErrNoTool) {
		t.Errorf("no tool: %v", err)
	}
	g.WireServer = netip.MustParseAddr("fe80::1")
	if _, err := g.Apply(context.Background()); !errors.Is(err, ErrNotIPv4) {
		t.Errorf("IPv6: %v", err)
	}
}

func TestRemoveDeletesEveryCopy(t *testing.T) {
	dir := fakeTools(t, map[string]string{"iptables": iptablesLike})
	g := &Guard{Sys: provision.Host{}, WireServer: wireServer, UID: 0}
	for _, r := range append(g.IptablesRules(), g.IptablesRules()...) {
		if _, err := g.Sys.Run(context.Background(), "iptables", iptablesArgs("-A", r), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rules, _ := os.ReadFile(filepath.Join(dir, "rules")); len(rules) != 0 {
		t.Errorf("left\n%s", rules)
	}
}

// The real tools, in a network namespace of the test's own: the rules
// load, and applying twice leaves one copy.
func TestRealToolsInANetworkNamespace(t *testing.T) {
	for _, tool := range []string{"nft", "iptables"} {
		t.Run(tool, func(t *testing.T) {
			bin, err := exec.LookPath(tool)
			if err != nil {
				t.Skipf("%s is not installed (scripts/test-deps.sh installs nftables and iptables)", tool)
			}
			nsenter, err := exec.LookPath("nsenter")
			if err != nil {
				t.Skip("nsenter is not installed")
			}
			holder := exec.Command("unshare", "-rn", "sleep", "600")
			if err := holder.Start(); err != nil {
				t.Skipf("cannot make a network namespace: %v", err)
			}
			t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
			enter := []string{nsenter, "-t", strconv.Itoa(holder.Process.Pid), "-U", "-n", "--preserve-credentials"}
			time.Sleep(100 * time.Millisecond) // the namespace exists once unshare execs sleep
			if out, err := exec.Command(enter[0], append(enter[1:], bin, "--version")...).CombinedOutput(); err != nil {
				t.Skipf("cannot enter the namespace: %v: %s", err, out)
			}
			dir := t.TempDir()
			wrapper := "#!/bin/sh\nexec " + strings.Join(enter, " ") + " " + bin + " \"$@\"\n"
			if err := os.WriteFile(filepath.Join(dir, tool), []byte(wrapper), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", dir)
			g := &Guard{Sys: provision.Host{}, WireServer: wireServer, UID: 0}
			for range 2 {
				if b, err := g.Apply(context.Background()); err != nil || b != tool {
					t.Fatalf("%q, %v", b, err)
				}
			}
			var list []string
			if tool == "nft" {
				list = []string{"list", "ruleset"}
			} else {
				list = []string{"-w", "-t", "security", "-S", "OUTPUT"}
			}
			out, err := exec.Command(enter[0], append(append(enter[1:], bin), list...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			text := string(out)
			want := map[string]int{"nft": 1, "iptables": 3}[tool]
			if n := strings.Count(text, "168.63.129.16"); n != want {
				t.Errorf("%d rules name the wire server after two applies, want %d:\n%s", n, want, text)
			}
			if tool == "nft" && !strings.Contains(text, "tcp dport != 53 meta skuid != 0 ct state invalid,new counter packets 0 bytes 0 drop") {
				t.Errorf("ruleset:\n%s", text)
			}
			if err := g.Remove(context.Background()); err != nil {
				t.Fatal(err)
			}
			out, _ = exec.Command(enter[0], append(append(enter[1:], bin), list...)...).CombinedOutput()
			if strings.Contains(string(out), "168.63.129.16") {
				t.Errorf("after Remove:\n%s", out)
			}
		})
	}
}
