package provision

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/vhdprep/vhdprep/agent/ovf"
)

const (
	sshdConfig     = "/etc/ssh/sshd_config"
	sshdConfigDir  = "/etc/ssh/sshd_config.d"
	sshdDropIn     = sshdConfigDir + "/00-vhdprep-agent.conf"
	maxKeyFileSize = 1 << 20
)

// keyTypeRE accepts the OpenSSH public key types a platform may deliver.
var keyTypeRE = regexp.MustCompile(`^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) `)

// deployKeys appends the public keys to the user's ~/.ssh/authorized_keys
// (directory 0700, file 0600, both owned by the user), and installs key
// pairs. A key given only by fingerprint comes from the certificate the
// goal state delivered as /var/lib/waagent/<FINGERPRINT>.crt.
//
// Keys always go to the user's own authorized_keys: the platform's Path is
// always that file, and a path from outside must not choose where root
// writes.
func (p *Provisioner) deployKeys(user string, keys []ovf.PublicKey, pairs []ovf.KeyPair) error {
	if len(keys) == 0 && len(pairs) == 0 {
		return nil
	}
	acct, err := p.LookupUser(user)
	if err != nil {
		return err
	}
	dir := path.Join(acct.Home, ".ssh")
	if err := p.ownedDir(dir, acct); err != nil {
		return err
	}
	if len(keys) > 0 {
		file := path.Join(dir, "authorized_keys")
		old, err := p.readFile(file, maxKeyFileSize)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		have := map[string]bool{}
		for l := range strings.SplitSeq(string(old), "\n") {
			have[strings.TrimSpace(l)] = true
		}
		out := old
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		for _, k := range keys {
			line, err := p.publicKeyLine(k)
			if err != nil {
				return err
			}
			if !have[line] {
				out = append(out, line+"\n"...)
				have[line] = true
			}
		}
		if err := p.ownedFile(file, out, 0o600, acct); err != nil {
			return err
		}
	}
	for _, kp := range pairs {
		if err := p.deployKeyPair(dir, kp, acct); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provisioner) publicKeyLine(k ovf.PublicKey) (string, error) {
	if v := strings.TrimSpace(k.Value); v != "" {
		if strings.ContainsAny(v, "\r\n") || !keyTypeRE.MatchString(v) {
			return "", fmt.Errorf("public key %.40q... is not one OpenSSH public key line", v)
		}
		return v, nil
	}
	if k.Fingerprint == "" {
		return "", errors.New("public key has neither a value nor a fingerprint")
	}
	pub, err := p.certKey(k.Fingerprint)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), nil
}

var thumbprintRE = regexp.MustCompile(`^[0-9A-Fa-f]{40}$`)

// certKey reads the public key of certificate <thumbprint>.crt in
// WALinuxAgent's directory.
func (p *Provisioner) certKey(thumbprint string) (ssh.PublicKey, error) {
	if !thumbprintRE.MatchString(thumbprint) {
		return nil, fmt.Errorf("key fingerprint %q is not a SHA-1 thumbprint", thumbprint)
	}
	name := path.Join(WaagentDir, strings.ToUpper(thumbprint)+".crt")
	b, err := p.readFile(name, maxKeyFileSize)
	if err != nil {
		return nil, fmt.Errorf("public key by fingerprint needs the goal state's certificate: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM certificate", name)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return ssh.NewPublicKey(cert.PublicKey)
}

var keyFileRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// deployKeyPair installs the private key delivered as <thumbprint>.prv and
// its public half into ~/.ssh under the name the platform gives.
func (p *Provisioner) deployKeyPair(dir string, kp ovf.KeyPair, acct Account) error {
	if !thumbprintRE.MatchString(kp.Fingerprint) {
		return fmt.Errorf("key pair fingerprint %q is not a SHA-1 thumbprint", kp.Fingerprint)
	}
	base := path.Base(kp.Path)
	if !keyFileRE.MatchString(base) || base == "authorized_keys" {
		base = "id_rsa"
	}
	prv, err := p.readFile(path.Join(WaagentDir, strings.ToUpper(kp.Fingerprint)+".prv"), maxKeyFileSize)
	if err != nil {
		return fmt.Errorf("key pair %s needs the goal state's certificates: %w", kp.Fingerprint, err)
	}
	signer, err := ssh.ParsePrivateKey(prv)
	if err != nil {
		return fmt.Errorf("key pair %s: %w", kp.Fingerprint, err)
	}
	if err := p.ownedFile(path.Join(dir, base), prv, 0o600, acct); err != nil {
		return err
	}
	return p.ownedFile(path.Join(dir, base+".pub"), ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644, acct)
}

// ownedDir makes dir (under Root) a directory of mode 0700 owned by acct.
func (p *Provisioner) ownedDir(dir string, acct Account) error {
	full := p.path(dir)
	if fi, err := os.Lstat(full); err == nil && !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	if err := os.MkdirAll(full, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(full, 0o700); err != nil {
		return err
	}
	return p.Sys.Chown(full, acct.UID, acct.GID)
}

func (p *Provisioner) ownedFile(name string, data []byte, perm os.FileMode, acct Account) error {
	if err := p.writeFile(name, data, perm); err != nil {
		return err
	}
	return p.Sys.Chown(p.path(name), acct.UID, acct.GID)
}

// configureSSHD sets PasswordAuthentication (and
// ChallengeResponseAuthentication, as WALinuxAgent does) to "no" when
// password logins are disabled, else "yes". sshd takes the first value it
// reads, so: when sshd_config includes sshd_config.d, a drop-in named to
// sort first holds the settings, and any earlier setting in sshd_config
// itself is changed too; otherwise sshd_config is edited, before any Match
// block. No sshd_config: no sshd, nothing to do.
func (p *Provisioner) configureSSHD(disable bool) error {
	main, err := p.readFile(sshdConfig, maxKeyFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		p.log().Info("no sshd_config; skipping sshd settings")
		return nil
	}
	if err != nil {
		return err
	}
	value := "yes"
	if disable {
		value = "no"
	}
	settings := []string{"PasswordAuthentication", "ChallengeResponseAuthentication"}
	lines := strings.Split(string(main), "\n")
	include := includesDropIns(lines)
	if include >= 0 {
		var b strings.Builder
		b.WriteString("# Written by vhdprep-agent when the VM was provisioned.\n")
		for _, k := range settings {
			b.WriteString(k + " " + value + "\n")
		}
		if err := p.mkdirAll(sshdConfigDir, 0o755); err != nil {
			return err
		}
		if err := p.writeFile(sshdDropIn, []byte(b.String()), 0o644); err != nil {
			return err
		}
		// Settings before the Include would still win: change them.
		changed := false
		for i := range include {
			for _, k := range settings {
				if keyword(lines[i]) == strings.ToLower(k) {
					lines[i] = k + " " + value
					changed = true
				}
			}
		}
		if !changed {
			return nil
		}
	} else {
		for _, k := range settings {
			lines = setDirective(lines, k, value)
		}
	}
	return p.writeFile(sshdConfig, []byte(strings.Join(lines, "\n")), 0o644)
}

// keyword returns the lower-cased keyword of an active sshd_config line.
func keyword(line string) string {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return ""
	}
	k, _, _ := strings.Cut(strings.Fields(line)[0], "=")
	return strings.ToLower(k)
}

// includesDropIns returns the index of the global Include line that reads
// sshd_config.d/*.conf, or -1.
func includesDropIns(lines []string) int {
	for i, l := range lines {
		switch keyword(l) {
		case "match":
			return -1
		case "include":
			for _, arg := range strings.Fields(l)[1:] {
				if arg == sshdConfigDir+"/*.conf" || arg == "sshd_config.d/*.conf" {
					return i
				}
			}
		}
	}
	return -1
}

// setDirective sets keyword to value in the global part of sshd_config:
// the first active line changes, else a line goes before the first Match.
func setDirective(lines []string, key, value string) []string {
	lk := strings.ToLower(key)
	for i, l := range lines {
		switch keyword(l) {
		case lk:
			lines[i] = key + " " + value
			return lines
		case "match":
			return append(lines[:i:i], append([]string{key + " " + value}, lines[i:]...)...)
		}
	}
	if n := len(lines); n > 0 && lines[n-1] == "" {
		return append(lines[:n-1], key+" "+value, "")
	}
	return append(lines, key+" "+value)
}

// ensureHostKeys generates SSH host keys (ssh-keygen -A) when the image
// has none, as an image prepared for cloning should not.
func (p *Provisioner) ensureHostKeys(ctx context.Context) error {
	if _, err := os.Stat(p.path("/etc/ssh")); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	keys, err := filepath.Glob(p.path("/etc/ssh/ssh_host_*_key"))
	if err != nil || len(keys) > 0 {
		return err
	}
	if _, err := p.Sys.LookPath("ssh-keygen"); err != nil {
		p.log().Warn("no SSH host keys and no ssh-keygen to make them")
		return nil
	}
	out, err := p.Sys.Run(ctx, "ssh-keygen", []string{"-A"}, nil)
	if err != nil {
		return err
	}
	p.log().Info("generated SSH host keys", "output", string(bytes.TrimSpace(out)))
	return nil
}

// reloadSSHD makes a running sshd read its new settings and host keys, as
// WALinuxAgent restarts it after provisioning; an sshd not yet running
// reads them when it starts. Debian names the unit ssh, others sshd.
func (p *Provisioner) reloadSSHD(ctx context.Context) {
	if _, err := p.Sys.LookPath("systemctl"); err != nil {
		return
	}
	if out, err := p.Sys.Run(ctx, "systemctl", []string{"try-reload-or-restart", "ssh.service", "sshd.service"}, nil); err != nil {
		p.log().Warn("reloading sshd failed", "err", err, "output", string(bytes.TrimSpace(out)))
	}
}
