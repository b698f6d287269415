package wire

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
)

// The HostGAPlugin (azurelinuxagent/common/protocol/hostplugin.py) listens
// on the wire server's host and relays what the VM cannot reach directly:
// extension artifacts and status uploads.
const (
	// DefaultHostPluginPort is the HostGAPlugin's port on the wire server.
	DefaultHostPluginPort = 32526
	// HostPluginAPIVersion is sent as x-ms-version to the HostGAPlugin.
	HostPluginAPIVersion = "2015-09-01"
)

func hostPluginAddr(endpoint string, port int) string {
	if port == 0 {
		port = DefaultHostPluginPort
	}
	host := endpoint
	if h, _, err := net.SplitHostPort(endpoint); err == nil {
		host = h
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// ArtifactRequest returns a GET of artifactURL (a manifest or a handler
// package) through the HostGAPlugin's /extensionArtifact, with the headers
// it requires, for when the direct download fails. The caller sends it
// with its own client and streams the answer; the goal state names the
// container and role config.
func (c *Client) ArtifactRequest(ctx context.Context, g *GoalState, artifactURL string) (*http.Request, error) {
	if artifactURL == "" {
		return nil, errors.New("HostGAPlugin artifact request: no artifact URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.hostPlugin+"/extensionArtifact", nil)
	if err != nil {
		return nil, err
	}
	c.setHostPluginHeaders(req.Header, g)
	req.Header.Set("x-ms-artifact-location", artifactURL)
	return req, nil
}

func (c *Client) setHostPluginHeaders(h http.Header, g *GoalState) {
	h.Set("x-ms-version", HostPluginAPIVersion)
	h.Set("x-ms-containerid", g.ContainerID)
	h.Set("x-ms-host-config-name", g.RoleConfigName)
}
