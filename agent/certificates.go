package agent

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/vhdprep/vhdprep/agent/certs"
	"github.com/vhdprep/vhdprep/agent/provision"
	"github.com/vhdprep/vhdprep/agent/wire"
)

// SaveCertificates fetches the certificates of goal state g, encrypted to
// the agent's transport key, and writes them to /var/lib/waagent as
// <THUMBPRINT>.crt and .prv, where provisioning finds SSH keys given by
// fingerprint and extensions find the keys to their protectedSettings.
// A goal state without certificates writes nothing.
func (a *Agent) SaveCertificates(ctx context.Context, g *wire.GoalState) error {
	if g.Certificates == "" {
		return nil
	}
	dir := filepath.Join(a.Prov.Root, provision.WaagentDir)
	t, err := certs.NewTransport(dir)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	doc, err := a.Wire.Certificates(ctx, g, t.CertificatePEM())
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	pairs, err := t.Decrypt(doc)
	if err != nil {
		return fmt.Errorf("certificates of incarnation %s: %w", g.Incarnation, err)
	}
	return certs.WriteAll(dir, pairs)
}
