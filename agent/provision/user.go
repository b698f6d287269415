package provision

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/vhdprep/vhdprep/agent/internal/sha512crypt"
)

// maxAccountDB bounds /etc/passwd and /etc/sudoers as read.
const maxAccountDB = 16 << 20

// Account is a user's /etc/passwd entry.
type Account struct {
	Name     string
	UID, GID int
	Home     string
}

// errNoAccount: the user is not in /etc/passwd.
var errNoAccount = errors.New("no such user")

// LookupUser finds name in /etc/passwd under the root.
func (p *Provisioner) LookupUser(name string) (Account, error) {
	b, err := p.readFile("/etc/passwd", maxAccountDB)
	if err != nil {
		return Account{}, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) != 7 || f[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || !strings.HasPrefix(f[5], "/") {
			return Account{}, fmt.Errorf("/etc/passwd: malformed entry for %s", name)
		}
		return Account{Name: name, UID: uid, GID: gid, Home: f[5]}, nil
	}
	return Account{}, fmt.Errorf("%w: %s", errNoAccount, name)
}

// ensureUser creates the admin user with the distribution's tool unless it
// exists: useradd (shadow-utils), else busybox's adduser; then makes sure
// the home directory exists.
func (p *Provisioner) ensureUser(ctx context.Context, name string) error {
	acct, err := p.LookupUser(name)
	switch {
	case err == nil:
		p.log().Info("user exists", "user", name)
	case errors.Is(err, errNoAccount):
		if err := p.createUser(ctx, name); err != nil {
			return err
		}
		if acct, err = p.LookupUser(name); err != nil {
			return fmt.Errorf("user %s was not created: %w", name, err)
		}
	default:
		return err
	}
	home := p.path(acct.Home)
	if _, err := os.Lstat(home); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(home, 0o700); err != nil {
			return err
		}
		return p.Sys.Chown(home, acct.UID, acct.GID)
	}
	return nil
}

func (p *Provisioner) createUser(ctx context.Context, name string) error {
	if _, err := p.Sys.LookPath("useradd"); err == nil {
		_, err := p.Sys.Run(ctx, "useradd", []string{"-m", name}, nil)
		return err
	}
	// Debian's adduser takes other flags, but Debian always has useradd:
	// an adduser alone is busybox's.
	if _, err := p.Sys.LookPath("adduser"); err == nil {
		_, err := p.Sys.Run(ctx, "adduser", []string{"-D", name}, nil)
		return err
	}
	return ErrNoUserTool
}

// noPassword is the shadow entry of an account without a password. Not the
// "!" of a locked account: OpenSSH built without PAM refuses every login,
// keys included, to an account whose entry starts with "!".
const noPassword = "*"

// setPassword stores password's SHA-512 crypt hash, or noPassword when it
// is empty, through chpasswd -e (the hash on standard input, never on a
// command line) or usermod -p.
func (p *Provisioner) setPassword(ctx context.Context, name, password string) error {
	hash := noPassword
	if password != "" {
		var err error
		if hash, err = sha512crypt.Hash(password); err != nil {
			return err
		}
	}
	if _, err := p.Sys.LookPath("chpasswd"); err == nil {
		_, err := p.Sys.Run(ctx, "chpasswd", []string{"-e"}, []byte(name+":"+hash+"\n"))
		return err
	}
	if _, err := p.Sys.LookPath("usermod"); err == nil {
		_, err := p.Sys.Run(ctx, "usermod", []string{"-p", hash, name}, nil)
		return err
	}
	return errors.New("neither chpasswd nor usermod is installed to set the password")
}

// grantSudo gives the user sudo rights in a sudoers.d file of mode 0440,
// without a password when the account has none (as WALinuxAgent does).
// Where sudoers.d does not exist yet it is created and included.
func (p *Provisioner) grantSudo(name string, nopasswd bool) error {
	line := name + " ALL=(ALL) ALL"
	if nopasswd {
		line = name + " ALL=(ALL) NOPASSWD: ALL"
	}
	dir := "/etc/sudoers.d"
	if _, err := os.Stat(p.path(dir)); errors.Is(err, fs.ErrNotExist) {
		if err := p.mkdirAll(dir, 0o750); err != nil {
			return err
		}
		main, err := p.readFile("/etc/sudoers", maxAccountDB)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if !bytes.Contains(main, []byte("includedir "+dir)) {
			main = append(main, []byte("\n#includedir "+dir+"\n")...)
			if err := p.writeFile("/etc/sudoers", main, 0o440); err != nil {
				return err
			}
		}
	}
	old, err := p.readFile(SudoersFile, maxAccountDB)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// One line per user: a changed password setting replaces the old line.
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(old)), "\n") {
		if l != "" && !strings.HasPrefix(l, name+" ") {
			out = append(out, l)
		}
	}
	out = append(out, line)
	return p.writeFile(SudoersFile, []byte(strings.Join(out, "\n")+"\n"), 0o440)
}
