// Package provisiontest is a provision.System for tests: it acts on a
// test's root directory instead of the machine, emulating the account
// tools (useradd, busybox adduser, chpasswd, usermod) and ssh-keygen by
// editing the files they would edit, and records what it was asked to do.
package provisiontest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Call is one program run.
type Call struct {
	Name  string
	Args  []string
	Stdin string
}

// Owner is a Chown request.
type Owner struct{ UID, GID int }

// System emulates a Linux system rooted at Root.
type System struct {
	Root string
	// Tools are the programs LookPath finds.
	Tools map[string]bool
	// Fail makes the named program fail.
	Fail map[string]error
	// UUID is the DMI product UUID.
	UUID string
	// Media maps a device (its path under Root) to a directory whose files
	// appear when it is mounted with filesystem type MediaType.
	Media     map[string]string
	MediaType string

	mu       sync.Mutex
	calls    []Call
	hostname string
	owners   map[string]Owner
	mounted  map[string][]string
}

// Distributions' tool sets.
var (
	// Debian is a shadow-utils system with OpenSSH.
	Debian = []string{"useradd", "usermod", "chpasswd", "ssh-keygen"}
	// Busybox is an Alpine-like system: adduser -D, chpasswd.
	Busybox = []string{"adduser", "chpasswd", "ssh-keygen"}
)

// New returns a System over root with the given tools, creating a minimal
// /etc (passwd, shadow, group with root) if root has none.
func New(root string, tools ...string) *System {
	s := &System{Root: root, Tools: map[string]bool{}, Fail: map[string]error{}, UUID: "544CDFD0-CB4E-4B4A-9954-5BDF3ED5C3B8",
		Media: map[string]string{}, MediaType: "udf", owners: map[string]Owner{}, mounted: map[string][]string{}}
	for _, t := range tools {
		s.Tools[t] = true
	}
	etc := filepath.Join(root, "etc")
	os.MkdirAll(etc, 0o755)
	for name, data := range map[string]string{
		"passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"shadow": "root:*:19000:0:99999:7:::\n",
		"group":  "root:x:0:\n",
	} {
		if _, err := os.Stat(filepath.Join(etc, name)); err != nil {
			os.WriteFile(filepath.Join(etc, name), []byte(data), 0o644)
		}
	}
	return s
}

// Calls returns the programs run so far.
func (s *System) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Hostname returns the host name last set.
func (s *System) Hostname() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hostname
}

// OwnerOf returns the owner last given to path (a path under Root, as
// passed to Chown), and whether one was.
func (s *System) OwnerOf(path string) (Owner, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.owners[path]
	return o, ok
}

// LookPath implements provision.System.
func (s *System) LookPath(name string) (string, error) {
	if s.Tools[name] {
		return "/usr/sbin/" + name, nil
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// Run implements provision.System.
func (s *System) Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{name, append([]string(nil), args...), string(stdin)})
	if !s.Tools[name] {
		return nil, fmt.Errorf("%s: not installed", name)
	}
	if err := s.Fail[name]; err != nil {
		return []byte("simulated failure"), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	switch {
	case name == "useradd" && len(args) == 2 && args[0] == "-m",
		name == "adduser" && len(args) == 2 && args[0] == "-D":
		return nil, s.addUser(args[1])
	case name == "chpasswd" && len(args) == 1 && args[0] == "-e":
		for l := range strings.SplitSeq(strings.TrimSpace(string(stdin)), "\n") {
			user, hash, ok := strings.Cut(l, ":")
			if !ok {
				return nil, fmt.Errorf("chpasswd: bad line %q", l)
			}
			if err := s.setShadow(user, hash); err != nil {
				return nil, err
			}
		}
		return nil, nil
	case name == "usermod" && len(args) == 3 && args[0] == "-p":
		return nil, s.setShadow(args[2], args[1])
	case name == "systemctl", name == "networkctl", name == "nmcli", name == "dhcpcd", name == "ifdown", name == "ifup":
		return nil, nil
	case name == "ssh-keygen" && len(args) == 1 && args[0] == "-A":
		for _, t := range []string{"rsa", "ecdsa", "ed25519"} {
			k := filepath.Join(s.Root, "etc/ssh/ssh_host_"+t+"_key")
			if err := os.WriteFile(k, []byte("PRIVATE "+t+"\n"), 0o600); err != nil {
				return nil, err
			}
			if err := os.WriteFile(k+".pub", []byte("ssh-"+t+" AAAA\n"), 0o644); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	return nil, fmt.Errorf("provisiontest: %s %v is not emulated", name, args)
}

func (s *System) addUser(name string) error {
	passwd := filepath.Join(s.Root, "etc/passwd")
	b, err := os.ReadFile(passwd)
	if err != nil {
		return err
	}
	if bytes.Contains(b, []byte("\n"+name+":")) || bytes.HasPrefix(b, []byte(name+":")) {
		return fmt.Errorf("user %s exists", name)
	}
	uid := 1000
	for bytes.Contains(b, fmt.Appendf(nil, ":x:%d:", uid)) {
		uid++
	}
	home := "/home/" + name
	if err := appendFile(passwd, fmt.Sprintf("%s:x:%d:%d::%s:/bin/sh\n", name, uid, uid, home)); err != nil {
		return err
	}
	if err := appendFile(filepath.Join(s.Root, "etc/group"), fmt.Sprintf("%s:x:%d:\n", name, uid)); err != nil {
		return err
	}
	if err := appendFile(filepath.Join(s.Root, "etc/shadow"), name+":!:19000:0:99999:7:::\n"); err != nil {
		return err
	}
	return os.MkdirAll(filepath.Join(s.Root, home), 0o755)
}

func (s *System) setShadow(user, hash string) error {
	path := filepath.Join(s.Root, "etc/shadow")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		f := strings.Split(l, ":")
		if len(f) > 2 && f[0] == user {
			f[1] = hash
			lines[i] = strings.Join(f, ":")
			return os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o640)
		}
	}
	return fmt.Errorf("no shadow entry for %s", user)
}

// Shadow returns user's password field in /etc/shadow.
func (s *System) Shadow(user string) string {
	b, _ := os.ReadFile(filepath.Join(s.Root, "etc/shadow"))
	for l := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Split(l, ":"); len(f) > 2 && f[0] == user {
			return f[1]
		}
	}
	return ""
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SetHostname implements provision.System.
func (s *System) SetHostname(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Fail["sethostname"]; err != nil {
		return err
	}
	s.hostname = name
	// The kernel's name, where the test's root shows it.
	if k := filepath.Join(s.Root, "proc/sys/kernel/hostname"); fileExists(k) {
		return os.WriteFile(k, []byte(name+"\n"), 0o644)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ProductUUID implements provision.System.
func (s *System) ProductUUID() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.UUID == "" {
		return "", errors.New("no DMI product_uuid")
	}
	return s.UUID, nil
}

// Chown implements provision.System: it records the owner.
func (s *System) Chown(path string, uid, gid int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Lstat(path); err != nil {
		return err
	}
	s.owners[path] = Owner{uid, gid}
	return nil
}

// Mount implements provision.System: the media's files appear in dir.
func (s *System) Mount(device, dir, fstype string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.Media[device]
	if !ok || fstype != s.MediaType {
		return fmt.Errorf("mount %s as %s: wrong medium type", device, fstype)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o444); err != nil {
			return err
		}
		s.mounted[dir] = append(s.mounted[dir], e.Name())
	}
	return nil
}

// Unmount implements provision.System.
func (s *System) Unmount(dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	names, ok := s.mounted[dir]
	if !ok {
		return fmt.Errorf("%s is not mounted", dir)
	}
	for _, n := range names {
		os.Remove(filepath.Join(dir, n))
	}
	delete(s.mounted, dir)
	return nil
}

// Mounted reports whether anything is still mounted.
func (s *System) Mounted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mounted) > 0
}
