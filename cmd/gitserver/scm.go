package main

import (
	"context"
	"net/http"
	"strings"
	"time"

	"gitserver/gitserver/mirror"
	"gitserver/gitserver/scm"
	"gitserver/gitserver/service"
)

// newSCMProvider builds an SCM configuration's provider: one adapter per
// kind (gitserver/scm).
var newSCMProvider = func(c scm.Config, hc *http.Client) (scm.Provider, error) { return scm.New(c, hc) }

// scmFactory is the service's factory over newSCMProvider (nil without
// adapters).
func scmFactory(hc *http.Client) service.SCMFactory {
	if newSCMProvider == nil {
		return nil
	}
	return func(c scm.Config) (scm.Provider, error) { return newSCMProvider(c, hc) }
}

// scmHostKeys pins an SCM's ssh_url host keys with the mirrors' scan.
type scmHostKeys struct{ keyscan string }

func (k scmHostKeys) ScanHostKeys(ctx context.Context, sshURL string) (string, []string, error) {
	u := sshURL
	// The mirrors' URL parser wants a repository path; an SCM's ssh_url
	// names only the host.
	if rest, ok := strings.CutPrefix(u, "ssh://"); ok && !strings.Contains(rest, "/") {
		u += "/x.git"
	}
	r, err := mirror.ParseURL(u)
	if err != nil {
		return "", nil, err
	}
	h, err := mirror.ScanHostKeys(ctx, k.keyscan, r)
	if err != nil {
		return "", nil, err
	}
	return h.KnownHosts, h.Fingerprints, nil
}

// scmHTTPClient talks to the providers: bounded, no redirects followed to
// other schemes.
var scmHTTPClient = &http.Client{Timeout: 30 * time.Second}
